// A workload: the tables it needs, the operations its clients issue, how each
// runs as one transaction through a proxy, and the final reads after healing.
// Values follow jepsen/checkers (see each workload for the shapes).

import type pg from 'pg';
import type { Prng } from '../../raft/sim/prng.js';
import type { CheckOptions, Workload as WorkloadName } from '../checkers/index.js';
import type { Json, Key } from '../history/index.js';

export type { WorkloadName };

export interface OpSpec {
  f: string;
  key?: Key;
  value?: Json;
}

export interface OpResult {
  type: 'ok' | 'fail' | 'info';
  value?: Json;
  /** Writes only: ogel.generation as the server saw it in the same transaction. */
  generation?: number;
  /** Writes only: the node the ogel.generation row names (checked against `node` by the one-writer checker). */
  generationNode?: string;
  /** The Postgres node that ran the transaction (by the server address it reported). */
  node?: string;
  error?: string;
  /** false: the session is still usable (a definite refusal answered and rolled back); otherwise the caller drops it. */
  dropClient?: boolean;
}

export interface RunContext {
  /** Postgres server address (inet_server_addr) -> node id. */
  nodeOfAddress: (addr: string) => string | undefined;
  /** The whole operation, connect excluded, past which it is abandoned (fail before COMMIT was sent, info after). */
  opTimeoutMs: number;
  /** Harness log, for oddities worth a line (not anomalies: the checker decides those). */
  note: (msg: string) => void;
}

export interface Workload {
  readonly name: WorkloadName;
  /** Default clients and total operations per second. */
  readonly defaultConcurrency: number;
  readonly defaultRate: number;
  /** Creates and fills its tables (idempotent), through the given client. */
  setup(client: pg.Client): Promise<void>;
  /** The next operation of `process`. Drawn from `rng` only, so a seed replays the same requests. */
  next(process: number, rng: Prng): OpSpec;
  run(client: pg.Client, op: OpSpec, ctx: RunContext): Promise<OpResult>;
  /** Operations run once, after the cluster is healthy again (retried until one is ok). */
  finalOps(): OpSpec[];
  /** What the checker needs besides the history. */
  checkOptions(): CheckOptions;
}
