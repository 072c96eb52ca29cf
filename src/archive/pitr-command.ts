// The point-in-time half of `ogel restore`: --target-time, --target-lsn,
// --target-name or --latest, with --timeline. Like the rest of `ogel
// restore`, it reads only the object store: the backups, the WAL archive's
// listing, its history files and the recorded restore points.

import { formatLsn } from '../../fsm/index.js';
import type { ObjectStore } from '../object-store/index.js';
import { listBackupManifests, readObject } from '../backup/store-io.js';
import type { BackupManifest } from '../backup/manifest.js';
import { ProgressLine } from '../backup/progress.js';
import { readCatalog, type WalCatalog } from './catalog.js';
import { describeWindow, iso, newestTimeline, pathSpans, planRestore, timelinePath, windowsFor, type PitrTarget, type RestoreWindow } from './pitr-plan.js';
import { PitrError, runPitr, type PitrResult } from './pitr.js';
import { parseTargetLsn, parseTargetTime, restorePointProblem } from './pitr-target.js';
import { readRestorePoint } from './restore-points.js';

export interface ArchiveView {
  backups: BackupManifest[];
  catalog: WalCatalog;
  histories: Map<number, string>;
}

export async function readArchiveView(store: ObjectStore, clusterPrefix: string): Promise<ArchiveView> {
  const [backups, catalog] = await Promise.all([listBackupManifests(store, clusterPrefix), readCatalog(store, clusterPrefix)]);
  const histories = new Map<number, string>();
  for (const [tli, key] of catalog.histories) histories.set(tli, (await readObject(store, { key })).toString('utf8'));
  return { backups, catalog, histories };
}

/** The restorable windows of the newest timeline (or `timeline`), oldest first. */
export function restoreWindows(view: ArchiveView, timeline?: number): { timeline: number; windows: RestoreWindow[]; problem: string | null } {
  const tli = timeline ?? newestTimeline(view.catalog, view.backups);
  const path = timelinePath(tli, view.histories);
  if (typeof path === 'string') return { timeline: tli, windows: [], problem: path };
  return { timeline: tli, windows: windowsFor(view.backups, pathSpans(view.catalog, path), path), problem: null };
}

export interface TargetArgs {
  'target-time'?: string | undefined;
  'target-lsn'?: string | undefined;
  'target-name'?: string | undefined;
  latest?: boolean | undefined;
  timeline?: string | undefined;
}

export function wantsPitr(v: TargetArgs): boolean {
  return v['target-time'] !== undefined || v['target-lsn'] !== undefined || v['target-name'] !== undefined || v.latest === true;
}

/** Checks the target options; an error message names the option, the value and the fix. */
export function readTargetArgs(
  v: TargetArgs,
): { target: Exclude<PitrTarget, { kind: 'name' }> | { kind: 'name'; name: string }; timeline: number | undefined } | { error: string } {
  const given = (['target-time', 'target-lsn', 'target-name', 'latest'] as const).filter((k) => (k === 'latest' ? v.latest === true : v[k] !== undefined));
  if (given.length > 1) return { error: `give one target, not ${given.map((k) => `--${k}`).join(' and ')}` };
  let timeline: number | undefined;
  if (v.timeline !== undefined) {
    timeline = Number(v.timeline);
    if (!/^\d+$/.test(v.timeline) || !Number.isSafeInteger(timeline) || timeline < 1)
      return { error: `--timeline ${JSON.stringify(v.timeline)} is not a timeline number (1 or more)` };
  }
  if (v['target-time'] !== undefined) {
    const t = parseTargetTime(v['target-time']);
    if ('error' in t) return { error: `--target-time: ${t.error}` };
    return { target: { kind: 'time', atMs: t.atMs, pgText: t.pgText }, timeline };
  }
  if (v['target-lsn'] !== undefined) {
    const l = parseTargetLsn(v['target-lsn']);
    if (typeof l !== 'bigint') return { error: `--target-lsn: ${l.error}` };
    return { target: { kind: 'lsn', lsn: l }, timeline };
  }
  if (v['target-name'] !== undefined) {
    const problem = restorePointProblem(v['target-name']);
    if (problem) return { error: `--target-name: ${problem}` };
    return { target: { kind: 'name', name: v['target-name'] }, timeline };
  }
  return { target: { kind: 'latest' }, timeline };
}

export interface PitrCommandInput {
  store: ObjectStore;
  clusterPrefix: string;
  args: TargetArgs;
  toDir: string;
  json: boolean;
}

