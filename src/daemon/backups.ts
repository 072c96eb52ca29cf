// The daemon's backup wiring: the object store the config names (checked at
// start; a wrong bucket, credentials or endpoint is logged with the field and
// the fix, and Postgres goes on being served), the leader's backup scheduler
// (a controller) and this node's backup worker (agent side).

import type { ApplyOk, ApplyResult, ClusterStateMachine, Command } from '../../fsm/index.js';
import { replicationPassword } from '../auth/passwords.js';
import { clusterPrefix } from '../backup/layout.js';
import { BackupWorker } from '../backup/worker.js';
import { hostPortOf, type Config, type NodeConfig } from '../config/index.js';
import { BackupScheduler } from '../controllers/backup-scheduler.js';
import type { Logger } from '../log.js';
import { openObjectStore, type ObjectStore } from '../object-store/index.js';
import { REPLICATION_ROLE } from '../postgres/settings.js';

export interface DaemonBackups {
  store: ObjectStore;
  scheduler: BackupScheduler;
  /** Undefined until startWorker(), and when Postgres is not supervised on this node. */
  readonly worker: BackupWorker | undefined;
  /** Starts this node's backup worker (once its Postgres is supervised). */
  startWorker(): void;
  /** The store's startup check: null when it passed (or has not finished), else the one-line problem. */
  problem(): string | null;
  close(): Promise<void>;
}

export function startBackups(o: {
  config: Config;
  self: NodeConfig;
  fsm: ClusterStateMachine;
  propose: (cmd: Command) => Promise<ApplyOk>;
  syncState: () => Promise<void>;
  /** How long ago this node (as leader) last heard from another; null when unknown. */
  nodeContactMs: (node: string) => number | null;
  log: Logger;
}): DaemonBackups {
  const store = openObjectStore(o.config);
  let problem: string | null = null;
  void store.check().then(
    () => o.log({ level: 'info', msg: 'object store ready', store: store.description }),
    (e: Error) => {
      problem = e.message;
      o.log({
        level: 'error',
        msg: 'object store check failed: backups will fail until it is fixed; Postgres is served as usual',
        store: store.description,
        error: e.message,
      });
    },
  );
  const prefix = clusterPrefix(o.config);
  const scheduler = new BackupScheduler(o.fsm, o.propose, {
    schedule: {
      fullEveryMs: o.config.backups.fullEveryHours * 3_600_000,
      incrementalEveryMs: o.config.backups.incrementalEveryHours > 0 ? o.config.backups.incrementalEveryHours * 3_600_000 : null,
    },
    scheduled: o.config.backups.scheduled,
    backupsPrefix: `${prefix}basebackups/`,
    nodeContactMs: o.nodeContactMs,
  });
  let worker: BackupWorker | undefined;
  const startWorker = () => {
    if (worker !== undefined) return;
    const pgAddr = hostPortOf(o.self.postgres, `${o.self.id}'s postgres address`);
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
      syncState: o.syncState,
      log: o.log,
    });
    void worker.begin();
  };
  return {
    store,
    scheduler,
    get worker() {
      return worker;
    },
    startWorker,
    problem: () => problem,
    close: async () => {
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
