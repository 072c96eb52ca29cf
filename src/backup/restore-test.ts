// The restore test: the only proof that a backup restores is restoring it.
// The chain is restored (restore.ts: every part's sha256, every file against
// backup_manifest) into a scratch directory, Postgres starts on it (replaying
// the backup's WAL to consistency), every database is checked with amcheck
// (amcheck.ts), Postgres stops and the scratch goes away, whatever happened.
// The answer is a verdict: a backup that does not restore, start or check
// clean is a result, not an exception; only a bug here throws.
// Bounded: past timeoutMs the restore is aborted or the server stopped, and
// the verdict says how far it got.

import { promises as fsp } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Logger } from '../log.js';
import type { ObjectStore } from '../object-store/index.js';
import type { PgBinaries } from '../postgres/binaries.js';
import { PostgresInstance } from '../postgres/instance.js';
import { ensurePostgresUser, type OsUser } from '../postgres/os-user.js';
import { AmcheckQueryError, amcheckDatabases, type AmcheckResult } from './amcheck.js';
import type { BackupManifest } from './manifest.js';
import { makeStandalone, restoreChain } from './restore.js';

export const DEFAULT_RESTORE_TEST_TIMEOUT_MS = 30 * 60_000;

export type RestoreTestStage = 'restore' | 'start' | 'check';

export type RestoreTestProgress =
  | { stage: 'restore'; doneBytes: number; totalBytes: number }
  | { stage: 'start' }
  | { stage: 'check'; database: string; relationsDone: number; relationsTotal: number };

export type RestoreTestVerdict =
  | { ok: true; databases: number; tables: number; indexes: number; durationMs: number }
  | { ok: false; stage: RestoreTestStage; detail: string; durationMs: number };

export interface RestoreTestOptions {
  store: ObjectStore;
  /** Oldest first: a full backup, then its incrementals (orderChain). */
  chain: readonly BackupManifest[];
  /** Where the scratch directory is made (default the OS temp directory); it needs room for the restored data. */
  scratchParent?: string | undefined;
  /** The whole test, restore to cleanup (default 30 minutes). */
  timeoutMs?: number | undefined;
  onProgress?: ((p: RestoreTestProgress) => void) | undefined;
  /** The OS user Postgres runs as (default: ensurePostgresUser()). */
  user?: OsUser | undefined;
  binaries?: PgBinaries | undefined;
  logger?: Logger | undefined;
  /** Tests only: called with the restored data directory before Postgres starts on it (to damage it). */
  afterRestore?: ((dataDir: string) => Promise<void> | void) | undefined;
}

/** The restored copy's own settings, after the source's (postgresql.auto.conf is read last). */
const RESTORE_TEST_SETTINGS = [
  '',
  '# Written by the restore test: a scratch copy, checked, then removed.',
  // No TCP: the test talks over the socket in the scratch directory.
  "listen_addresses = ''",
  // The source's WAL archiving must not run from a copy of it.
  'archive_mode = off',
  // A fenced source's read-only default would refuse CREATE EXTENSION.
  'default_transaction_read_only = off',
  '',
].join('\n');

/** Small: the copy runs beside the node's own Postgres. */
const PARAMETERS = {
  shared_buffers: '64MB',
  // bt_index_check's heapallindexed bloom filter is sized by it.
  maintenance_work_mem: '64MB',
  max_connections: 10,
  fsync: false,
  autovacuum: false,
  summarize_wal: false,
};

