// planRetention on hand-made histories (the GFS selection over months, chains,
// failed backups), through the state machine itself (every planned delete is
// accepted), and as properties over random histories.

import { fsmBackup } from '../../test/helpers/backup-fixture.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { apply, type Backup, type Command } from '../../fsm/index.js';
import { C, clusterOf3, run } from '../../fsm/test/helpers.js';
import { isoWeek, planRetention, utcDay, utcMonth, type RetentionPlan, type RetentionPolicy } from './backup-retention.js';

const H = 3_600_000;
const DAY = 24 * H;
const POLICY: RetentionPolicy = { daily: 7, weekly: 4, monthly: 3, failed: 5 };

const backup = (id: string, o: Partial<Backup> = {}): Backup => fsmBackup(id, { atMs: (o.finishedAtMs ?? 0) - H, ...o });

const FAILED_VERIFICATION = { state: 'failed', atMs: 0, detail: 'base.tar.br.00003: sha256 mismatch', kind: 'checksums' } as const;

function ids(plan: RetentionPlan): { keep: string[]; delete: string[] } {
  return { keep: plan.keep.map((k) => k.id).sort(), delete: plan.delete.map((d) => d.id) };
}

/**
 * Applies the deletes one by one to a model of the FSM's backup.delete: refused
 * for an unknown id, a parent of a remaining backup (I7), or one a compute uses.
 * Returns what is left, or throws naming the refused delete.
 */
function applyDeletes(backups: readonly Backup[], plan: RetentionPlan, inUse: ReadonlySet<string> = new Set()): Backup[] {
  const left = new Map(backups.map((b) => [b.id, b]));
  for (const { id } of plan.delete) {
    assert.ok(left.has(id), `delete ${id}: not in the index (deleted twice?)`);
    assert.ok(!inUse.has(id), `delete ${id}: a compute starts from it`);
    const child = [...left.values()].find((b) => b.parent === id);
    assert.equal(child, undefined, `delete ${id}: refused by I7, ${child?.id} is built on it`);
    left.delete(id);
  }
  return [...left.values()];
}

test('isoWeek, utcDay and utcMonth bucket by UTC; ISO weeks cross year ends', () => {
  assert.equal(isoWeek(Date.UTC(2021, 0, 3, 23)), '2020-W53', 'a Sunday in January, still in the last week of 2020');
  assert.equal(isoWeek(Date.UTC(2024, 11, 30)), '2025-W01', 'a Monday in December, already in 2025');
  assert.equal(isoWeek(Date.UTC(2026, 0, 1)), '2026-W01');
  assert.equal(isoWeek(Date.UTC(2025, 2, 9, 23, 59)), '2025-W10', 'Sunday closes the week');
  assert.equal(isoWeek(Date.UTC(2025, 2, 10)), '2025-W11', 'Monday opens the next');
  assert.equal(utcDay(Date.UTC(2025, 2, 9, 23, 59)), '2025-03-09');
  assert.equal(utcMonth(Date.UTC(2025, 1, 28, 23)), '2025-02');
});

test('grandfather-father-son over four months: the newest of 7 days, 4 ISO weeks and 3 months', () => {
  // Two full backups a day, 02:00 and 14:00 UTC, from 2024-11-01 to Wednesday 2025-03-12.
  const history: Backup[] = [];
  for (let t = Date.UTC(2024, 10, 1); t <= Date.UTC(2025, 2, 12); t += DAY) {
    for (const hour of [2, 14]) history.push(backup(`${utcDay(t)}-${hour}`, { finishedAtMs: t + hour * H }));
  }
  const now = Date.UTC(2025, 2, 12, 18);
  const plan = planRetention(history, POLICY, now);
  const days = ['03-06', '03-07', '03-08', '03-09', '03-10', '03-11', '03-12'].map((d) => `2025-${d}-14`);
  // Weeks W11 (today), W10 (Sunday 03-09), W09 (Sunday 03-02), W08 (Sunday 02-23); months 03 (today), 02 (02-28), 01 (01-31).
  const expected = [...days, '2025-03-02-14', '2025-02-23-14', '2025-02-28-14', '2025-01-31-14'].sort();
  assert.deepEqual(ids(plan).keep, expected);
  assert.equal(plan.delete.length, history.length - expected.length);
  const why = new Map(plan.keep.map((k) => [k.id, k.why]));
  assert.deepEqual(why.get('2025-03-12-14'), [
    'the newest complete backup',
    'daily: the newest of 2025-03-12 (1 of 7)',
    'weekly: the newest of 2025-W11 (1 of 4)',
    'monthly: the newest of 2025-03 (1 of 3)',
  ]);
  assert.deepEqual(why.get('2025-03-09-14'), ['daily: the newest of 2025-03-09 (4 of 7)', 'weekly: the newest of 2025-W10 (2 of 4)']);
  assert.deepEqual(why.get('2025-01-31-14'), ['monthly: the newest of 2025-01 (3 of 3)']);
  const old = plan.delete.find((d) => d.id === '2024-11-01-2');
  assert.match(old?.why ?? '', /^finished 2024-11-01T02:00:00\.000Z, 131 d ago: not the newest backup of any of the 7 most recent days, 4 weeks or 3 months/);
  applyDeletes(history, plan);
  // The policy at zero keeps the newest alone.
  assert.deepEqual(ids(planRetention(history, { daily: 0, weekly: 0, monthly: 0, failed: 0 }, now)).keep, ['2025-03-12-14']);
});

