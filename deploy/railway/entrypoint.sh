#!/bin/sh
# Entry wrapper of the OgelBase image: runs its arguments (the ogel daemon) as an
# unprivileged user, never as root. Postgres refuses to run as root, and nothing
# else here needs it.
#
# Started as root: give the data directory to the run user, then drop to it.
#   That is the Railway case: Railway mounts a service's volume owned by root, so
#   the services set RAILWAY_RUN_UID=0 and this script fixes the ownership.
# Started as anyone else (a plain `docker run`, which uses the image's USER node):
#   run the command as is.
#
# OGEL_RUN_AS   the unprivileged user (default: node, from the node:20 image)
# OGEL_DATA_DIR the data directory, i.e. the volume (default: /data)
set -eu

run_as="${OGEL_RUN_AS:-node}"
data_dir="${OGEL_DATA_DIR:-/data}"

if [ "$#" -eq 0 ]; then
  echo "entrypoint.sh: no command given (expected: entrypoint.sh node .../main.js daemon ...)" >&2
  exit 64
fi

if [ "$(id -u)" = 0 ]; then
  if ! id "$run_as" >/dev/null 2>&1; then
    echo "entrypoint.sh: user '$run_as' does not exist; set OGEL_RUN_AS to an unprivileged user" >&2
    exit 1
  fi
  uid="$(id -u "$run_as")"
  gid="$(id -g "$run_as")"
  if [ "$uid" = 0 ]; then
    echo "entrypoint.sh: OGEL_RUN_AS='$run_as' is root; it must be an unprivileged user" >&2
    exit 1
  fi
  mkdir -p "$data_dir"
  # A new volume belongs to root: hand all of it over once. When it is already
  # the run user's, leave it alone, so a restart does not walk a large data dir.
  if [ "$(stat -c %u "$data_dir")" != "$uid" ]; then
    echo "entrypoint.sh: giving $data_dir to $run_as ($uid:$gid)" >&2
    chown -R "$uid:$gid" "$data_dir"
  fi
  chmod 0700 "$data_dir"
  HOME="$(getent passwd "$run_as" | cut -d: -f6)"
  export HOME
  exec setpriv --reuid="$uid" --regid="$gid" --init-groups -- "$@"
fi

exec "$@"