export async function restoreTest(opts: RestoreTestOptions): Promise<RestoreTestVerdict> {
  if (opts.chain.length === 0) throw new TypeError('restoreTest: the chain is empty');
  const timeoutMs = opts.timeoutMs ?? DEFAULT_RESTORE_TEST_TIMEOUT_MS;
  if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) throw new RangeError(`restoreTest: timeoutMs must be a positive number of ms, got ${timeoutMs}`);
  const t0 = performance.now();
  const elapsedMs = () => Math.round(performance.now() - t0);
  const ids = opts.chain.map((m) => m.id).join(' + ');
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
  const user = opts.user ?? ensurePostgresUser();
  let stage: RestoreTestStage = 'restore';
  const fail = (detail: string): RestoreTestVerdict => ({ ok: false, stage, detail: `restore test of ${ids}: ${detail}`, durationMs: elapsedMs() });
  let scratch: string | undefined;
  let pg: PostgresInstance | undefined;
  try {
    scratch = await fsp.mkdtemp(path.join(opts.scratchParent ?? tmpdir(), 'ogel-restore-test-'));
    // mkdtemp makes it 0700 and ours: as root, the Postgres user must get through it to the data directory.
    await fsp.chmod(scratch, 0o711);
    const dataDir = path.join(scratch, 'data');
    await restoreChain(opts.store, opts.chain, dataDir, {
      owner: user,
      fsync: false, // a scratch copy: nothing here must survive a crash
      signal: deadline.signal,
      onProgress: (doneBytes, totalBytes) => opts.onProgress?.({ stage: 'restore', doneBytes, totalBytes }),
    });
    await prepareCopy(dataDir, user);
    await opts.afterRestore?.(dataDir);
    deadline.signal.throwIfAborted();

    stage = 'start';
    opts.onProgress?.({ stage: 'start' });
    pg = new PostgresInstance({ dataDir, port: await freePort(), user, binaries: opts.binaries, logger: opts.logger });
    pg.writeConfig({
      nodeId: 'restore-test',
      listenAddresses: [],
      syncMode: 'async',
      syncQuorum: 1,
      peerNodeIds: [],
      replicationHosts: [],
      parameters: PARAMETERS,
    });
    await pg.start({ timeoutMs: Math.max(1, timeoutMs - elapsedMs()) });

    stage = 'check';
    const running = pg;
    // A statement cannot be interrupted from here; stopping the server ends it.
    deadline.signal.addEventListener('abort', () => void running.stop('immediate').catch(() => {}), { once: true });
    const r = await amcheckDatabases(pg.socketTarget, { signal: deadline.signal, onProgress: (p) => opts.onProgress?.({ stage: 'check', ...p }) });
    return verdictOf(r, fail, elapsedMs());
  } catch (e) {
    if (deadline.signal.aborted) return fail(`${(deadline.signal.reason as Error).message} while at the ${stage} stage`);
    if (isProgrammerError(e)) throw e;
    return fail(
      `${stage === 'restore' ? 'the restore failed' : stage === 'start' ? 'Postgres did not start on the restored copy' : 'the check failed'}: ${describe(e)}`,
    );
  } finally {
    clearTimeout(timer);
    if (pg?.isRunning()) await pg.stop('immediate', { timeoutMs: 10_000 }).catch(() => {});
    if (scratch !== undefined) await fsp.rm(scratch, { recursive: true, force: true });
  }
}

function verdictOf(r: AmcheckResult, fail: (detail: string) => RestoreTestVerdict, durationMs: number): RestoreTestVerdict {
  if (r.problems.length > 0) return fail(`amcheck found corruption: ${r.problems.join('; ')}`);
  if (r.databases === 0) return fail('no database to check');
  return { ok: true, databases: r.databases, tables: r.tables, indexes: r.indexes, durationMs };
}

/**
 * Makes the restored directory a standalone server that touches nothing of
 * its source's: no standbys waited for, no upstream, no archiving, its own
 * socket. A backup of a standby may carry standby.signal; the copy must come
 * up writable (CREATE EXTENSION), so it recovers to the end of its WAL and
 * opens instead.
 */
async function prepareCopy(dataDir: string, user: OsUser): Promise<void> {
  await makeStandalone(dataDir, user);
  await fsp.appendFile(path.join(dataDir, 'postgresql.auto.conf'), RESTORE_TEST_SETTINGS);
  for (const signal of ['standby.signal', 'recovery.signal']) await fsp.rm(path.join(dataDir, signal), { force: true });
}

/** Bugs throw; anything the backup, the store, the disk or the server did is a verdict. */
function isProgrammerError(e: unknown): boolean {
  return e instanceof TypeError || e instanceof RangeError || e instanceof ReferenceError || e instanceof AmcheckQueryError;
}

/** One line: the error's first line (PostgresStartError appends the server's log below it), its code, and the server's last errors. */
function describe(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const code = (e as NodeJS.ErrnoException).code;
  const first = e.message.split('\n')[0]!.trim() || e.name;
  const head = typeof code === 'string' && !first.includes(code) ? `${code}: ${first}` : first;
  const tail = (e as { logTail?: unknown }).logTail;
  const lines = Array.isArray(tail) ? tail.filter((l): l is string => typeof l === 'string' && /\b(FATAL|PANIC|ERROR):/.test(l)).slice(-3) : [];
  return lines.length === 0 ? head : `${head} (server log: ${lines.join(' | ')})`;
}

/** A TCP port that was free a moment ago. The copy listens on no TCP address; the port only names its socket, in the scratch directory. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
