// Hand-made and generated histories for the checker tests.

import { pairHistory, type Operation } from '../history/pair.js';
import type { CompletionType, Json, Key, Op } from '../history/types.js';

/** One operation of a hand-made history: invoke at t[0], completion at t[1] (null: never completed). */
export interface Spec {
  p: number;
  f: string;
  key?: Key;
  /** Invoke value (argument). */
  arg?: Json;
  /** Completion value (result). */
  res?: Json;
  t: readonly [number, number | null];
  type?: CompletionType;
  generation?: number;
  /** The node the write's ogel.generation row names. */
  generationNode?: string;
  node?: string;
  error?: string;
}

/**
 * Events of the specs, sorted by time. At equal times: completions of ops invoked
 * earlier, then invokes (a process may invoke at the instant its previous op
 * completed), then completions of zero-length ops.
 */
export function build(specs: readonly Spec[]): Op[] {
  const events: { op: Op; order: number; kind: number }[] = [];
  specs.forEach((s, i) => {
    const inv: Op = { process: s.p, type: 'invoke', f: s.f, timeMs: s.t[0] };
    if (s.key !== undefined) inv.key = s.key;
    if (s.arg !== undefined) inv.value = s.arg;
    events.push({ op: inv, order: 2 * i, kind: 1 });
    if (s.t[1] === null) return;
    const done: Op = { process: s.p, type: s.type ?? 'ok', f: s.f, timeMs: s.t[1] };
    if (s.key !== undefined) done.key = s.key;
    if (s.res !== undefined) done.value = s.res;
    if (s.generation !== undefined) done.generation = s.generation;
    if (s.generationNode !== undefined) done.generationNode = s.generationNode;
    if (s.node !== undefined) done.node = s.node;
    if (s.error !== undefined) done.error = s.error;
    events.push({ op: done, order: 2 * i + 1, kind: s.t[1] === s.t[0] ? 2 : 0 });
  });
  events.sort((a, b) => {
    if (a.op.timeMs !== b.op.timeMs) return a.op.timeMs - b.op.timeMs;
    if (a.kind !== b.kind) return a.kind - b.kind;
    return a.order - b.order;
  });
  return events.map((e) => e.op);
}

export const ops = (specs: readonly Spec[]): Operation[] => pairHistory(build(specs));

// Register shorthands: p, key, value, [invoke, complete], type
export const rd = (p: number, key: Key, value: Json, t: readonly [number, number | null], type: CompletionType = 'ok'): Spec => ({
  p,
  f: 'read',
  key,
  res: value,
  t,
  type,
});
export const wr = (p: number, key: Key, value: Json, t: readonly [number, number | null], type: CompletionType = 'ok'): Spec => ({
  p,
  f: 'write',
  key,
  arg: value,
  t,
  type,
});
export const cas = (p: number, key: Key, from: Json, to: Json, t: readonly [number, number | null], type: CompletionType = 'ok'): Spec => ({
  p,
  f: 'cas',
  key,
  arg: [from, to],
  t,
  type,
});

/**
 * Assigns processes so that no process has two operations in flight: each op
 * goes to the first process whose previous op completed strictly before this
 * invoke (never-completed ops keep their process forever).
 */
export function assignProcesses<T extends { inv: number; cmp: number | null }>(items: readonly T[]): (T & { p: number })[] {
  const sorted = items.map((it, i) => ({ it, i })).sort((a, b) => a.it.inv - b.it.inv || a.i - b.i);
  const freeAt: number[] = [];
  const out: (T & { p: number })[] = new Array<T & { p: number }>(items.length);
  for (const { it, i } of sorted) {
    let p = freeAt.findIndex((f) => f < it.inv);
    if (p < 0) {
      p = freeAt.length;
      freeAt.push(0);
    }
    freeAt[p] = it.cmp === null ? Infinity : it.cmp;
    out[i] = { ...it, p };
  }
  return out;
}
