// report.html: one self-contained file (inline SVG, no scripts from elsewhere):
// the verdict, a timeline of every operation (one lane per worker, a bar from
// invoke to completion coloured by outcome) under the fault windows, a latency
// plot (log scale) on the same time axis, the faults and the anomalies.

import { writeFileSync } from 'node:fs';
import type { Op } from '../history/index.js';
import type { FaultRecord } from '../nemesis/scheduler.js';
import type { Summary } from './runner.js';

interface ReportInput {
  summary: Summary;
  events: readonly Op[];
  faults: readonly FaultRecord[];
  runMs: number;
  /** Workers: process p runs in lane p mod concurrency (a worker takes p + concurrency after an info). */
  concurrency: number;
}

interface Span {
  process: number;
  f: string;
  type: 'ok' | 'fail' | 'info';
  startMs: number;
  endMs: number | null;
  text: string;
}

const COLOURS = { ok: '#2a9d4b', fail: '#d62828', info: '#f4a000' } as const;
const FAULT_COLOURS = ['#6c5ce7', '#0984e3', '#00b894', '#e17055', '#b33771', '#3c6382', '#a29bfe', '#fd79a8', '#636e72', '#00cec9', '#fab1a0', '#55efc4'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function spans(events: readonly Op[]): Span[] {
  const open = new Map<number, Op>();
  const out: Span[] = [];
  for (const e of events) {
    if (e.type === 'invoke') {
      open.set(e.process, e);
      continue;
    }
    const inv = open.get(e.process);
    if (inv === undefined) continue;
    open.delete(e.process);
    const v = JSON.stringify(e.value ?? inv.value ?? null);
    out.push({
      process: e.process,
      f: e.f,
      type: e.type,
      startMs: inv.timeMs,
      endMs: e.timeMs,
      text: `p${e.process} ${e.f}${inv.key !== undefined ? `[${inv.key}]` : ''} ${v.length > 80 ? `${v.slice(0, 80)}…` : v} -> ${e.type}${e.node ? ` on ${e.node}` : ''}${e.generation !== undefined ? ` g${e.generation}` : ''}${e.error ? ` (${e.error})` : ''} ${Math.round(e.timeMs - inv.timeMs)} ms`,
    });
  }
  for (const inv of open.values())
    out.push({ process: inv.process, f: inv.f, type: 'info', startMs: inv.timeMs, endMs: null, text: `p${inv.process} ${inv.f} never completed` });
  return out;
}

export function renderReport(r: ReportInput): string {
  const ops = spans(r.events);
  const endMs = Math.max(r.runMs, ...ops.map((s) => s.endMs ?? s.startMs), 1);
  const W = 1200;
  const left = 60;
  const plotW = W - left - 20;
  const x = (ms: number) => left + (ms / endMs) * plotW;
  // Lanes: the workers (process mod concurrency) first, then final-read processes.
  const workers = Math.max(1, r.concurrency);
  const laneOf = (p: number) => (p >= 1_000_000 ? workers : p % workers);
  const lanes = workers + 1;
  const laneH = 14;
  const tlH = lanes * laneH + 40;
  const faultRects = (h: number, top: number) =>
    r.faults
      .filter((f) => f.outcome === 'injected') // a skipped or failed fault had no window
      .map((f, i) => {
        const c = FAULT_COLOURS[i % FAULT_COLOURS.length]!;
        const x0 = x(f.startMs);
        const x1 = x(f.endMs ?? endMs);
        return `<rect x="${x0.toFixed(1)}" y="${top}" width="${Math.max(1, x1 - x0).toFixed(1)}" height="${h}" fill="${c}" fill-opacity="0.13" stroke="${c}" stroke-opacity="0.5"><title>${esc(`${f.name} ${(f.startMs / 1000).toFixed(2)}-${((f.endMs ?? endMs) / 1000).toFixed(2)} s ${JSON.stringify(f.detail)}${f.healed !== null ? ` healed ${JSON.stringify(f.healed)}` : ''}`)}</title></rect><text x="${(x0 + 2).toFixed(1)}" y="${top + 10}" font-size="10" fill="${c}">${esc(f.name)}</text>`;
      })
      .join('');
  const axis = (y: number) => {
    const stepS = Math.max(1, Math.ceil(endMs / 1000 / 12));
    let s = `<line x1="${left}" y1="${y}" x2="${left + plotW}" y2="${y}" stroke="#999"/>`;
    for (let t = 0; t * 1000 <= endMs; t += stepS)
      s += `<line x1="${x(t * 1000)}" y1="${y}" x2="${x(t * 1000)}" y2="${y + 4}" stroke="#999"/><text x="${x(t * 1000)}" y="${y + 15}" font-size="10" text-anchor="middle">${t}s</text>`;
    return s;
  };
  const bars = ops
    .map((s) => {
      const y = 14 + laneOf(s.process) * laneH;
      const x0 = x(s.startMs);
      const x1 = s.endMs === null ? x(endMs) : x(s.endMs);
      return `<rect x="${x0.toFixed(1)}" y="${y}" width="${Math.max(0.8, x1 - x0).toFixed(1)}" height="${laneH - 4}" fill="${COLOURS[s.type]}"><title>${esc(s.text)}</title></rect>`;
    })
    .join('');
  const laneLabels = Array.from(
    { length: lanes },
    (_, i) => `<text x="${left - 4}" y="${14 + i * laneH + 9}" font-size="9" text-anchor="end">${i === workers ? 'final' : `w${i}`}</text>`,
  ).join('');
  const timeline = `<svg width="${W}" height="${tlH}" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif">${faultRects(lanes * laneH + 4, 8)}${laneLabels}${bars}${axis(lanes * laneH + 16)}</svg>`;

  // Latency, log scale from 0.5 ms to the largest.
  const lat = ops.filter((s) => s.endMs !== null).map((s) => ({ s, ms: Math.max(0.5, s.endMs! - s.startMs) }));
  const maxLat = Math.max(10, ...lat.map((l) => l.ms));
  const H = 260;
  const top = 10;
  const y = (ms: number) => top + H - (Math.log10(ms / 0.5) / Math.log10(maxLat / 0.5)) * H;
  let yTicks = '';
  for (let v = 1; v <= maxLat * 1.01; v *= 10)
    yTicks += `<line x1="${left}" y1="${y(v)}" x2="${left + plotW}" y2="${y(v)}" stroke="#eee"/><text x="${left - 4}" y="${y(v) + 3}" font-size="10" text-anchor="end">${v >= 1000 ? `${v / 1000}s` : `${v}ms`}</text>`;
  const dots = lat
    .map(
      (l) =>
        `<circle cx="${x(l.s.startMs).toFixed(1)}" cy="${y(l.ms).toFixed(1)}" r="1.6" fill="${COLOURS[l.s.type]}"><title>${esc(l.s.text)}</title></circle>`,
    )
    .join('');
  const latency = `<svg width="${W}" height="${H + 40}" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif">${faultRects(H, top)}${yTicks}${dots}${axis(top + H + 2)}</svg>`;

  const s = r.summary;
  const verdictColour = s.valid === true ? COLOURS.ok : s.valid === false ? COLOURS.fail : COLOURS.info;
  const faultRows = r.faults
    .map(
      (f) =>
        `<tr><td>${esc(f.name)}</td><td>${esc(f.outcome)}</td><td>${(f.startMs / 1000).toFixed(2)}</td><td>${f.endMs === null ? '' : (f.endMs / 1000).toFixed(2)}</td><td><code>${esc(JSON.stringify(f.detail))}</code></td><td><code>${esc(JSON.stringify(f.healed))}</code></td><td>${esc(f.error ?? '')}</td></tr>`,
    )
    .join('');
  return `<!doctype html><html><head><meta charset="utf-8"><title>jepsen ${esc(s.workload)} ${esc(s.nemesis.join(','))} seed ${s.seed}</title>
<style>body{font-family:sans-serif;margin:20px;color:#222}table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}code,pre{font-size:11px}pre{background:#f6f6f6;padding:8px;overflow:auto;max-height:400px}.k{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}</style></head><body>
<h1>${esc(s.workload)} / ${esc(s.nemesis.join(', ') || 'no nemesis')} / seed ${s.seed}: <span style="color:${verdictColour}">${s.valid === true ? 'valid' : s.valid === false ? 'INVALID' : 'unknown'}</span></h1>
<p>${s.ops} operations: ${s.ok} ok, ${s.fail} fail, ${s.info} info. ${s.faults} of ${s.faults_planned} planned faults injected. Recovery after the final heal: ${s.recovery_ms === null ? 'not within the bound' : `${s.recovery_ms} ms`}.${s.error ? ` Harness error: ${esc(s.error)}` : ''}</p>
<p><span class="k" style="background:${COLOURS.ok}"></span>ok<span class="k" style="background:${COLOURS.fail}"></span>fail<span class="k" style="background:${COLOURS.info}"></span>info (indeterminate)<span class="k" style="background:#6c5ce7;opacity:.3"></span>fault window (hover for details)</p>
<h2>Operations</h2>${timeline}
<h2>Latency (invoke time vs. duration, log scale)</h2>${latency}
<h2>Faults</h2><table><tr><th>nemesis</th><th>outcome</th><th>start s</th><th>healed s</th><th>detail</th><th>healing</th><th>error</th></tr>${faultRows}</table>
<h2>Anomalies (${s.anomalies.length})</h2><pre>${esc(JSON.stringify(s.anomalies, null, 2))}</pre>
</body></html>
`;
}

export function writeReport(path: string, r: ReportInput): void {
  writeFileSync(path, renderReport(r));
}
