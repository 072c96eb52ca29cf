// Results and errors of the FSM.
//
// Bad input never throws: validateCommand and apply return a Rejection, whose
// message names the field, the value and what would be valid. Throwing is kept for
// programmer errors (InvariantError) and for input the node must not guess about
// (a snapshot or command from a newer version: applying it differently from an
// upgraded node would make replicas diverge, so the node stops instead).

export type ErrorCode =
  | 'invalid_command' // malformed: wrong shape, type or range (independent of the state)
  | 'unsupported_version' // a command version this build does not know
  | 'invalid_value' // well-formed, but not valid against the current state (e.g. an LSN range)
  | 'limit_reached' // a bounded collection is full
  | 'unknown_member'
  | 'member_exists'
  | 'address_taken'
  | 'member_in_use'
  | 'stale_generation'
  | 'no_lease'
  | 'not_lease_holder'
  | 'stale_renewal'
  | 'is_primary'
  | 'not_promotable'
  | 'maintenance_paused'
  | 'no_primary' // needs a primary, and there is none (e.g. scheduling a switchover)
  | 'switchover_scheduled' // another switchover is already scheduled
  | 'unknown_tenant'
  | 'tenant_exists'
  | 'name_taken'
  | 'tenant_deleted'
  | 'tenant_not_deleted'
  | 'tenant_not_active'
  | 'tenant_in_use'
  | 'unknown_backup'
  | 'backup_exists'
  | 'backup_in_use' // a compute starts from it, or another backup is an incremental of it (I7)
  | 'backup_unusable' // exists, but not in a state that allows this (not complete, or failed verification)
  | 'unknown_wal_segment'
  | 'wal_segment_conflict'
  | 'unknown_compute'
  | 'compute_exists'
  | 'compute_active'
  | 'invalid_transition';

export interface FsmError {
  readonly code: ErrorCode;
  /** Names the field, the value and what would be valid. */
  readonly message: string;
  /** Dotted path of the offending field, when one field is at fault (e.g. 'lsn.flushed'). */
  readonly field?: string;
}

/** A command refused by validateCommand or apply. The state is unchanged. */
export interface Rejection {
  readonly ok: false;
  readonly error: FsmError;
}

/** validateCommand's refusal: the same shape as apply's, so the API can return either as is. */
export type ValidationError = Rejection;

export function reject(code: ErrorCode, message: string, field?: string): Rejection {
  return { ok: false, error: field === undefined ? { code, message } : { code, message, field } };
}

export function isRejection(x: unknown): x is Rejection {
  return typeof x === 'object' && x !== null && (x as { ok?: unknown }).ok === false;
}

/** A broken internal invariant: a bug. Crash rather than continue with a corrupt state. */
export class InvariantError extends Error {
  constructor(message: string) {
    super(`FSM invariant violated: ${message}`);
    this.name = 'InvariantError';
  }
}

export function invariant(cond: boolean, message: string | (() => string)): asserts cond {
  if (!cond) throw new InvariantError(typeof message === 'string' ? message : message());
}

/**
 * A committed command or snapshot from a newer version than this build knows. Applying
 * it as "invalid" here while upgraded nodes apply it would make replicas diverge, so
 * the state machine throws and the node stops: upgrade it.
 */
export class UnsupportedVersionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsupportedVersionError';
  }
}

/** A snapshot that cannot be decoded (corrupt, malformed, or violating an invariant). */
export class SnapshotFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SnapshotFormatError';
  }
}
