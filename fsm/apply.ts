// apply(state, command) -> { state, result }: the deterministic heart of the FSM.
//
// Pure (I2): no clock, no randomness, no environment, no I/O; time arrives as
// command.atMs. The state is never mutated: a successful command returns a new state
// sharing the untouched parts, and a rejected one returns the very same state
// object. Every check runs before any new state is built, and messages that pick an
// example from a collection pick the smallest id, so they do not depend on Map
// order (which differs between a replica that replayed and one that restored).
//
// This module runs a command through its handler; the handlers live by domain in
// apply/ (cluster, postgres, tenants, storage), what they share in apply/shared.ts.

import type { Command, CommandType } from './commands.js';
import { validateCommand } from './commands.js';
import { isRejection, type Rejection } from './errors.js';
import { checkStep } from './invariants.js';
import type { ClusterState } from './state.js';
import { clusterHandlers } from './apply/cluster.js';
import { postgresHandlers } from './apply/postgres.js';
import { tenantHandlers } from './apply/tenants.js';
import { storageHandlers } from './apply/storage.js';
import type { Handler } from './apply/shared.js';

export interface ApplyOk {
  readonly ok: true;
  readonly type: CommandType;
  /** The generation (fencing token) after the command. */
  readonly generation: number;
  /** lease.renew: the lease's renewal sequence now. */
  readonly renewalSeq?: number;
  /**
   * wal.record: an identical segment was already recorded; wal.archived: a range
   * already held the reported WAL; wal.history: already recorded. Nothing changed.
   */
  readonly existed?: boolean;
  /** pg.scheduleSwitchover cancel: whether a scheduled switchover was removed (false: none was). */
  readonly cancelled?: boolean;
}

export type ApplyResult = ApplyOk | Rejection;

export interface ApplyOutcome {
  readonly state: ClusterState;
  readonly result: ApplyResult;
}

/**
 * Applies one command. An invalid command (malformed, or not valid against `state`)
 * yields `{ state, result: { ok: false, error } }` with the same state object; bad
 * input never throws. Throws InvariantError only on a bug.
 */
export function apply(state: ClusterState, command: Command): ApplyOutcome {
  // Re-validate: the typed signature is a convenience, not a guarantee (decoded log
  // entries and API bodies arrive as unknown), and validation also normalizes.
  const c = validateCommand(command as unknown);
  if (isRejection(c)) return { state, result: c };
  const step = (handlers[c.type] as Handler<CommandType>)(state, c);
  if (isRejection(step)) return { state, result: step };
  if (step.state !== state) checkStep(state, step.state, c);
  const result: ApplyOk = {
    ok: true,
    type: c.type,
    generation: step.state.postgres.generation,
    ...(step.renewalSeq === undefined ? {} : { renewalSeq: step.renewalSeq }),
    ...(step.existed === undefined ? {} : { existed: step.existed }),
    ...(step.cancelled === undefined ? {} : { cancelled: step.cancelled }),
  };
  return { state: step.state, result };
}

/** Applies commands in order, returning the final state and every result. */
export function applyAll(state: ClusterState, commands: readonly Command[]): { state: ClusterState; results: ApplyResult[] } {
  const results: ApplyResult[] = [];
  for (const c of commands) {
    const out = apply(state, c);
    state = out.state;
    results.push(out.result);
  }
  return { state, results };
}

/** Every type's handler: a domain table missing from here, or a type missing from its table, does not compile. */
const handlers: { [T in CommandType]: Handler<T> } = { ...clusterHandlers, ...postgresHandlers, ...tenantHandlers, ...storageHandlers };
