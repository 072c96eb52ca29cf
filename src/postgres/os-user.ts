// The OS user Postgres runs as.
//
// initdb and postgres refuse to run as root ("cannot be run as root"), and CI
// runs as root. So as root we spawn every Postgres binary with the uid/gid of an
// unprivileged system user (created when missing) and give it the data
// directories. When not root, Postgres simply runs as the current user.

import { execFileSync } from 'node:child_process';
import {
  type Stats,
  chmodSync,
  chownSync,
  closeSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { userInfo } from 'node:os';

export const DEFAULT_POSTGRES_USER = 'ogel-postgres';

export interface OsUser {
  uid: number;
  gid: number;
  name: string;
}

export class OsUserError extends Error {
  override name = 'OsUserError';
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/**
 * As root: the system user `name`, created when missing (useradd, else adduser).
 * Otherwise: the current user (`name` is ignored; Postgres runs as whoever runs ogel).
 */
export function ensurePostgresUser(name: string = DEFAULT_POSTGRES_USER): OsUser {
  if (!isRoot()) {
    const me = userInfo();
    return { uid: me.uid, gid: me.gid, name: me.username };
  }
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(name)) throw new OsUserError(`${JSON.stringify(name)} is not a valid system user name`);
  const existing = lookupUser(name);
  if (existing) return checkNotRoot(existing);

  const attempts: string[] = [];
  // Several daemons (or tests) may race to create the user; useradd then fails
  // on the lock or "already exists", so look again before retrying.
  for (let attempt = 0; attempt < 20; attempt++) {
    for (const [cmd, args] of [
      ['useradd', ['--system', '--no-create-home', '--user-group', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', name]],
      ['adduser', ['--system', '--group', '--no-create-home', '--home', '/nonexistent', '--shell', '/usr/sbin/nologin', name]],
    ] as const) {
      try {
        execFileSync(cmd, [...args], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
        const made = lookupUser(name);
        if (made) return checkNotRoot(made);
      } catch (err) {
        const made = lookupUser(name);
        if (made) return checkNotRoot(made);
        const e = err as { code?: string; stderr?: Buffer | string };
        attempts.push(`${cmd}: ${e.code === 'ENOENT' ? 'not installed' : String(e.stderr ?? err).trim()}`);
      }
    }
    if (!attempts.some((a) => /lock/i.test(a))) break;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50); // lock contention: back off 50 ms
  }
  throw new OsUserError(
    `running as root, Postgres needs an unprivileged OS user, and creating ${JSON.stringify(name)} failed (${attempts.slice(-2).join('; ')}). ` +
      `Fix: create it yourself (useradd --system --no-create-home --shell /usr/sbin/nologin ${name}), or run ogel as a non-root user`,
  );
}

function checkNotRoot(u: OsUser): OsUser {
  if (u.uid === 0) throw new OsUserError(`the OS user ${JSON.stringify(u.name)} has uid 0; Postgres refuses to run as root: choose another user`);
  return u;
}

/** The user from /etc/passwd, else from NSS (getent), else undefined. */
export function lookupUser(name: string): OsUser | undefined {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[0] === name && f.length >= 4) return { name, uid: Number(f[2]), gid: Number(f[3]) };
    }
  } catch {
    // fall through to getent
  }
  try {
    const f = execFileSync('getent', ['passwd', name], { stdio: ['ignore', 'pipe', 'ignore'], encoding: 'utf8', timeout: 10_000 })
      .trim()
      .split(':');
    if (f[0] === name && f.length >= 4) return { name, uid: Number(f[2]), gid: Number(f[3]) };
  } catch {
    // not found
  }
  return undefined;
}

/**
 * Creates `path` (and parents) with mode 0700, owned by `owner` (recursively
 * when root: files we wrote as root must be readable by Postgres). Throws when
 * `owner` cannot reach it because a parent directory is not traversable.
 */
export function prepareDir(path: string, owner: OsUser): void {
  const abs = resolve(path);
  // Parents we create get 0755 (mkdir's mode would apply to all of them, and a
  // root-owned 0700 parent would lock the Postgres user out); the leaf 0700.
  mkdirSync(dirname(abs), { recursive: true, mode: 0o755 });
  mkdirSync(abs, { recursive: true, mode: 0o700 });
  if (isRoot()) chownTree(abs, owner);
  chmodSync(abs, 0o700);
  assertReachable(abs, owner);
}

/** chown -R, without following symlinks. */
export function chownTree(path: string, owner: OsUser): void {
  const st = lstatSync(path);
  if (st.isSymbolicLink()) return;
  if (st.uid !== owner.uid || st.gid !== owner.gid) chownSync(path, owner.uid, owner.gid);
  if (st.isDirectory()) for (const name of readdirSync(path)) chownTree(join(path, name), owner);
}

/**
 * Throws unless `owner` can traverse every parent of `path` (search permission).
 * Root can go anywhere, so a data dir under /root (mode 0700) works for root but
 * not for the Postgres user; say so instead of letting initdb fail obscurely.
 */
export function assertReachable(path: string, owner: OsUser): void {
  const problem = unreachableParent(path, owner);
  if (problem) {
    throw new OsUserError(
      `Postgres runs as OS user ${JSON.stringify(owner.name)} (uid ${owner.uid}), which cannot enter ${problem.dir} ` +
        `(mode ${problem.mode.toString(8).padStart(4, '0')}, owner uid ${problem.uid}), a parent of ${resolve(path)}. ` +
        `Fix: choose a data directory that user can reach (e.g. under /var/lib/ogel or /tmp), or allow traversal: chmod o+x ${problem.dir}`,
    );
  }
}

export function unreachableParent(path: string, owner: OsUser): { dir: string; mode: number; uid: number } | undefined {
  if (owner.uid === 0) return undefined;
  let dir = dirname(resolve(path));
  for (;;) {
    const st = statIfExists(dir);
    if (st === undefined) {
      // Not made yet: we make missing parents 0755 (prepareDir), so only existing ones can block.
      dir = dirname(dir);
      continue;
    }
    const mode = st.mode & 0o7777;
    const bit = st.uid === owner.uid ? 0o100 : st.gid === owner.gid ? 0o010 : 0o001;
    if ((mode & bit) === 0) return { dir, mode, uid: st.uid };
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

function statIfExists(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/**
 * Replaces `path` atomically (write a temp file, fsync, rename, fsync the
 * directory), so Postgres never reads a half-written config file, even after a
 * crash. As root the file is given to `owner`: Postgres must be able to read it.
 */
export function writeFileAtomic(path: string, content: string | Uint8Array, owner?: OsUser, mode: number = 0o600): void {
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  try {
    const fd = openSync(tmp, 'w', mode);
    try {
      const buf = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
      let off = 0;
      while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (owner && isRoot()) chownSync(tmp, owner.uid, owner.gid);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  const dfd = openSync(dirname(path), 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}