test('days that have a backup, not calendar days: a cluster whose backups stopped keeps its last ones', () => {
  const history = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((d) => backup(`jan-${d}`, { finishedAtMs: Date.UTC(2025, 0, d, 3) }));
  const plan = planRetention(history, { daily: 7, weekly: 0, monthly: 0, failed: 0 }, Date.UTC(2025, 5, 1));
  assert.deepEqual(ids(plan).keep, ['jan-10', 'jan-4', 'jan-5', 'jan-6', 'jan-7', 'jan-8', 'jan-9']);
  assert.deepEqual(ids(plan).delete, ['jan-3', 'jan-2', 'jan-1']);
});

test('chains: a kept incremental keeps every ancestor, even one that failed verification; old chains go newest first', () => {
  const t = Date.UTC(2025, 2, 12);
  const history = [
    // An old chain nothing keeps.
    backup('f1', { finishedAtMs: t - 10 * DAY }),
    backup('a1', { parent: 'f1', finishedAtMs: t - 9 * DAY }),
    backup('a2', { parent: 'a1', finishedAtMs: t - 8 * DAY }),
    // The current chain: b1 failed verification after b3 was built on it; b2, a leaf, failed it too.
    backup('f2', { finishedAtMs: t - 3 * DAY }),
    backup('b1', { parent: 'f2', finishedAtMs: t - 2 * DAY, verification: FAILED_VERIFICATION }),
    backup('b2', { parent: 'b1', finishedAtMs: t - 2 * DAY + H, verification: FAILED_VERIFICATION }),
    backup('b3', { parent: 'b1', finishedAtMs: t - DAY }),
    backup('b4', { parent: 'b3', finishedAtMs: t }),
  ];
  const plan = planRetention(history, { daily: 1, weekly: 0, monthly: 0, failed: 0 }, t);
  assert.deepEqual(ids(plan), { keep: ['b1', 'b3', 'b4', 'f2'], delete: ['b2', 'a2', 'a1', 'f1'] });
  const why = new Map(plan.keep.map((k) => [k.id, k.why]));
  assert.deepEqual(why.get('b3'), ['backup b4 is built on it']);
  assert.deepEqual(why.get('b1'), ['failed verification (checksums: base.tar.br.00003: sha256 mismatch), but backup b3 (and so b4) is built on it']);
  assert.deepEqual(why.get('f2'), ['backup b1 (and so b4) is built on it']);
  assert.match(
    plan.delete.find((d) => d.id === 'b2')!.why,
    /^failed verification \(checksums: base\.tar\.br\.00003: sha256 mismatch; .*\); no kept backup is built on it, and only the 0 newest failed backups are kept$/,
  );
  assert.deepEqual(ids(planRetention(applyDeletes(history, plan), { daily: 1, weekly: 0, monthly: 0, failed: 0 }, t)).delete, []);
});

test('running backups, backups a compute starts from, and their chains are kept; the newest failed records stay', () => {
  const t = Date.UTC(2025, 2, 12);
  const history = [
    backup('o1', { finishedAtMs: t - 40 * DAY }),
    backup('o2', { parent: 'o1', finishedAtMs: t - 39 * DAY }),
    backup('o3', { parent: 'o2', finishedAtMs: t - 38 * DAY }),
    backup('f', { finishedAtMs: t - DAY }),
    // A running incremental on an old backup (an operator's request on a stale chain, say).
    backup('r', { parent: 'o1', state: 'running', endLsn: null, finishedAtMs: null, atMs: t }),
    ...[1, 2, 3, 4, 5, 6, 7].map((i) => backup(`x${i}`, { state: 'failed', failureReason: 'connection lost', finishedAtMs: t - i * H })),
  ];
  // A failed incremental of o3, which nothing else keeps: its record would pin o3.
  history[history.findIndex((b) => b.id === 'x2')] = backup('x2', { parent: 'o3', state: 'failed', finishedAtMs: t - 2 * H });
  const plan = planRetention(history, { daily: 1, weekly: 0, monthly: 0, failed: 3 }, t, new Set(['o2']));
  assert.deepEqual(ids(plan), { keep: ['f', 'o1', 'o2', 'r', 'x1', 'x3'], delete: ['x2', 'o3', 'x4', 'x5', 'x6', 'x7'] });
  const why = new Map(plan.keep.map((k) => [k.id, k.why]));
  assert.deepEqual(why.get('o2'), ['a compute starts from it']);
  assert.deepEqual(why.get('o1'), ['backup r is built on it'], 'the running backup is the newest: its walk reaches o1 first');
  assert.deepEqual(why.get('x3'), ['one of the 3 newest failed backups (its record, for ogel status)']);
  assert.match(plan.delete.find((d) => d.id === 'x7')!.why, /^failed \(.*\); only the 3 newest failed records are kept$/);
  assert.match(plan.delete.find((d) => d.id === 'x2')!.why, /^failed \(.*\); its record would keep the chain of o3, which nothing else keeps$/);
  applyDeletes(history, plan, new Set(['o2']));
  assert.throws(() => planRetention(history, { ...POLICY, daily: -1 }, t), /retention\.daily: expected a count from 0, got -1/);
});

