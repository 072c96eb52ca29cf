// Which backups to keep and which to delete, decided from the backup index alone
// (pure, tested on its own; the leader's backup controller proposes the deletes,
// then deletes the objects: the index forgets before the objects go). The rule,
// grandfather-father-son as in pgBackRest and WAL-G:
//   - over complete backups that did not fail verification, bucketed by the UTC
//     day, ISO week and UTC month they finished in: the newest backup of each of
//     the `daily` most recent days that have one, of the `weekly` most recent
//     weeks and of the `monthly` most recent months;
//   - always the newest of them, every running backup, and every backup a
//     compute starts from (the FSM refuses to delete that one anyway);
//   - every ancestor of a kept backup: an incremental restores only with its
//     whole chain (and the FSM's I7 refuses to delete a parent before its children);
//   - failed backups (no objects, a reason) and complete ones that failed
//     verification (never restored from; kept as evidence): the newest `failed`
//     of them, so ogel status can show why, unless one is an incremental whose
//     parent nothing else keeps (it would pin a whole chain, I7, for a status line);
//   - the rest is deleted, unless something kept is built on it.
// Days "that have a backup" rather than calendar days: a cluster whose backups
// stopped for a month keeps its last week of them, not nothing.
//
// Times are the finishedAtMs the leaders recorded. Two leaders' clocks may
// disagree a little, which moves a backup across a bucket boundary at worst:
// the order of deletes comes from the parent links, never from times.

import type { Backup } from '../../fsm/index.js';

const DAY_MS = 86_400_000;

/** How many of each to keep (config backups.retention; non-negative integers). */
export interface RetentionPolicy {
  daily: number;
  weekly: number;
  monthly: number;
  /** Records of failed backups kept, newest first. */
  failed: number;
}

export interface RetentionDelete {
  readonly id: string;
  readonly why: string;
}

export interface RetentionKeep {
  readonly id: string;
  /** Every rule that keeps it, in the order they were applied (newest, daily, weekly, monthly, running, compute, chain, failed). */
  readonly why: readonly string[];
}

export interface RetentionPlan {
  /**
   * In the order to propose backup.delete: children before their parents, so each
   * one is accepted once those before it are applied. Stopping part-way (a lost
   * leadership) leaves an index the next plan picks up from.
   */
  readonly delete: readonly RetentionDelete[];
  /** Every other backup, newest first. */
  readonly keep: readonly RetentionKeep[];
}

/** The UTC day 'YYYY-MM-DD' of a time. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** The UTC month 'YYYY-MM' of a time. */
export function utcMonth(ms: number): string {
  return new Date(ms).toISOString().slice(0, 7);
}

/** The ISO 8601 week 'YYYY-Www' of a time in UTC (weeks start on Monday; week 1 holds the year's first Thursday). */
export function isoWeek(ms: number): string {
  const d = new Date(ms);
  const midnight = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  const weekday = (d.getUTCDay() + 6) % 7; // Monday 0 .. Sunday 6
  const thursday = midnight + (3 - weekday) * DAY_MS;
  const year = new Date(thursday).getUTCFullYear();
  const week = 1 + Math.floor((thursday - Date.UTC(year, 0, 1)) / (7 * DAY_MS));
  return `${year}-W${String(week).padStart(2, '0')}`;
}

/** When a backup's data is from: its finish (complete or failed), else its start. */
function whenMs(b: Backup): number {
  return b.finishedAtMs ?? b.atMs;
}

function newestFirst(a: Backup, b: Backup): number {
  return whenMs(b) - whenMs(a) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

function checkPolicy(policy: RetentionPolicy): void {
  for (const k of ['daily', 'weekly', 'monthly', 'failed'] as const) {
    const v = policy[k];
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`retention.${k}: expected a count from 0, got ${String(v)}`);
  }
}

/** Length of the parent chain below a backup (0 for a full one); a child is always deeper than its parent. */
function depthOf(id: string, byId: ReadonlyMap<string, Backup>, memo: Map<string, number>): number {
  const path: string[] = [];
  let cur: string | null = id;
  let base = -1;
  while (cur !== null) {
    const known = memo.get(cur);
    if (known !== undefined) {
      base = known;
      break;
    }
    const b = byId.get(cur);
    // A parent missing from the index (I7 makes it impossible) or a loop ends the chain.
    if (b === undefined || path.includes(cur)) break;
    path.push(cur);
    cur = b.parent;
  }
  for (let i = path.length - 1; i >= 0; i--) memo.set(path[i]!, ++base);
  return memo.get(id) ?? 0;
}

/** Keeps the newest backup of each of the `count` most recent buckets that have one. */
function keepNewestPerBucket(
  good: readonly Backup[],
  count: number,
  bucketOf: (ms: number) => string,
  label: string,
  keep: (id: string, why: string) => void,
): void {
  const seen = new Set<string>();
  for (const b of good) {
    if (seen.size >= count) return;
    const bucket = bucketOf(whenMs(b));
    if (seen.has(bucket)) continue;
    seen.add(bucket);
    keep(b.id, `${label}: the newest of ${bucket} (${seen.size} of ${count})`);
  }
}