/** Exit code: 0 restored, 1 refused or failed (the message says which range is restorable), 2 bad arguments. */
export async function runPitrCommand(input: PitrCommandInput): Promise<number> {
  const parsed = readTargetArgs(input.args);
  if ('error' in parsed) {
    process.stderr.write(`ogel restore: ${parsed.error}\nhint: run 'ogel restore --help' for usage\n`);
    return 2;
  }
  const view = await readArchiveView(input.store, input.clusterPrefix);
  let target: PitrTarget;
  if (parsed.target.kind === 'name') {
    const rp = await readRestorePoint(input.store, input.clusterPrefix, parsed.target.name);
    if (rp === null) {
      process.stderr.write(
        `ogel restore: no restore point ${JSON.stringify(parsed.target.name)} is recorded in ${input.store.description}\nhint: 'ogel restore --list' shows them; make one with 'ogel restore-point create NAME'\n`,
      );
      return 1;
    }
    target = { kind: 'name', name: rp.name, lsn: rp.lsn, timeline: rp.timeline };
  } else {
    target = parsed.target;
  }
  const planned = planRestore({ ...view, target, timeline: parsed.timeline ?? (target.kind === 'name' ? target.timeline : undefined), nowMs: Date.now() });
  if (!planned.ok) {
    process.stderr.write(`ogel restore: ${planned.reason}\n`);
    if (input.json) process.stdout.write(`${JSON.stringify({ error: planned.reason, restorable: planned.windows.map(windowJson) }, null, 2)}\n`);
    return 1;
  }
  const plan = planned.plan;
  const progress = new ProgressLine('restore', process.stderr);
  let result: PitrResult;
  try {
    result = await runPitr({
      store: input.store,
      catalog: view.catalog,
      plan,
      targetDir: input.toDir,
      onProgress: (p) => {
        if (p.stage === 'restore') progress.update(p.doneBytes, p.totalBytes);
        else progress.note(`replaying WAL: segment ${p.segmentsRequested} of ${p.segmentsPlanned} planned, ${(p.fetchedWalBytes / 1e6).toFixed(0)} MB fetched`);
      },
    });
  } catch (e) {
    if (e instanceof PitrError) {
      progress.done(`failed`);
      process.stderr.write(`ogel restore: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
  progress.done(
    `restored ${result.chain.join(' + ')} and replayed ${result.walSegments} WAL segments into ${input.toDir} in ${(result.durationMs / 1000).toFixed(1)} s`,
  );
  const out = { dir: input.toDir, target: targetJson(target), ...result, window: windowJson(plan.window) };
  if (input.json) process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  else {
    process.stdout.write(
      [
        `Restored to ${describeTarget(target)} from backup ${result.backup}${result.chain.length > 1 ? ` (chain ${result.chain.join(' + ')})` : ''}, following timeline ${result.timeline}.`,
        `Replay: ${result.stoppedAt ?? 'to the end of the archive'}${result.replayedToEnd ? ' (no commit after the target is archived: everything archived was replayed)' : ''}.`,
        `The copy now writes timeline ${result.newTimeline}, at LSN ${result.lsn}. Start it with: postgres -D ${input.toDir} [-p PORT]`,
        '',
      ].join('\n'),
    );
  }
  return 0;
}

function describeTarget(t: PitrTarget): string {
  switch (t.kind) {
    case 'time':
      return `time ${t.pgText}`;
    case 'lsn':
      return `LSN ${formatLsn(t.lsn)}`;
    case 'name':
      return `restore point ${JSON.stringify(t.name)} (LSN ${formatLsn(t.lsn)})`;
    case 'latest':
      return 'the end of the archive';
  }
}

function targetJson(t: PitrTarget): Record<string, unknown> {
  switch (t.kind) {
    case 'time':
      return { kind: 'time', time: iso(t.atMs), postgres: t.pgText };
    case 'lsn':
      return { kind: 'lsn', lsn: formatLsn(t.lsn) };
    case 'name':
      return { kind: 'name', name: t.name, lsn: formatLsn(t.lsn), timeline: t.timeline };
    case 'latest':
      return { kind: 'latest' };
  }
}

export function windowJson(w: RestoreWindow): Record<string, unknown> {
  return { backup: w.backup, timeline: w.timeline, from: iso(w.fromAtMs), fromLsn: formatLsn(w.fromLsn), to: iso(w.toAtMs), toLsn: formatLsn(w.toLsn) };
}

export function describeWindows(windows: readonly RestoreWindow[]): string[] {
  return windows.map((w) => `  ${describeWindow(w)}`);
}