test('the state machine accepts every planned delete, in order', () => {
  let s = run([C.tenantCreate()], clusterOf3());
  const t0 = Date.UTC(2025, 0, 1);
  let k = 0;
  const lsn = (n: number): string => `0/${(n * 0x1000000).toString(16).toUpperCase()}`;
  const take = (id: string, parent: string | null, atMs: number, end: 'complete' | 'failed' | 'running' = 'complete'): void => {
    k += 2;
    const cmds: Command[] = [C.backupRecord({ id, atMs, kind: parent ? 'incremental' : 'full', parent, startLsn: lsn(k), prefix: `c1/basebackups/${id}/` })];
    if (end === 'complete') cmds.push(C.backupComplete({ id, atMs: atMs + H, endLsn: lsn(k + 1) }));
    if (end === 'failed') cmds.push(C.backupFail({ id, atMs: atMs + H }));
    s = run(cmds, s);
  };
  // Ten weeks of a weekly full and a daily incremental chain, a failure now and then.
  let parent: string | null = null;
  for (let day = 0; day < 70; day++) {
    const id = `d${String(day).padStart(2, '0')}`;
    if (day % 7 === 0) parent = null;
    if (day % 11 === 5) take(`${id}-x`, parent, t0 + day * DAY - 2 * H, 'failed');
    take(id, parent, t0 + day * DAY);
    parent = id;
  }
  take('d70', parent, t0 + 70 * DAY, 'running');
  // A compute starts from an incremental in an old chain.
  s = run([C.computeCreate({ id: 'c1', sourceSnapshot: 'd10', sourceLsn: null })], s);
  const inUse = new Set([...s.computes.values()].map((c) => c.sourceSnapshot).filter((x): x is string => x !== null));
  const plan = planRetention([...s.backups.values()], POLICY, t0 + 70 * DAY);
  assert.ok(plan.delete.length > 30, `${plan.delete.length} deletes`);
  const withCompute = planRetention([...s.backups.values()], POLICY, t0 + 70 * DAY, inUse);
  assert.ok(['d07', 'd08', 'd09', 'd10'].every((id) => withCompute.keep.some((x) => x.id === id)));
  for (const { id } of withCompute.delete) {
    const out = apply(s, C.backupDelete({ id, atMs: t0 + 70 * DAY }));
    assert.equal(out.result.ok, true, `backup.delete ${id}: ${JSON.stringify(out.result)}`);
    s = out.state;
  }
  assert.deepEqual(planRetention([...s.backups.values()], POLICY, t0 + 71 * DAY, inUse).delete, []);
  const failed = [...s.backups.values()].filter((b) => b.state === 'failed').map((b) => b.id);
  assert.ok(failed.length > 0 && failed.length <= 5, failed.join(' '));
});

// ---------------------------------------------------------------------------
// Properties over random histories: backups every few minutes to a few days
// apart (sometimes back in time: another leader's clock), full or incremental on
// any complete one, some failed, running or failing verification, some used by
// computes.

interface Step {
  gapMs: number;
  parent: number | null;
  end: 'complete' | 'failed' | 'running';
  inUse: boolean;
}

const stepArb: fc.Arbitrary<Step> = fc.record({
  gapMs: fc.oneof(fc.integer({ min: 60_000, max: 3 * DAY }), fc.integer({ min: -2 * H, max: 0 })),
  parent: fc.option(fc.nat(), { nil: null, freq: 3 }),
  end: fc.constantFrom<Step['end']>('complete', 'complete', 'complete', 'complete', 'failed', 'running'),
  inUse: fc.integer({ min: 0, max: 19 }).map((n) => n === 0),
});