function deleteWhy(b: Backup, policy: RetentionPolicy, nowMs: number, unpinned: string | undefined): string {
  const ageDays = Math.max(0, Math.floor((nowMs - whenMs(b)) / DAY_MS));
  const when = `${new Date(whenMs(b)).toISOString()}, ${ageDays} d ago`;
  if (b.state === 'failed') return `failed (${when}); ${unpinned ?? `only the ${policy.failed} newest failed records are kept`}`;
  if (b.verification.state === 'failed') {
    return `failed verification (${b.verification.kind}: ${b.verification.detail}; ${when}); no kept backup is built on it, and only the ${policy.failed} newest failed backups are kept`;
  }
  return (
    `finished ${when}: not the newest backup of any of the ${policy.daily} most recent days, ` +
    `${policy.weekly} weeks or ${policy.monthly} months kept, and no kept backup is built on it`
  );
}

/**
 * The retention plan for the index's backups. `inUse`: ids of backups computes
 * start from (ClusterState computes' sourceSnapshot), never deleted. `nowMs`
 * only dates the reasons; the selection depends on the backups alone, so planning
 * again after the deletes are applied deletes nothing more.
 */
function isFailedOrUnusable(b: Backup): boolean {
  return b.state === 'failed' || (b.state === 'complete' && b.verification.state === 'failed');
}

export function planRetention(backups: readonly Backup[], policy: RetentionPolicy, nowMs: number, inUse: ReadonlySet<string> = new Set()): RetentionPlan {
  checkPolicy(policy);
  const byId = new Map(backups.map((b) => [b.id, b]));
  const sorted = [...byId.values()].sort(newestFirst);
  const reasons = new Map<string, string[]>();
  const keep = (id: string, why: string): void => {
    const list = reasons.get(id);
    if (list === undefined) reasons.set(id, [why]);
    else list.push(why);
  };

  const good = sorted.filter((b) => b.state === 'complete' && b.verification.state !== 'failed');
  if (good[0] !== undefined) keep(good[0].id, 'the newest complete backup');
  keepNewestPerBucket(good, policy.daily, utcDay, 'daily', keep);
  keepNewestPerBucket(good, policy.weekly, isoWeek, 'weekly', keep);
  keepNewestPerBucket(good, policy.monthly, utcMonth, 'monthly', keep);
  for (const b of sorted) {
    if (b.state === 'running') keep(b.id, 'running');
    if (inUse.has(b.id)) keep(b.id, 'a compute starts from it');
  }
  // Chains: newest kept first, so an ancestor names its newest kept descendant; a
  // walk stops at an ancestor an earlier walk already reached.
  const chained = new Set<string>();
  for (const b of sorted.filter((x) => reasons.has(x.id))) {
    for (let child = b, p = byId.get(b.parent ?? ''); p !== undefined && !chained.has(p.id); child = p, p = byId.get(p.parent ?? '')) {
      chained.add(p.id);
      const base = `backup ${child.id}${child.id === b.id ? '' : ` (and so ${b.id})`} is built on it`;
      keep(p.id, p.verification.state === 'failed' ? `failed verification (${p.verification.kind}: ${p.verification.detail}), but ${base}` : base);
    }
  }
  // Failed records (and complete backups that failed verification: never restored
  // from, kept as evidence) last, and only those that pin nothing: a failed
  // incremental's parent link would otherwise keep a chain alive (I7) for the sake
  // of a status line.
  // To a fixpoint: a failed incremental's parent may itself be kept only by this rule.
  const unpinned = new Map<string, string>();
  const quota = sorted.filter(isFailedOrUnusable).slice(0, policy.failed);
  const quotaKept = new Set<string>();
  for (let changed = true; changed; ) {
    changed = false;
    for (const b of quota) {
      if (quotaKept.has(b.id) || !(b.parent === null || reasons.has(b.parent))) continue;
      keep(b.id, `one of the ${policy.failed} newest failed backups (its record, for ogel status)`);
      quotaKept.add(b.id);
      changed = true;
    }
  }
  for (const b of quota) if (!quotaKept.has(b.id)) unpinned.set(b.id, `its record would keep the chain of ${b.parent}, which nothing else keeps`);

  const memo = new Map<string, number>();
  const doomed = sorted.filter((b) => !reasons.has(b.id));
  // Deepest first: a child is one deeper than its parent, so it goes before it;
  // within a depth, newest first.
  doomed.sort((a, b) => depthOf(b.id, byId, memo) - depthOf(a.id, byId, memo) || newestFirst(a, b));
  return {
    delete: doomed.map((b) => ({ id: b.id, why: deleteWhy(b, policy, nowMs, unpinned.get(b.id)) })),
    keep: sorted.filter((b) => reasons.has(b.id)).map((b) => ({ id: b.id, why: reasons.get(b.id)! })),
  };
}
