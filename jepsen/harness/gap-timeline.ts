// Where the longest write unavailability of a run went: a timeline of the gap
// between two acknowledged writes, from the faults in place, what the daemons
// logged about leadership, leases, fences and promotions, and what the clients
// got meanwhile (results.json `writeGap`, and the harness log). A gap of many
// seconds beside a 1.1 s failover is a liveness question; this says whether the
// time went to the fault itself, an election, a lease lapse, a promotion, the
// proxy noticing the new primary, or clients waiting out their deadlines.

import { readFileSync } from 'node:fs';
import type { History, Json } from '../history/index.js';
import type { FaultRecord } from '../nemesis/scheduler.js';

/** Daemon log messages that mark a step of a failover (matched on `msg`). */
const STEP_RE = /leadership changed|lease|promot|fenc|step|failover|switchover|demot|rejoin|primary|standby|wal receiver|recloning|rewind/i;
/** Log lines this long before the gap began are shown too: the steps that led into it. */
const LEAD_IN_MS = 3_000;
/** Client errors shown per distinct text. */
const MAX_ERROR_KINDS = 6;

export interface GapStep {
  /** Run-relative ms (the history's clock). */
  atMs: number;
  node: string;
  msg: string;
  detail?: string;
}

export interface WriteGapTimeline {
  fromMs: number;
  toMs: number;
  gapMs: number;
  /** Faults in place at any time during the gap. */
  faults: { name: string; startMs: number; endMs: number | null; detail: Json }[];
  steps: GapStep[];
  /** Failed or indeterminate writes during the gap, by error text (shortened), with the first time each was seen. */
  clientErrors: { error: string; count: number; firstMs: number }[];
  /** The first acknowledged write after the gap, per client node. */
  firstAckByNode: Record<string, number>;
}

interface LogLine {
  time: string;
  node?: string;
  level?: string;
  msg?: string;
  [k: string]: unknown;
}

/** The daemons' JSON log lines with a known wall time; harness markers and malformed lines are skipped. */
export function readNodeLog(file: string, node: string): { wallMs: number; node: string; msg: string; detail: string }[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out: { wallMs: number; node: string; msg: string; detail: string }[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    let l: LogLine;
    try {
      l = JSON.parse(line) as LogLine;
    } catch {
      continue;
    }
    const wallMs = Date.parse(l.time);
    if (!Number.isFinite(wallMs) || typeof l.msg !== 'string') continue;
    const { time: _t, node: _n, level: _l, msg: _m, component: _c, ...rest } = l;
    out.push({ wallMs, node: l.node ?? node, msg: l.msg, detail: Object.keys(rest).length > 0 ? JSON.stringify(rest).slice(0, 200) : '' });
  }
  return out;
}

/**
 * The timeline of the gap [fromMs, toMs] (run-relative). `wallAtZeroMs` is the
 * wall-clock time of the run's clock zero, to place the daemons' log lines
 * (same machine, so one clock).
 */
export function gapTimeline(o: {
  fromMs: number;
  toMs: number;
  history: History;
  writeFs: ReadonlySet<string>;
  faults: readonly FaultRecord[];
  logs: readonly { wallMs: number; node: string; msg: string; detail: string }[];
  wallAtZeroMs: number;
}): WriteGapTimeline {
  const { fromMs, toMs } = o;
  const faults = o.faults
    .filter((f) => f.outcome === 'injected' && f.startMs <= toMs && (f.endMs === null || f.endMs >= fromMs))
    .map((f) => ({ name: f.name, startMs: Math.round(f.startMs), endMs: f.endMs === null ? null : Math.round(f.endMs), detail: f.detail }));
  const steps: GapStep[] = [];
  for (const l of o.logs) {
    const atMs = l.wallMs - o.wallAtZeroMs;
    if (atMs < fromMs - LEAD_IN_MS || atMs > toMs || !STEP_RE.test(l.msg)) continue;
    steps.push({ atMs: Math.round(atMs), node: l.node, msg: l.msg, ...(l.detail !== '' ? { detail: l.detail } : {}) });
  }
  steps.sort((a, b) => a.atMs - b.atMs);
  const errors = new Map<string, { count: number; firstMs: number }>();
  const firstAckByNode: Record<string, number> = {};
  for (const e of o.history) {
    if (!o.writeFs.has(e.f)) continue;
    if ((e.type === 'fail' || e.type === 'info') && e.timeMs >= fromMs && e.timeMs <= toMs) {
      const key = (e.error ?? e.type).replace(/\d+(\.\d+)? ?ms/g, 'N ms').slice(0, 160);
      const seen = errors.get(key);
      if (seen) seen.count++;
      else errors.set(key, { count: 1, firstMs: Math.round(e.timeMs) });
    }
    if (e.type === 'ok' && e.timeMs >= toMs && e.node !== undefined && firstAckByNode[e.node] === undefined) firstAckByNode[e.node] = Math.round(e.timeMs);
  }
  const clientErrors = [...errors.entries()]
    .map(([error, v]) => ({ error, ...v }))
    .sort((a, b) => b.count - a.count)
    .slice(0, MAX_ERROR_KINDS);
  return { fromMs: Math.round(fromMs), toMs: Math.round(toMs), gapMs: Math.round(toMs - fromMs), faults, steps, clientErrors, firstAckByNode };
}

/** The timeline as log lines, times relative to the gap's start. */
export function describeGap(t: WriteGapTimeline): string[] {
  const rel = (ms: number) => `${ms - t.fromMs >= 0 ? '+' : ''}${ms - t.fromMs} ms`;
  const lines = [`longest write gap: ${t.gapMs} ms, from ${t.fromMs} to ${t.toMs} ms of the run`];
  for (const f of t.faults) lines.push(`  fault ${f.name} ${JSON.stringify(f.detail)}: ${rel(f.startMs)} to ${f.endMs === null ? 'the end' : rel(f.endMs)}`);
  for (const s of t.steps) lines.push(`  ${rel(s.atMs)} ${s.node}: ${s.msg}${s.detail ? ` ${s.detail}` : ''}`);
  for (const e of t.clientErrors) lines.push(`  clients: ${e.count}x from ${rel(e.firstMs)}: ${e.error}`);
  for (const [node, ms] of Object.entries(t.firstAckByNode)) lines.push(`  first write acknowledged through ${node}'s proxy: ${rel(ms)}`);
  return lines;
}
