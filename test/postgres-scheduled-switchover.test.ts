// `ogel switchover --scheduled TIME` on three real Postgres 17 nodes: the schedule
// is in the replicated state (status shows it), nothing happens before its time,
// the switchover happens after it and clears it; a cancelled one never happens;
// and one scheduled before the Raft leader is killed (-9) is carried out by the
// next leader.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../src/config/index.js';
import { DaemonCluster } from './helpers/daemons.js';
import { pgView, waitHealthy, type PgView as BaseView } from './helpers/pg-health.js';
import { adminPassword } from '../src/auth/passwords.js';
import { setTimeout as sleep } from 'node:timers/promises';

interface PgView extends BaseView {
  scheduledSwitchover: { to: string | null; notBeforeMs: number; requestedAtMs: number; at: string } | null;
}
interface HistoryEntry {
  generation: number;
  node: string;
  reason: string;
  atMs: number;
}

const IDS = ['n1', 'n2', 'n3'];
/** Far enough ahead for the CLI round trip and the checks before it (and, in the last test, a kill and an election). */
const AHEAD_MS = 6_000;

describe('scheduled switchover', () => {
  let c: DaemonCluster;
  let password: string;

  before(async () => {
    c = await DaemonCluster.create(IDS, 'postgres:\n  leaseMs: 1000\n');
    password = adminPassword(loadConfig(c.configPath));
    await c.startAll();
  });
  after(async () => c.destroy());

  const alive = (id: string): boolean => {
    const p = c.nodes.get(id)!.proc;
    return p !== undefined && p.exitCode === null && p.signalCode === null;
  };

  const view = (): Promise<PgView> => pgView<PgView>(c);

  async function history(): Promise<HistoryEntry[]> {
    const r = await c.cli(['history', '--json']);
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { history: HistoryEntry[] }).history;
  }

  const healthy = (what: string): Promise<PgView> => waitHealthy<PgView>(c, password, what);

  /** Schedules through the CLI, AHEAD_MS from now; returns the instant. */
  async function schedule(to: string): Promise<number> {
    const iso = new Date(Date.now() + AHEAD_MS).toISOString();
    const r = await c.cli(['switchover', '--to', to, '--scheduled', iso, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const answer = JSON.parse(r.stdout) as { scheduled: { to: string; at: string; notBeforeMs: number } };
    assert.deepEqual(answer.scheduled, { to, at: iso, notBeforeMs: Date.parse(iso) });
    return answer.scheduled.notBeforeMs;
  }

  /** Until the clock passes `untilMs`, the primary and generation stay as in `v`. */
  async function nothingHappensBefore(v: PgView, untilMs: number): Promise<void> {
    let checks = 0;
    while (Date.now() < untilMs) {
      const now = await view();
      if (Date.now() >= untilMs) break; // the answer may describe a moment after the time
      assert.equal(now.generation, v.generation, `no promotion ${untilMs - Date.now()} ms before the scheduled time`);
      assert.equal(now.primary, v.primary);
      assert.ok(now.scheduledSwitchover !== null, 'still scheduled');
      checks++;
      await sleep(100);
    }
    assert.ok(checks > 0, 'checked at least once before the time');
  }

  /** Until generation + 1 names `to` primary; returns the view. */
  async function switchedOver(v: PgView, to: string, what: string): Promise<PgView> {
    let w: PgView | undefined;
    await c.waitFor(
      async () => {
        try {
          w = await view();
          return w.generation === v.generation + 1 && w.primary === to && w.nodes[to]?.reportedRole === 'primary';
        } catch {
          return false;
        }
      },
      what,
      20_000,
    );
    return w!;
  }

  it('runs at its time, not before; status shows it until then; the promotion clears it', async () => {
    const v = await healthy('a healthy cluster');
    const target = IDS.find((id) => id !== v.primary)!;
    const atMs = await schedule(target);

    const shown = await view();
    assert.deepEqual({ ...shown.scheduledSwitchover, requestedAtMs: 0 }, { to: target, notBeforeMs: atMs, requestedAtMs: 0, at: new Date(atMs).toISOString() });
    const st = await c.cli(['status']);
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stdout, new RegExp(`^Switchover scheduled: to ${target} at ${new Date(atMs).toISOString().replace(/\.\d+Z$/, 'Z')} \\(in \\ds\\)$`, 'm'));
    const twice = await c.cli(['switchover', '--scheduled', new Date(atMs + 60_000).toISOString()]);
    assert.equal(twice.code, 1);
    assert.match(twice.stderr, /already scheduled.*cancel it first/);

    await nothingHappensBefore(v, atMs);
    const w = await switchedOver(v, target, `the scheduled switchover to ${target}`);
    assert.equal(w.scheduledSwitchover, null, 'the promotion cleared the schedule');
    const last = (await history()).at(-1)!;
    assert.equal(last.generation, v.generation + 1);
    assert.equal(last.node, target);
    assert.equal(last.reason, `switchover: ${v.primary} -> ${target}`);
    assert.ok(last.atMs >= atMs, `promoted at ${last.atMs}, ${atMs - last.atMs} ms before the scheduled ${atMs}`);
    process.stderr.write(`scheduled switchover: promoted ${last.atMs - atMs} ms after its time\n`);
  });

  it('a cancelled schedule is gone and never runs', async () => {
    const v = await healthy('healthy after the scheduled switchover');
    const target = IDS.find((id) => id !== v.primary)!;
    const atMs = await schedule(target);
    const cancel = await c.cli(['switchover', '--cancel']);
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.equal(cancel.stdout, 'scheduled switchover cancelled\n');
    assert.equal((await view()).scheduledSwitchover, null);
    assert.doesNotMatch((await c.cli(['status'])).stdout, /Switchover scheduled/);
    const again = await c.cli(['switchover', '--cancel', '--json']);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(JSON.parse(again.stdout), { cancelled: false });
    // Past its time (plus a few controller rounds): still the same primary and generation.
    await sleep(Math.max(0, atMs - Date.now()) + 1_000);
    const w = await view();
    assert.equal(w.generation, v.generation);
    assert.equal(w.primary, v.primary);
  });

  it('the API refuses a bad time or target with 400 naming the field and the value', async () => {
    const v = await view();
    const leader = await c.waitForLeader();
    const follower = IDS.find((id) => id !== leader && alive(id))!;
    const future = new Date(Date.now() + 60_000).toISOString();
    const cases: [unknown, RegExp][] = [
      [{ scheduledAt: '2020-01-01T00:00:00Z' }, /field 'scheduledAt': "2020-01-01T00:00:00Z" is .* in the past/],
      [{ scheduledAt: '2026-11-21T10:00:00' }, /field 'scheduledAt': "2026-11-21T10:00:00": it has no time zone/],
      [{ scheduledAt: new Date(Date.now() + 31 * 86_400_000).toISOString() }, /field 'scheduledAt': ".*" is 3\d?d.* ahead; at most 30 days/],
      [{ scheduledAt: null }, /field 'scheduledAt': null; leave the field out for a switchover now/],
      [{ scheduledAt: 1795255200000 }, /field 'scheduledAt': expected a string/],
      [{ to: 'n9', scheduledAt: future }, /field 'to': "n9" is not a member/],
      [{ to: v.primary, scheduledAt: future }, new RegExp(`field 'to': ${v.primary} is already the primary`)],
    ];
    for (const [body, re] of cases) {
      // Through a follower too: it checks the time itself and forwards the rest.
      const r = await c.send(follower, 'POST', '/v1/switchover', body);
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.match((r.body as { error: { message: string } }).error.message, re);
    }
    assert.equal((await view()).scheduledSwitchover, null, 'nothing was scheduled');
  });

  it('survives a kill -9 of the Raft leader: the next leader carries it out', async () => {
    const v = await healthy('healthy before the leader kill');
    const primary = v.primary!;
    // The leader to kill must not be the primary's node (that would be a failover,
    // which replaces the schedule), and the target must be the third node.
    let leader = await c.waitForLeader();
    if (leader === primary) {
      const to = IDS.find((id) => id !== primary)!;
      const t = await c.cli(['transfer-leadership', '--to', to]);
      assert.equal(t.code, 0, t.stderr);
      leader = await c.waitForLeader(10_000, primary);
    }
    const target = IDS.find((id) => id !== primary && id !== leader)!;
    const atMs = await schedule(target);

    await c.kill9(leader);
    const next = await c.waitForLeader(10_000, leader);
    assert.notEqual(next, leader);
    assert.ok(Date.now() < atMs, `the new leader (${next}) was elected ${Date.now() - atMs} ms after the scheduled time; the test needs it before`);
    assert.equal((await view()).scheduledSwitchover?.to, target, 'the new leader has the schedule (it is in the replicated state)');

    const w = await switchedOver(v, target, `the new leader ${next} to carry out the switchover to ${target}`);
    assert.equal(w.scheduledSwitchover, null);
    const last = (await history()).at(-1)!;
    assert.equal(last.reason, `switchover: ${primary} -> ${target}`);
    assert.ok(last.atMs >= atMs, 'not before its time');
    assert.match(c.nodes.get(next)!.log.join('\n'), /scheduled switchover done/);
    assert.ok(!alive(leader));
  });
});
