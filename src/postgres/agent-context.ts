// The seam between the agent (agent.ts: reconcile to the wanted role) and its
// parts: the data directory (provision.ts), following a primary (follow.ts),
// and the one-writer wing (fence/: lease keeper, fence, switchover step-down).
// The parts reach the agent only through AgentContext, never its fields.

import type { ApplyResult, ClusterState, Command } from '../../fsm/index.js';
import type { Config } from '../config/index.js';
import type { Logger } from '../log.js';
import type { PgBinaries } from './binaries.js';
import type { MonotonicMs } from './fence/lease.js';
import type { PostgresInstance } from './instance.js';
import type { OsUser } from './os-user.js';
import type { UnsafeSwitch } from './unsafe-switches.js';

export class AgentError extends Error {
  override name = 'AgentError';
}

export type ObservedRole = 'primary' | 'standby' | 'stopped';

/** Counters since the agent started (exported as metrics). */
export interface AgentCounters {
  /** lease.renew commands committed / refused or failed. */
  leaseRenewalsOk: number;
  leaseRenewalsFailed: number;
  /** Times this agent made its Postgres read-only (fence) / writable again. */
  fences: number;
  unfences: number;
  /** Promotions of the local Postgres (failover or switchover). */
  promotions: number;
  /** Re-clones of the local data directory (diverged, or ogel reinit). */
  reclones: number;
  /** Restarts of a standby that started no WAL receiver (restartIfNoReceiver). */
  standbyRestarts: number;
}

/** A FIFO async mutex: every action that changes the server's state holds it. */
export class ServerLock {
  private tail: Promise<void> = Promise.resolve();
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((r) => (release = r));
    await prev;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

/** What the agent's parts may see and do of the agent. */
export interface AgentContext {
  readonly nodeId: string;
  /** This node's Postgres data directory. */
  readonly dataDir: string;
  /** This node's Postgres port. */
  readonly port: number;
  readonly config: Config;
  readonly log: Logger;
  /** Monotonic ms (the lease is measured on it). */
  readonly now: MonotonicMs;
  /** initdb --no-sync and unsynced base backups: tests only. */
  readonly noSync: boolean;
  readonly unsafe: ReadonlySet<UnsafeSwitch>;
  /** Mutable: the parts count what they do. */
  readonly counters: AgentCounters;
  /** Held by every action that changes the server's state (reconcile steps, fence, step-down). */
  readonly serverLock: ServerLock;
  /** The local state machine's state. */
  state(): ClusterState;
  propose(cmd: Command): Promise<ApplyResult>;
  /** Proposes and, if it committed, waits until the local state has it (so the next pass does not act on the old state). */
  proposeAndSync(cmd: Command): Promise<ApplyResult>;
  /** Asks for a reconcile pass now. */
  poke(): void;
  /** The agent is stopping: start nothing new. */
  stopping(): boolean;
  /** The local server; undefined before the data dir exists. */
  instance(): PostgresInstance | undefined;
  /** A server on `dataDir` with this node's port, binaries and OS user. */
  newInstance(dataDir: string): PostgresInstance;
  /** Makes `inst` the agent's server (after a bootstrap or a clone). */
  adopt(inst: PostgresInstance): void;
  observed(): ObservedRole;
  setObserved(role: ObservedRole): void;
  binaries(): PgBinaries;
  osUser(): OsUser;
  /** Logs `why` once, until the agent waits for something else. */
  logWaiting(why: string): void;
  /** Disaster recovery: fills the bootstrap primary's data directory from another cluster's store instead of initdb. */
  readonly bootstrapRestore: ((dir: string) => Promise<void>) | undefined;
}