function history(steps: readonly Step[], badVerifications: readonly number[]): { backups: Backup[]; inUse: Set<string> } {
  const backups: Backup[] = [];
  const inUse = new Set<string>();
  let t = Date.UTC(2024, 0, 1);
  steps.forEach((s, i) => {
    t += s.gapMs;
    const complete = backups.filter((b) => b.state === 'complete');
    const parent = s.parent === null || complete.length === 0 ? null : complete[s.parent % complete.length]!.id;
    const id = `b${String(i).padStart(3, '0')}`;
    const done = s.end !== 'running';
    const b = backup(id, { parent, state: s.end, atMs: t - H, finishedAtMs: done ? t : null, endLsn: s.end === 'complete' ? '0/2000000' : null });
    backups.push(b);
    if (s.inUse && s.end === 'complete') inUse.add(id);
  });
  // Verification may fail after children were built on a backup.
  for (const n of badVerifications) {
    const i = n % Math.max(1, backups.length);
    const b = backups[i];
    if (b?.state === 'complete') backups[i] = { ...b, verification: FAILED_VERIFICATION };
  }
  return { backups, inUse };
}

const policyArb: fc.Arbitrary<RetentionPolicy> = fc.record({
  daily: fc.integer({ min: 0, max: 10 }),
  weekly: fc.integer({ min: 0, max: 6 }),
  monthly: fc.integer({ min: 0, max: 4 }),
  failed: fc.integer({ min: 0, max: 4 }),
});

function newestOf(bs: readonly Backup[]): Backup | undefined {
  return [...bs].sort((a, b) => (b.finishedAtMs ?? b.atMs) - (a.finishedAtMs ?? a.atMs) || b.id.localeCompare(a.id))[0];
}

test('properties: a partition; deletes accepted in order; the newest, running, used and needed backups kept; GFS buckets; idempotent', () => {
  fc.assert(
    fc.property(fc.array(stepArb, { maxLength: 80 }), fc.array(fc.nat(), { maxLength: 6 }), policyArb, (steps, bad, policy) => {
      const { backups, inUse } = history(steps, bad);
      const now = Date.UTC(2025, 0, 1);
      const plan = planRetention(backups, policy, now, inUse);
      const kept = new Set(plan.keep.map((k) => k.id));
      const deleted = new Set(plan.delete.map((d) => d.id));
      assert.equal(kept.size + deleted.size, backups.length, 'every backup is kept or deleted, once');
      assert.equal(plan.delete.length, deleted.size);
      const left = applyDeletes(backups, plan, inUse);
      const byId = new Map(backups.map((b) => [b.id, b]));
      const good = backups.filter((b) => b.state === 'complete' && b.verification.state !== 'failed');
      const newest = newestOf(good);
      if (newest !== undefined) assert.ok(kept.has(newest.id), `the newest complete backup ${newest.id} is kept`);
      for (const b of backups) {
        if (b.state === 'running' || inUse.has(b.id)) assert.ok(kept.has(b.id), `${b.id} (${b.state}, in use: ${inUse.has(b.id)}) is kept`);
      }
      for (const id of kept) {
        for (let p = byId.get(id)?.parent ?? null; p !== null; p = byId.get(p)?.parent ?? null)
          assert.ok(kept.has(p), `${p}, an ancestor of kept ${id}, is kept`);
      }
      for (const [count, bucketOf] of [
        [policy.daily, utcDay],
        [policy.weekly, isoWeek],
        [policy.monthly, utcMonth],
      ] as const) {
        const buckets = new Map<string, Backup[]>();
        for (const b of good) buckets.set(bucketOf(b.finishedAtMs!), [...(buckets.get(bucketOf(b.finishedAtMs!)) ?? []), b]);
        const recent = [...buckets.values()].map((bs) => newestOf(bs)!);
        for (const b of recent.sort((x, y) => y.finishedAtMs! - x.finishedAtMs!).slice(0, count))
          assert.ok(kept.has(b.id), `${b.id}, the newest of its bucket`);
      }
      // The newest failed records are kept unless one would pin a chain nothing else keeps.
      // Complete backups that failed verification share the quota (and may also be kept as an ancestor).
      const failed = backups
        .filter((b) => b.state === 'failed' || (b.state === 'complete' && b.verification.state === 'failed'))
        .sort((a, b) => b.finishedAtMs! - a.finishedAtMs! || b.id.localeCompare(a.id));
      failed.forEach((b, i) => {
        const wanted = i < policy.failed && (b.parent === null || kept.has(b.parent));
        if (wanted || b.state === 'failed') assert.equal(kept.has(b.id), wanted, `failed ${b.id} (${i + 1}. newest, parent ${b.parent}) kept: ${wanted}`);
      });
      const again = planRetention(left, policy, now + DAY, inUse);
      assert.deepEqual(again.delete, [], 'planning again after the deletes deletes nothing more');
      assert.deepEqual(new Set(again.keep.map((k) => k.id)), kept);
    }),
    { numRuns: 300 },
  );
});
