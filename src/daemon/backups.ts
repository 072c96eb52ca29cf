// The daemon's backup wiring: the object store the config names (checked at
// start; a wrong bucket, credentials or endpoint is logged with the field and
// the fix, and Postgres goes on being served), the leader's backup scheduler
// (a controller) and this node's backup worker (agent side).

import type { ApplyOk, ApplyResult, ClusterStateMachine, Command } from '../../fsm/index.js';
import { adminPassword, replicationPassword } from '../auth/passwords.js';
import { checkpointPrimaryForStandby } from '../backup/standby-checkpoint.js';
import { clusterPrefix } from '../backup/layout.js';
import { sweepBackupObjects } from '../backup/sweep.js';
import { verifyBackup, type VerifyVerdict } from '../backup/verify-backup.js';
import type { BackendBackups } from './backend.js';
import { BackupWorker } from '../backup/worker.js';
import { hostPortOf, type Config, type NodeConfig } from '../config/index.js';
import { backupSource, restoreTestDue } from '../controllers/backup-plan.js';
import { BackupScheduler } from '../controllers/backup-scheduler.js';
import { withFields, type Logger } from '../log.js';
import type { PostgresAgent } from '../postgres/agent.js';
import { startArchive, type DaemonArchive } from './archive.js';
import { sweepWal } from '../archive/retention.js';
import { openObjectStore, type ObjectStore } from '../object-store/index.js';
import { DEFAULT_DATABASE, SUPERUSER } from '../postgres/query.js';
import { REPLICATION_ROLE } from '../postgres/settings.js';

export interface DaemonBackups {
  store: ObjectStore;
  scheduler: BackupScheduler;
  /** Undefined until startWorker(), and when Postgres is not supervised on this node. */
  readonly worker: BackupWorker | undefined;
  /** Starts this node's backup worker and WAL archive (once its Postgres is supervised). */
  startWorker(): void;
  /** The WAL archive on this node (src/daemon/archive.ts); undefined until startWorker(). */
  readonly archive: DaemonArchive | undefined;
  /** The store's startup check: null when it passed (or has not finished), else the one-line problem. */
  problem(): string | null;
  /** On the leader: sweeps objects nothing in the index uses, soon (a backup was forgotten or failed). */
  sweepSoon(): void;
  /** Verifies a complete backup now, on this node, and records the verdict (verify-backup.ts). */
  verify(id: string, opts: { restoreTest: boolean }): Promise<VerifyVerdict>;
  /** What the API's backend uses. */
  forBackend(): BackendBackups;
  close(): Promise<void>;
}

const SWEEP_EVERY_MS = 10 * 60_000;
const STORE_RECHECK_MS = 60_000;
/** How often a node looks whether a periodic restore test is due (the first look comes this long after start). */
const RESTORE_TEST_CHECK_MS = 10 * 60_000;
/** After a delete or failure: long enough to gather a retention pass's deletes into one sweep. */
const SWEEP_SOON_MS = 2_000;
/**
 * After a sweep the store or the index stopped: sooner than SWEEP_EVERY_MS, so
 * a failed backup's parts go soon after a store outage ends (the worker's own
 * delete failed with the store down).
 */
const SWEEP_RETRY_MS = 30_000;

