// In-memory, append-only, bounded recorder for the harness's clients.
//
// Bounded without breaking well-formedness: the limit applies to invokes only.
// An invoke is accepted only while there is room for it AND for the completion
// of every pending operation (its own included), so completions are never
// refused and a full recorder still yields a well-formed history. When full,
// `invoke` throws HistoryFullError: the workload must stop issuing operations.
//
// Each process may have one pending operation; the recorder enforces that at
// record time (a harness bug shows up where it happens, not at check time).

import { HistoryError } from './errors.js';
import { writeJsonl } from './jsonl.js';
import type { CompletionType, History, Json, Key, Op } from './types.js';
import { isJson, isKey } from './validate.js';

export interface RecorderOptions {
  /** Maximum number of events (invokes + completions). Default 1,000,000. */
  maxEvents?: number;
  /** Monotonic milliseconds. Default performance.now(). Injected by tests. */
  clockMs?: () => number;
}

export interface InvokeFields {
  key?: Key;
  value?: Json;
  node?: string;
}

export interface CompleteFields {
  value?: Json;
  node?: string;
  generation?: number;
  generationNode?: string;
  error?: string;
}

export const DEFAULT_RECORDER_MAX_EVENTS = 1_000_000;

export class HistoryFullError extends Error {
  override readonly name = 'HistoryFullError';
}

export class HistoryRecorder {
  private readonly log: Op[] = [];
  /** process -> its pending invoke */
  private readonly open = new Map<number, Op>();
  private readonly maxEvents: number;
  private readonly clockMs: () => number;
  private lastTimeMs = -Infinity;

  constructor(opts: RecorderOptions = {}) {
    this.maxEvents = opts.maxEvents ?? DEFAULT_RECORDER_MAX_EVENTS;
    if (!Number.isSafeInteger(this.maxEvents) || this.maxEvents < 2) throw new RangeError(`maxEvents must be an integer >= 2, got ${this.maxEvents}`);
    this.clockMs = opts.clockMs ?? (() => performance.now());
  }

  /** The events so far (a live, read-only view; do not keep it across appends if you need a snapshot). */
  get events(): History {
    return this.log;
  }

  get size(): number {
    return this.log.length;
  }

  get pendingCount(): number {
    return this.open.size;
  }

  /** True when the next invoke would be refused. */
  get full(): boolean {
    return this.log.length + this.open.size + 2 > this.maxEvents;
  }

  snapshot(): Op[] {
    return this.log.slice();
  }

  invoke(process: number, f: string, fields: InvokeFields = {}): Op {
    if (!Number.isSafeInteger(process)) throw new TypeError(`process must be an integer, got ${process}`);
    if (f.length === 0) throw new TypeError('f must be non-empty');
    const open = this.open.get(process);
    if (open !== undefined) throw new HistoryError(`double invoke: process ${process} invokes ${f} while its ${open.f} is still pending`, this.log.length);
    if (this.full) throw new HistoryFullError(`history is full (${this.maxEvents} events, ${this.open.size} completions reserved): stop the workload`);
    const op: Op = { process, type: 'invoke', f, timeMs: this.now() };
    if (fields.key !== undefined) {
      if (!isKey(fields.key)) throw new TypeError(`key must be a string or a finite number`);
      op.key = fields.key;
    }
    if (fields.value !== undefined) op.value = checkedJson(fields.value);
    if (fields.node !== undefined) op.node = fields.node;
    this.open.set(process, op);
    return this.append(op);
  }

  complete(process: number, type: CompletionType, fields: CompleteFields = {}): Op {
    const open = this.open.get(process);
    if (open === undefined) throw new HistoryError(`completion without invoke: process ${process} has no pending operation`, this.log.length);
    const op: Op = { process, type, f: open.f, timeMs: this.now() };
    if (open.key !== undefined) op.key = open.key;
    if (fields.value !== undefined) op.value = checkedJson(fields.value);
    if (fields.node !== undefined) op.node = fields.node;
    if (fields.generation !== undefined) {
      if (!Number.isSafeInteger(fields.generation)) throw new TypeError(`generation must be an integer, got ${fields.generation}`);
      op.generation = fields.generation;
    }
    if (fields.generationNode !== undefined) op.generationNode = fields.generationNode;
    if (fields.error !== undefined) op.error = fields.error;
    this.open.delete(process);
    return this.append(op);
  }

  /** Writes every event so far to `path` as JSONL; resolves to the number written. */
  writeJsonl(path: string): Promise<number> {
    return writeJsonl(path, this.snapshot());
  }

  private now(): number {
    // Clamp so that a clock that is not monotonic (an injected one) cannot make the history malformed.
    const t = this.clockMs();
    if (!Number.isFinite(t)) throw new RangeError(`clock returned ${t}`);
    this.lastTimeMs = Math.max(this.lastTimeMs, t);
    return this.lastTimeMs;
  }

  private append(op: Op): Op {
    Object.freeze(op);
    this.log.push(op);
    return op;
  }
}

function checkedJson(value: Json): Json {
  // Values come from database drivers: a bigint or Date slipping through would be lost in the JSONL file.
  if (!isJson(value)) throw new TypeError('value must be plain JSON (convert bigint, Date, Buffer first)');
  return value;
}
