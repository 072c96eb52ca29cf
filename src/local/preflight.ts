// Before `ogel up` (and `npm test`) start anything: can Postgres run here?
//
// As root, Postgres runs as an unprivileged OS user, and a checkout in a
// mode-0700 directory (/root/..., `mktemp -d`) is closed to that user. The
// binaries are then copied where it can reach them (postgres/runtime-dir.ts);
// the data directories of a new local cluster go there too. What still cannot
// work is reported here in one line, within a second, instead of as a daemon
// log line and a 60 s wait for a primary that never starts.

import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nodeDataDir, type Config } from '../config/index.js';
import { resolvePostgresBinaries } from '../postgres/binaries.js';
import { ensurePostgresUser, isRoot, unreachableParent, type OsUser } from '../postgres/os-user.js';
import { runtimeRoot } from '../postgres/runtime-dir.js';

export interface DataDirChoice {
  /** What the new cluster's config gets as cluster.dataDir. */
  dataDir: string;
  /** Set when the data cannot live in the state directory: why, for the user. */
  relocated?: string;
}

/**
 * cluster.dataDir for a new local cluster in `stateDir`: <stateDir>/data when the
 * Postgres OS user can reach it, else a fresh directory under the runtime root
 * (never one reused from an earlier cluster: a data directory left from a
 * removed state directory must not be adopted by a cluster with another secret),
 * linked from <stateDir>/data so that it is found where the user looks.
 */
export function chooseDataDir(stateDir: string): DataDirChoice {
  const inState = join(stateDir, 'data');
  if (!isRoot()) return { dataDir: inState };
  const user = ensurePostgresUser();
  const blocked = unreachableParent(join(inState, 'n1', 'pg'), user);
  if (blocked === undefined) return { dataDir: inState };
  const home = join(runtimeRoot(user), 'clusters', `local-${randomBytes(4).toString('hex')}`);
  const dataDir = join(home, 'data');
  mkdirSync(dataDir, { recursive: true, mode: 0o755 });
  // Says whose data this is, for an operator looking at /var/lib/ogel later.
  writeFileSync(join(home, 'state-dir'), `${stateDir}\n`, { mode: 0o644 });
  if (!existsSync(inState)) symlinkSync(dataDir, inState);
  return {
    dataDir,
    relocated:
      `Postgres runs as the OS user ${user.name}, which cannot enter ${blocked.dir} (mode ${modeText(blocked.mode)}), ` +
      `so the data directories are in ${dataDir} (linked from ${inState})`,
  };
}

/**
 * undefined when every node's Postgres can run; else one line naming the
 * directory, the reason and the fix. Resolves the binaries, which as root
 * copies them where the Postgres OS user can reach them (once).
 */
export function postgresPreflight(config: Config): string | undefined {
  let user: OsUser;
  try {
    user = ensurePostgresUser();
    const bins = resolvePostgresBinaries(config.postgres.binDir);
    const blockedBin = unreachableParent(bins.postgres, user);
    if (blockedBin !== undefined) {
      return `Postgres cannot run: the OS user ${user.name} cannot enter ${blockedBin.dir} (mode ${modeText(blockedBin.mode)}) to reach ${bins.postgres}. Fix: set postgres.binDir to an installation that user can reach, or chmod o+x ${blockedBin.dir}`;
    }
  } catch (e) {
    return `Postgres cannot run: ${(e as Error).message}`;
  }
  for (const n of config.nodes) {
    const pgDir = join(nodeDataDir(config, n.id), 'pg');
    const blocked = unreachableParent(pgDir, user);
    if (blocked !== undefined) {
      return (
        `Postgres cannot run: the OS user ${user.name} cannot enter ${blocked.dir} (mode ${modeText(blocked.mode)}), a parent of ${n.id}'s data directory ${pgDir}. ` +
        `Fix: set cluster.dataDir to a directory that user can reach (e.g. /var/lib/ogel/data), or chmod o+x ${blocked.dir}`
      );
    }
  }
  return undefined;
}

/** The same check for the test suite: binaries and the temp directory the tests use. */
export function testPreflight(tmpDir: string): string | undefined {
  let user: OsUser;
  try {
    user = ensurePostgresUser();
    resolvePostgresBinaries();
  } catch (e) {
    return `the tests cannot run Postgres: ${(e as Error).message}`;
  }
  const blocked = unreachableParent(join(tmpDir, 'x', 'data'), user);
  if (blocked !== undefined) {
    return `the tests cannot run Postgres: its OS user ${user.name} cannot enter ${blocked.dir} (mode ${modeText(blocked.mode)}), where the tests make their data directories (${tmpDir}). Fix: point TMPDIR at a directory that user can reach, e.g. TMPDIR=/tmp`;
  }
  return undefined;
}

function modeText(mode: number): string {
  return mode.toString(8).padStart(4, '0');
}