export function startBackups(o: {
  config: Config;
  self: NodeConfig;
  fsm: ClusterStateMachine;
  propose: (cmd: Command) => Promise<ApplyOk>;
  syncState: () => Promise<void>;
  /** How long ago this node (as leader) last heard from another; null when unknown. */
  nodeContactMs: (node: string) => number | null;
  /** The sweep runs on the Raft leader only (one sweeper). */
  isLeader: () => boolean;
  /** This node's data directory: restore tests make their scratch directory in it. */
  dataDir: string;
  /** This node's Postgres agent (the WAL archive streams from its Postgres). */
  agent: () => PostgresAgent | undefined;
  log: Logger;
}): DaemonBackups {
  const store = openObjectStore(o.config);
  // Checked at start and, while it fails, every STORE_RECHECK_MS: a store fixed
  // (or a passing fault) clears the problem status shows.
  let problem: string | null = null;
  let recheck: NodeJS.Timeout | undefined;
  const checkStore = (): void => {
    void store.check().then(
      () => {
        if (problem !== null || recheck === undefined) o.log({ level: 'info', msg: 'object store ready', store: store.description });
        problem = null;
      },
      (e: Error) => {
        if (problem !== e.message) {
          o.log({
            level: 'error',
            msg: 'object store check failed: backups will fail until it is fixed; Postgres is served as usual',
            store: store.description,
            error: e.message,
          });
        }
        problem = e.message;
        recheck = setTimeout(checkStore, STORE_RECHECK_MS);
        recheck.unref();
      },
    );
  };
  checkStore();
  const prefix = clusterPrefix(o.config);
  const scheduler = new BackupScheduler(o.fsm, o.propose, {
    schedule: {
      fullEveryMs: o.config.backups.fullEveryHours * 3_600_000,
      incrementalEveryMs: o.config.backups.incrementalEveryHours > 0 ? o.config.backups.incrementalEveryHours * 3_600_000 : null,
    },
    scheduled: o.config.backups.scheduled,
    backupsPrefix: `${prefix}basebackups/`,
    nodeContactMs: o.nodeContactMs,
    retention: o.config.backups.retention,
  });
  let worker: BackupWorker | undefined;
  let archive: DaemonArchive | undefined;
  const startWorker = () => {
    if (worker !== undefined) return;
    const pgAddr = hostPortOf(o.self.postgres, `${o.self.id}'s postgres address`);
    archive = startArchive({
      selfId: o.self.id,
      clusterPrefix: prefix,
      fsm: o.fsm,
      propose: o.propose,
      store,
      agent: o.agent,
      conn: () => ({
        host: pgAddr.host === '0.0.0.0' || pgAddr.host === '::' ? '127.0.0.1' : pgAddr.host,
        port: pgAddr.port,
        user: REPLICATION_ROLE,
        password: replicationPassword(o.config),
      }),
      log: withFields(o.log, { component: 'archive' }),
    });
    worker = new BackupWorker({
      nodeId: o.self.id,
      cluster: o.config.cluster.name,
      clusterPrefix: prefix,
      state: () => o.fsm.state,
      propose: o.propose,
      store,
      conn: () => ({
        host: pgAddr.host === '0.0.0.0' || pgAddr.host === '::' ? '127.0.0.1' : pgAddr.host,
        port: pgAddr.port,
        user: REPLICATION_ROLE,
        password: replicationPassword(o.config),
      }),
      role: () => (o.fsm.state.postgres.primary === o.self.id ? 'primary' : 'standby'),
      prepareStandbyBackup: async (signal) => {
        const primaryId = o.fsm.state.postgres.primary;
        const addr = primaryId === null ? undefined : o.fsm.state.members.get(primaryId)?.addresses.postgres;
        if (addr === undefined) throw new Error('no primary address to checkpoint for a backup of a standby');
        const p = hostPortOf(addr, `${primaryId}'s postgres address`);
        const admin = { user: SUPERUSER, password: adminPassword(o.config), database: DEFAULT_DATABASE };
        const local = { host: pgAddr.host === '0.0.0.0' || pgAddr.host === '::' ? '127.0.0.1' : pgAddr.host, port: pgAddr.port };
        await checkpointPrimaryForStandby({ primary: { ...admin, host: p.host, port: p.port }, standby: { ...admin, ...local }, timeoutMs: 60_000, signal });
      },
      syncState: o.syncState,
      log: o.log,
    });
    void worker.begin();
  };
  // The sweep: on the leader, every SWEEP_EVERY_MS and soon after a backup is
  // forgotten or failed. Objects go only after the index forgot them (sweep.ts).
  let sweeping = false;
  let sweepTimer: NodeJS.Timeout | undefined;
  const sweep = async () => {
    if (sweeping || !o.isLeader()) return;
    sweeping = true;
    try {
      const r = await sweepBackupObjects({
        store,
        basebackupsPrefix: `${prefix}basebackups/`,
        index: () => o.fsm.state.backups,
        syncState: o.syncState,
        log: o.log,
      });
      if (r.stopped !== null && r.stopped.reason !== 'aborted') sweepAfter(SWEEP_RETRY_MS);
      // Then the WAL no retained backup needs (I7).
      await sweepWal({ store, clusterPrefix: prefix, state: () => o.fsm.state, propose: o.propose, syncState: o.syncState, log: o.log }).catch((e: Error) => {
        o.log({ level: 'warn', msg: 'WAL retention could not run; it is tried again later', error: e.message });
        sweepAfter(SWEEP_RETRY_MS);
      });
    } finally {
      sweeping = false;
    }
  };
  const sweepEvery = setInterval(() => void sweep(), SWEEP_EVERY_MS);
  sweepEvery.unref();
  const sweepAfter = (delayMs: number) => {
    if (sweepTimer !== undefined || !o.isLeader()) return;
    sweepTimer = setTimeout(() => {
      sweepTimer = undefined;
      void sweep();
    }, delayMs);
    sweepTimer.unref();
  };
  const sweepSoon = () => sweepAfter(SWEEP_SOON_MS);
  const verify = (id: string, v: { restoreTest: boolean }) =>
    verifyBackup({ store, index: () => o.fsm.state.backups, syncState: o.syncState, propose: o.propose, scratchParent: o.dataDir }, id, v);
  // Periodic restore tests (backups.restoreTestEveryHours): run by the node a
  // backup would be taken from (a streaming standby, lowest id), decided from the
  // state alone; a rare double run at a role change only costs time.
  const restoreTestEveryMs = o.config.backups.restoreTestEveryHours * 3_600_000;
  let restoreTesting = false;
  const maybeRestoreTest = async (): Promise<void> => {
    if (restoreTestEveryMs <= 0 || restoreTesting || problem !== null || backupSource(o.fsm.state)?.node !== o.self.id) return;
    const id = restoreTestDue(o.fsm.state.backups.values(), restoreTestEveryMs, Date.now());
    if (id === null) return;
    restoreTesting = true;
    o.log({ level: 'info', msg: 'periodic restore test started', backup: id });
    try {
      const v = await verify(id, { restoreTest: true });
      o.log({ level: v.ok ? 'info' : 'error', msg: v.ok ? 'periodic restore test passed' : 'periodic restore test FAILED', backup: id, detail: v.detail });
    } catch (e) {
      o.log({ level: 'warn', msg: 'periodic restore test could not run; it is tried again later', backup: id, error: (e as Error).message });
    } finally {
      restoreTesting = false;
    }
  };
  const restoreTestEvery = setInterval(() => void maybeRestoreTest(), RESTORE_TEST_CHECK_MS);
  restoreTestEvery.unref();
  return {
    store,
    scheduler,
    sweepSoon,
    verify,
    forBackend: () => ({ scheduler, storeDescription: store.description, storeProblem: () => problem, verify, progress: (id) => worker?.progress(id) ?? null }),
    get worker() {
      return worker;
    },
    get archive() {
      return archive;
    },
    startWorker,
    problem: () => problem,
    close: async () => {
      clearInterval(sweepEvery);
      clearInterval(restoreTestEvery);
      clearTimeout(recheck);
      clearTimeout(sweepTimer);
      await archive?.close();
      await worker?.stop();
      await store.close();
    },
  };
}

/** A state-machine refusal as an error (its message names the field and the fix). */
export function okOrThrow(r: ApplyResult): ApplyOk {
  if (r.ok) return r;
  throw new Error(`refused: ${r.error.message}`);
}
