// How long writes were unavailable during a run: the longest stretch of the
// workload with no write acknowledged, the figure the results table reports
// next to each nemesis. A stretch is measured between acknowledgements (the
// client's view, failovers and client-side timeouts included), from the first
// write invoked to the last write invoked, so the quiet ends of a run (setup,
// the final reads) do not count.

import type { History } from './types.js';

export interface WriteAvailability {
  /** The longest stretch with no write acknowledged (ms, rounded); null when no write was invoked. */
  longestGapMs: number | null;
  /** Where that stretch began and ended, on the history's clock. */
  fromMs: number | null;
  toMs: number | null;
}

/** `writeFs`: the operation names that write (e.g. write, cas, add, transfer). */
export function writeAvailability(history: History, writeFs: ReadonlySet<string>): WriteAvailability {
  let firstInvoke: number | null = null;
  let lastInvoke: number | null = null;
  const acks: number[] = [];
  for (const e of history) {
    if (!writeFs.has(e.f)) continue;
    if (e.type === 'invoke') {
      firstInvoke ??= e.timeMs;
      lastInvoke = e.timeMs;
    } else if (e.type === 'ok') acks.push(e.timeMs);
  }
  if (firstInvoke === null || lastInvoke === null) return { longestGapMs: null, fromMs: null, toMs: null };
  // Events are in time order, so acks are sorted; the span ends at the last invoke (or a later ack).
  let prev = firstInvoke;
  let best = { gap: 0, from: firstInvoke, to: firstInvoke };
  const end = Math.max(lastInvoke, acks.at(-1) ?? lastInvoke);
  for (const t of [...acks, end]) {
    if (t - prev > best.gap) best = { gap: t - prev, from: prev, to: t };
    prev = Math.max(prev, t);
  }
  return { longestGapMs: Math.round(best.gap), fromMs: best.from, toMs: best.to };
}
