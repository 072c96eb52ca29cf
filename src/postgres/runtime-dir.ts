// Where root-run Postgres keeps what its unprivileged OS user must reach.
//
// As root, every Postgres binary runs as `ogel-postgres` (os-user.ts), and the
// kernel resolves the binary's path, its libraries and its data directory as
// that user. A checkout under /root, or in a `mktemp -d` directory (both mode
// 0700), is closed to it: initdb cannot even be executed. Rather than loosen the
// permissions of a user's home directory, we keep a copy of the embedded
// package, and (for `ogel up`) the data directories, under a runtime root that
// user can reach: /var/lib/ogel, as Debian keeps /var/lib/postgresql. Nothing is
// copied when the checkout is reachable (a container's /app, a checkout in /opt).

import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { unreachableParent, type OsUser } from './os-user.js';

/** Env override of the runtime root; also how tests keep their copies apart. */
export const RUNTIME_DIR_ENV = 'OGEL_RUNTIME_DIR';
const DEFAULT_RUNTIME_ROOTS = ['/var/lib/ogel', join(tmpdir(), 'ogel-runtime')] as const;

export class RuntimeDirError extends Error {
  override name = 'RuntimeDirError';
}

/**
 * The first runtime root that exists or can be made and that `owner` can reach
 * (every parent traversable): $OGEL_RUNTIME_DIR alone when set, else
 * /var/lib/ogel, else $TMPDIR/ogel-runtime. Made with mode 0755.
 */
export function runtimeRoot(owner: OsUser): string {
  const fromEnv = process.env[RUNTIME_DIR_ENV];
  const candidates = fromEnv ? [resolve(fromEnv)] : [...DEFAULT_RUNTIME_ROOTS];
  const problems: string[] = [];
  for (const dir of candidates) {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o755 });
    } catch (e) {
      problems.push(`${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      continue;
    }
    const blocked = unreachableParent(join(dir, 'x'), owner);
    if (blocked === undefined) return dir;
    problems.push(`${dir}: ${blocked.dir} is mode ${blocked.mode.toString(8).padStart(4, '0')}`);
  }
  throw new RuntimeDirError(
    `no directory that the Postgres OS user ${owner.name} can reach could be used for its binaries and data (${problems.join('; ')}). ` +
      `Fix: set ${RUNTIME_DIR_ENV} to a directory that user can reach, e.g. ${RUNTIME_DIR_ENV}=/srv/ogel`,
  );
}

/**
 * `pkgDir` itself when `owner` can reach its native/ tree; otherwise a copy of
 * the package under <runtime root>/postgres/, made once and shared by every
 * checkout with the same binaries (keyed by version and the postgres binary's
 * sha256). The copy is made in a temp directory and renamed into place, so
 * daemons starting together never see half of one.
 */
export function reachablePackageDir(pkgDir: string, owner: OsUser): string {
  const native = join(pkgDir, 'native', 'bin', 'postgres');
  if (unreachableParent(native, owner) === undefined) return pkgDir;
  const version = (JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { version?: string }).version ?? 'unknown';
  const digest = createHash('sha256').update(readFileSync(native)).digest('hex').slice(0, 12);
  const parent = join(runtimeRoot(owner), 'postgres');
  const target = join(parent, `${version}-${digest}`);
  if (existsSync(join(target, 'package.json'))) return target;
  mkdirSync(parent, { recursive: true, mode: 0o755 });
  const tmp = `${target}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  try {
    // verbatimSymlinks: the library symlinks are relative (libicuuc.so.60 -> libicuuc.so.60.2) and must stay so.
    cpSync(pkgDir, tmp, { recursive: true, verbatimSymlinks: true });
    renameSync(tmp, target);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    // Another daemon renamed its copy first: that one is as good as ours.
    if (!existsSync(join(target, 'package.json'))) {
      throw new RuntimeDirError(
        `copying the PostgreSQL binaries from ${pkgDir} to ${target} failed: ${(e as Error).message}. Fix: make room for about 60 MB there, or set ${RUNTIME_DIR_ENV} to another directory`,
      );
    }
  }
  return target;
}
