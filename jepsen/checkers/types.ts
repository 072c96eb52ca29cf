// Verdicts and anomalies: the `valid` and `anomalies` parts of a run's JSON.
// Every anomaly carries a one-sentence `message` for a human plus the structured
// details behind it (keys, op indices, values, times) for tools and for digging.

import type { Operation } from '../history/pair.js';
import type { CompletionType, Json, Key } from '../history/types.js';
import type { ArchiveBehindAnomaly, ArchiveGapAnomaly } from './archive.js';

/** As in Jepsen: false (an anomaly was proven) beats 'unknown' (could not decide) beats true. */
export type Validity = true | false | 'unknown';

export function mergeValidity(values: readonly Validity[]): Validity {
  if (values.includes(false)) return false;
  if (values.includes('unknown')) return 'unknown';
  return true;
}

/** Register values and set elements: JSON scalars (null = absent row / initial value). */
export type Scalar = string | number | null;
export type Element = string | number;

export type CheckerName = 'register' | 'set' | 'bank' | 'one-writer' | 'archive' | 'history';

/** An operation as reported in an anomaly: small, JSON-safe (never-completed ops have completeMs null). */
export interface OpRef {
  index: number;
  process: number;
  f: string;
  type: CompletionType;
  invokeMs: number;
  completeMs: number | null;
  key?: Key;
  value?: Json;
  node?: string;
  generation?: number;
  error?: string;
}

/** `withValue`: include the op's value (the completion's if it has one, else the invoke's); off for big values such as a final read. */
export function opRef(op: Operation, withValue = true): OpRef {
  const ref: OpRef = {
    index: op.index,
    process: op.process,
    f: op.f,
    type: op.type,
    invokeMs: op.invokeTimeMs,
    completeMs: op.completeTimeMs ?? null,
  };
  if (op.key !== undefined) ref.key = op.key;
  if (withValue) {
    const v = op.completion?.value ?? op.invoke.value;
    if (v !== undefined) ref.value = v;
  }
  const node = op.completion?.node ?? op.invoke.node;
  if (node !== undefined) ref.node = node;
  if (op.completion?.generation !== undefined) ref.generation = op.completion.generation;
  if (op.completion?.error !== undefined) ref.error = op.completion.error;
  return ref;
}

export interface NonlinearizableAnomaly {
  type: 'nonlinearizable';
  message: string;
  key: Key;
  /** The op whose completion the search could not get past. */
  op: OpRef;
  /** Ops of the key whose intervals overlap `op`'s (at most 20). */
  concurrent: OpRef[];
  /** Indices of the longest linearizable prefix found (its last ops only, see prefixLength). */
  prefixTail: number[];
  prefixLength: number;
  /** Register value after that prefix. */
  valueAfterPrefix: Scalar;
  opsOnKey: number;
}

export interface LostAnomaly {
  type: 'lost';
  message: string;
  element: Element;
  add: OpRef;
  /** The read that misses it (the first one, when several do). */
  read: OpRef;
  readIsFinal: boolean;
}

export interface DisappearedAnomaly {
  type: 'disappeared';
  message: string;
  element: Element;
  add?: OpRef;
  /** The first read to show the element... */
  seenBy: OpRef;
  /** ...and the first read, begun after that one ended, that does not. */
  missingFrom: OpRef;
}

export type UnexpectedReason = 'never-attempted' | 'failed-insert' | 'added-after-read';

export interface UnexpectedAnomaly {
  type: 'unexpected';
  message: string;
  element: Element;
  reason: UnexpectedReason;
  add?: OpRef;
  read: OpRef;
  readIsFinal: boolean;
}

export interface DuplicatedAnomaly {
  type: 'duplicated';
  message: string;
  element: Element;
  count: number;
  read: OpRef;
  readIsFinal: boolean;
}

export interface BankTotalAnomaly {
  type: 'bank-total';
  message: string;
  read: OpRef;
  total: number;
  expected: number;
  balances: Record<string, number>;
}

