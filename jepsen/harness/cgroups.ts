// One cgroup (v2) per simulated host. Each daemon is moved into its host's
// cgroup as soon as it is spawned, and everything it starts (its Postgres and
// that server's backends, WAL receiver, ...) inherits it. That gives the harness
// two things it cannot get from addresses alone:
//  - iptables can tell which host a packet comes from (`-m cgroup --path`), even
//    for connections whose source address the daemon cannot choose: libpq (the
//    WAL receiver) and the proxy's server connections leave from 127.0.0.1 whoever
//    dials. See firewall.ts.
//  - kill-host can kill every process of a host at once.
// Without a writable cgroup2 hierarchy the harness falls back to addresses (see
// firewall.ts for what that loses).

import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const PREFIX = 'ogel-jepsen-';

/** Where the cgroup2 hierarchy is mounted, or undefined. */
export function cgroup2Mount(): string | undefined {
  for (const line of readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f[2] === 'cgroup2' && f[1] !== undefined) return f[1];
  }
  return undefined;
}

export class HostCgroups {
  private constructor(
    /** The cgroup2 mount point. */
    private readonly mount: string,
    /** Our directory, relative to the mount (what `iptables -m cgroup --path` takes). */
    readonly root: string,
    readonly ids: readonly string[],
  ) {}

  /**
   * Creates <mount>/ogel-jepsen-<pid>/<id> for every host, or returns a reason
   * when that is not possible here (no cgroup2, read-only, not root).
   */
  static create(ids: readonly string[]): HostCgroups | string {
    const mount = cgroup2Mount();
    if (mount === undefined) return 'no cgroup2 hierarchy is mounted';
    removeStale(mount);
    const root = `${PREFIX}${process.pid}`;
    try {
      mkdirSync(join(mount, root));
      for (const id of ids) mkdirSync(join(mount, root, id));
    } catch (e) {
      return `cannot create cgroups under ${mount}: ${(e as Error).message}`;
    }
    return new HostCgroups(mount, root, ids);
  }

  /** The cgroup of host `id`, relative to the cgroup2 root. */
  path(id: string): string {
    return `${this.root}/${id}`;
  }

  add(id: string, pid: number): void {
    writeFileSync(join(this.mount, this.path(id), 'cgroup.procs'), `${pid}\n`);
  }

  pids(id: string): number[] {
    return readPids(join(this.mount, this.path(id)));
  }

  /** SIGKILL every process of host `id` (one write when the kernel has cgroup.kill). */
  killAll(id: string): number[] {
    const dir = join(this.mount, this.path(id));
    const pids = readPids(dir);
    if (existsSync(join(dir, 'cgroup.kill'))) {
      writeFileSync(join(dir, 'cgroup.kill'), '1\n');
      return pids;
    }
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    return pids;
  }

  /** Removes the cgroups; they must be empty (every process stopped). Returns what could not be removed. */
  destroy(): string[] {
    const left: string[] = [];
    for (const id of this.ids) {
      const dir = join(this.mount, this.path(id));
      try {
        rmdirSync(dir);
      } catch (e) {
        left.push(`${dir}: ${(e as Error).message} (pids ${readPids(dir).join(' ')})`);
      }
    }
    try {
      rmdirSync(join(this.mount, this.root));
    } catch (e) {
      left.push(`${this.root}: ${(e as Error).message}`);
    }
    return left;
  }
}

function readPids(dir: string): number[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Cgroups of earlier runs that were killed before cleaning up: removed once empty. */
function removeStale(mount: string): void {
  let names: string[];
  try {
    names = readdirSync(mount).filter((n) => n.startsWith(PREFIX));
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(name.slice(PREFIX.length));
    if (Number.isInteger(pid) && existsSync(`/proc/${pid}`)) continue;
    const dir = join(mount, name);
    try {
      for (const sub of readdirSync(dir, { withFileTypes: true }))
        if (sub.isDirectory() && readPids(join(dir, sub.name)).length === 0) rmdirSync(join(dir, sub.name));
      rmdirSync(dir);
    } catch {
      /* still in use: left alone */
    }
  }
}
