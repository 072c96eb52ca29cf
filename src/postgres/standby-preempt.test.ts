// A follow step gives way to a failover's fence (follow.ts, preempt): a repoint
// toward an upstream that has just become unreachable (here a real socket that
// accepts and never answers, as a partitioned primary behind a dropping
// firewall looks) rejects as soon as its signal is aborted, with the abort's
// reason, instead of holding the server lock for the 5 s connect timeout and
// the 10 s wait for streaming. A jepsen run (partition-primary, seed 7, under
// CPU load) showed the cost: the fence waited 4 s behind such a step, the
// leader counted the standby as unreachable and refused to fail over.

import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import type { PostgresInstance } from './instance.js';
import { connectReplication, repointStandby } from './standby.js';

async function blackHole(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s); // accepted, never answered
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Well under the 5 s connect timeout a step would otherwise hold the lock for. */
const GIVES_WAY_WITHIN_MS = 3_000;

test('a repoint toward an upstream that never answers rejects with the abort reason as soon as a fence aborts it', async () => {
  const hole = await blackHole();
  try {
    const ac = new AbortController();
    // The slot call to the upstream comes first: the local instance is not reached before the abort.
    const notReached = new Proxy({}, { get: () => assert.fail('the local instance is used only after the upstream answered') }) as PostgresInstance;
    const t0 = performance.now();
    const repoint = repointStandby(notReached, { host: '127.0.0.1', port: hole.port, user: 'ogel_replication', password: 'x', applicationName: 'n2' }, 'n2', {
      signal: ac.signal,
    });
    setTimeout(() => ac.abort(new Error('a failover fence of generation 7 preempted this step')), 100);
    await assert.rejects(repoint, /a failover fence of generation 7 preempted this step/);
    const ms = performance.now() - t0;
    assert.ok(ms < GIVES_WAY_WITHIN_MS, `gave way after ${Math.round(ms)} ms`);
    // Already aborted: no connection is tried at all.
    await assert.rejects(connectReplication({ host: '127.0.0.1', port: hole.port, user: 'u', password: 'p' }, { signal: ac.signal }), /preempted/);
  } finally {
    await hole.close();
  }
});