export interface BankAccountsAnomaly {
  type: 'bank-accounts';
  message: string;
  read: OpRef;
  /** Opening accounts the read does not show. */
  missing: string[];
  /** Accounts the read shows that never existed. */
  unexpected: string[];
  balances: Record<string, number>;
}

export interface BankUnexplainedAnomaly {
  type: 'bank-unexplained';
  message: string;
  read: OpRef;
  balances: Record<string, number>;
  /** Opening balances plus the transfers acknowledged before the read began. */
  expectedBase: Record<string, number>;
  /** Transfers acknowledged before the read began. */
  definiteTransfers: number;
  /** Transfers that may have applied (ok and concurrent, or indeterminate and invoked before the read ended). */
  possibleTransfers: number;
}

export interface BankNegativeAnomaly {
  type: 'bank-negative';
  message: string;
  read: OpRef;
  account: string;
  balance: number;
}

export interface TwoWritersAnomaly {
  type: 'two-writers';
  message: string;
  olderGeneration: number;
  newerGeneration: number;
  /** The older generation's write invoked latest. */
  olderWrite: OpRef;
  /** The newer generation's write completed earliest. */
  newerWrite: OpRef;
  /** olderWrite.invokeMs - newerWrite.completeMs (> 0): how long after the newer generation acknowledged a write the older one still took one. */
  gapMs: number;
  /** Writes of the older generation invoked after newerWrite completed. */
  olderWritesAfter: number;
}

export interface GenerationSharedAnomaly {
  type: 'generation-shared';
  message: string;
  generation: number;
  /** The nodes that answered writes of this generation, sorted. */
  nodes: string[];
  /** The first write answered by each of them, in the order of `nodes`. */
  writes: OpRef[];
}

export interface GenerationNodeMismatchAnomaly {
  type: 'generation-node-mismatch';
  message: string;
  generation: number;
  /** The node the ogel.generation row names; `write.node` answered. */
  generationNode: string;
  write: OpRef;
}

export interface MissingGenerationAnomaly {
  type: 'missing-generation';
  message: string;
  write: OpRef;
}

export interface UnknownAnomaly {
  type: 'unknown';
  message: string;
  checker: CheckerName;
  key?: Key;
}

export interface MalformedHistoryAnomaly {
  type: 'malformed-history';
  message: string;
  /** Event index, -1 when not tied to one event. */
  index: number;
}

export type Anomaly =
  | NonlinearizableAnomaly
  | LostAnomaly
  | DisappearedAnomaly
  | UnexpectedAnomaly
  | DuplicatedAnomaly
  | BankTotalAnomaly
  | BankAccountsAnomaly
  | BankUnexplainedAnomaly
  | BankNegativeAnomaly
  | TwoWritersAnomaly
  | GenerationSharedAnomaly
  | GenerationNodeMismatchAnomaly
  | MissingGenerationAnomaly
  | UnknownAnomaly
  | MalformedHistoryAnomaly
  | ArchiveGapAnomaly
  | ArchiveBehindAnomaly;

export type AnomalyType = Anomaly['type'];

export interface CheckerResult<S> {
  valid: Validity;
  anomalies: Anomaly[];
  stats: S;
}

export const DEFAULT_MAX_ANOMALIES = 100;

/** Keeps the first `max` anomalies and counts the rest, so a badly broken run still yields a readable report. */
export class AnomalyLog {
  readonly list: Anomaly[] = [];
  omitted = 0;

  constructor(private readonly max: number = DEFAULT_MAX_ANOMALIES) {}

  add(a: Anomaly): void {
    if (this.list.length < this.max) this.list.push(a);
    else this.omitted++;
  }
}

/** Short human form of an op for messages: "#12 p3 write 5". */
export function showOp(op: Operation, value?: Json): string {
  const v = value === undefined ? '' : ` ${JSON.stringify(value)}`;
  return `#${op.index} p${op.process} ${op.f}${op.key === undefined ? '' : `[${JSON.stringify(op.key)}]`}${v}`;
}

export function showMs(ms: number | undefined): string {
  return ms === undefined ? '∞' : `${Math.round(ms * 1000) / 1000} ms`;
}
