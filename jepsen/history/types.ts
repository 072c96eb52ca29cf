// The history format shared by the harness (which records it) and the checkers
// (which judge it). One history is a flat, append-only list of events in the
// order the harness observed them; an operation is an `invoke` event followed,
// later, by at most one completion event of the same process.
//
// Completion types, and what each lets a checker assume:
//   ok    the operation took effect, with the reported result;
//   fail  the operation certainly did NOT take effect (e.g. a constraint error,
//         a serialization failure before commit) — checkers treat it as absent;
//   info  indeterminate (timeout, connection lost before the commit answer): it
//         may have taken effect at any time after its invoke (even after the
//         info was recorded), or never.
// An invoke never completed by the end of the history counts as info.

/** JSON values: everything a history can carry survives JSON.stringify/parse unchanged. */
export type Json = null | boolean | number | string | readonly Json[] | { readonly [key: string]: Json };

export type OpType = 'invoke' | 'ok' | 'fail' | 'info';
export type CompletionType = Exclude<OpType, 'invoke'>;

/** Row key of a keyed workload (register key, bank account). 1 and "1" are different keys. */
export type Key = string | number;

export interface Op {
  /** Logical client: at most one outstanding operation per process (integer). */
  process: number;
  type: OpType;
  /** Operation name, workload-specific: read, write, cas, add, transfer... */
  f: string;
  key?: Key;
  /**
   * Invoke: the argument (write value, cas [from, to], element to add, transfer).
   * Completion: the result (value read, final set, balances); may be omitted when
   * it adds nothing to the invoke's value.
   */
  value?: Json;
  /**
   * Monotonic time in milliseconds (performance.now() of the recording process;
   * fractions allowed). Only differences and order matter; non-decreasing along
   * the history.
   */
  timeMs: number;
  /** Node the client was talking to (informational). */
  node?: string;
  /** Completion of a write: the generation (fencing token) the server reported in the same transaction. */
  generation?: number;
  /**
   * Completion of a write: the node the ogel.generation row names (the node the
   * generation was issued to), read in the same transaction as `generation`.
   */
  generationNode?: string;
  /** Completion: error text, for fail and info. */
  error?: string;
}

export type History = readonly Op[];

export const OP_TYPES: readonly OpType[] = ['invoke', 'ok', 'fail', 'info'];
