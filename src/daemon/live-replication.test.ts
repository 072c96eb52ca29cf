import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PostgresInstance } from '../postgres/instance.js';
import { LiveReplication, PostgresUnavailableError } from './live-replication.js';
import { setTimeout as sleep } from 'node:timers/promises';

/** A fake instance whose query answers as a primary with one standby, after `delayMs`. */
function fakeInstance(o: { delayMs?: number; running?: boolean; inRecovery?: boolean } = {}) {
  let queries = 0;
  const inst = {
    isRunning: () => o.running ?? true,
    query: (async () => {
      queries++;
      await sleep(o.delayMs ?? 0);
      const base = { in_recovery: o.inRecovery ?? false, current_lsn: o.inRecovery ? null : '0/5000060' };
      const standby = {
        standby: 'n2',
        state: 'streaming',
        sync_state: 'quorum',
        sent_lsn: '0/5000060',
        write_lsn: '0/5000060',
        flush_lsn: '0/5000060',
        replay_lsn: '0/5000000',
        lag_bytes: '96',
        write_lag_s: null,
        flush_lag_s: null,
        replay_lag_s: 0.002,
      };
      return { rows: [o.inRecovery ? { ...base } : { ...base, ...standby }] };
    }) as unknown as PostgresInstance['query'],
  };
  return { inst, queries: () => queries };
}

test('LiveReplication: one reading in flight, reused while fresh, bounded in time', async () => {
  let now = 0;
  const f = fakeInstance({ delayMs: 20 });
  const live = new LiveReplication({ instance: () => f.inst, timeoutMs: 500, maxAgeMs: 250, now: () => now });
  const [a, b] = await Promise.all([live.read(), live.read()]);
  assert.equal(f.queries(), 1, 'concurrent reads share one query');
  assert.equal(a, b);
  assert.deepEqual(
    a?.standbys.map((s) => [s.standby, s.lagBytes, s.lagSeconds]),
    [['n2', 96, 0.002]],
  );
  now += 200;
  await live.read();
  assert.equal(f.queries(), 1, 'still fresh');
  now += 100;
  await live.read();
  assert.equal(f.queries(), 2, 'stale: read again');

  const slow = new LiveReplication({ instance: () => fakeInstance({ delayMs: 300 }).inst, timeoutMs: 50, maxAgeMs: 0 });
  await assert.rejects(slow.read(), /timed out after 50 ms/);
});

test('LiveReplication: null on a standby; PostgresUnavailableError without a running instance', async () => {
  const standby = new LiveReplication({ instance: () => fakeInstance({ inRecovery: true }).inst, timeoutMs: 500, maxAgeMs: 0 });
  assert.equal(await standby.read(), null);
  await assert.rejects(new LiveReplication({ instance: () => undefined, timeoutMs: 500, maxAgeMs: 0 }).read(), PostgresUnavailableError);
  await assert.rejects(
    new LiveReplication({ instance: () => fakeInstance({ running: false }).inst, timeoutMs: 500, maxAgeMs: 0 }).read(),
    PostgresUnavailableError,
  );
  assert.throws(() => new LiveReplication({ instance: () => undefined, timeoutMs: 0, maxAgeMs: 0 }), RangeError);
});
