// Routing from the state machine's view (docs/proxy.md, Routing; I3): writes go
// only to the primary of the current generation once its lease has a committed
// renewal; never to a fenced node or a standby; read-only sessions go to a
// standby within the lag bound, else to the primary.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ClusterRouter, computeView } from './router.js';
import type { ClusterState } from '../../fsm/index.js';

type View = Pick<ClusterState, 'postgres' | 'members'>;

function state(o: {
  primary: string | null;
  generation: number;
  renewalSeq?: number;
  holder?: string;
  leaseGeneration?: number;
  roles?: Record<string, string>;
  reported?: Record<string, string>;
  replayed?: Record<string, string>;
}): View {
  const ids = ['n1', 'n2', 'n3'];
  const roles = o.roles ?? { n1: 'primary', n2: 'standby', n3: 'standby' };
  const replayed = o.replayed ?? { n1: '0/3000000', n2: '0/3000000', n3: '0/3000000' };
  return {
    postgres: {
      nodes: new Map(
        ids.map((id) => [
          id,
          {
            node: id,
            role: roles[id],
            reportedRole: (o.reported ?? roles)[id],
            timeline: 1,
            lsn: { received: replayed[id], flushed: replayed[id], replayed: replayed[id] },
            reportedAtMs: 1,
          },
        ]),
      ),
      primary: o.primary,
      generation: o.generation,
      lease:
        o.primary === null
          ? null
          : { holder: o.holder ?? o.primary, generation: o.leaseGeneration ?? o.generation, durationMs: 3000, renewalSeq: o.renewalSeq ?? 1 },
      syncStandbys: [],
      syncQuorum: 0,
      history: [],
      failoverBlocked: null,
    },
    members: new Map(
      ids.map((id, i) => [
        id,
        {
          id,
          addresses: { raft: `h:${1000 + i}`, api: `h:${2000 + i}`, proxy: `h:${3000 + i}`, postgres: `10.0.0.${i + 1}:5432` },
          health: { healthy: true, reportedAtMs: 1, detail: null },
          addedAtMs: 1,
        },
      ]),
    ),
  } as unknown as View;
}

describe('router', () => {
  it('writes go to the writable primary of the current generation, with its Postgres address', () => {
    const v = computeView(state({ primary: 'n1', generation: 3 }), 1 << 20);
    assert.deepEqual(v.primary, { node: 'n1', host: '10.0.0.1', port: 5432, generation: 3, primary: true });
  });

  it('I3: no write route without a committed renewal, with a lease of another generation or holder, or without a primary', () => {
    for (const s of [
      state({ primary: 'n1', generation: 3, renewalSeq: 0 }),
      state({ primary: 'n1', generation: 3, leaseGeneration: 2 }),
      state({ primary: 'n1', generation: 3, holder: 'n2' }),
      state({ primary: null, generation: 3 }),
    ]) {
      const v = computeView(s, 1 << 20);
      assert.equal(v.primary, null);
      assert.match(v.reason, /failover or switchover|bootstrapping/);
      const r = new ClusterRouter({ state: () => s, maxReplicaLagBytes: 1 << 20 });
      assert.equal(r.route(false), 'hold');
      assert.equal(r.route(true), 'hold');
    }
  });

  it('a fenced or recloning node is never a route, even for reads; standbys within the lag bound are', () => {
    const s = state({ primary: 'n1', generation: 2, roles: { n1: 'primary', n2: 'fenced', n3: 'standby' } });
    const v = computeView(s, 1 << 20);
    assert.deepEqual(
      v.standbys.map((t) => t.node),
      ['n3'],
    );
    const r = new ClusterRouter({ state: () => s, maxReplicaLagBytes: 1 << 20 });
    for (let i = 0; i < 5; i++) assert.equal((r.route(true) as { node: string }).node, 'n3');
    assert.equal((r.route(false) as { node: string }).node, 'n1');
  });

  it('a standby the cluster set no role for (wanted absent, as after bootstrap) that reports standby is a read route; one not yet reporting is not', () => {
    const s = state({
      primary: 'n1',
      generation: 1,
      roles: { n1: 'primary', n2: 'absent', n3: 'absent' },
      reported: { n1: 'primary', n2: 'standby', n3: 'absent' },
    });
    assert.deepEqual(
      computeView(s, 1 << 20).standbys.map((t) => t.node),
      ['n2'],
    );
    const recloning = state({
      primary: 'n1',
      generation: 1,
      roles: { n1: 'primary', n2: 'recloning', n3: 'fenced' },
      reported: { n1: 'primary', n2: 'standby', n3: 'standby' },
    });
    assert.deepEqual(computeView(recloning, 1 << 20).standbys, []);
  });

  it('a standby lagging by the bound or more is not used; reads then go to the primary', () => {
    const s = state({ primary: 'n1', generation: 2, replayed: { n1: '0/3000000', n2: '0/2000000', n3: '0/2F00000' } });
    assert.deepEqual(
      computeView(s, 0x100001).standbys.map((t) => t.node),
      ['n3'],
    );
    const none = computeView(s, 0x100000);
    assert.deepEqual(none.standbys, []);
    const r = new ClusterRouter({ state: () => s, maxReplicaLagBytes: 0x100000 });
    assert.equal((r.route(true) as { node: string }).node, 'n1');
  });

  it('a read-only session prefers the local standby', () => {
    const s = state({ primary: 'n1', generation: 2 });
    const r = new ClusterRouter({ state: () => s, maxReplicaLagBytes: 1 << 20, selfId: 'n3' });
    for (let i = 0; i < 3; i++) assert.equal((r.route(true) as { node: string }).node, 'n3');
  });

  it('held clients are woken when the view changes', async () => {
    let s = state({ primary: null, generation: 3 });
    const r = new ClusterRouter({ state: () => s, maxReplicaLagBytes: 1 << 20, pollMs: 5 });
    assert.equal(r.route(false), 'hold');
    const woken = new Promise<void>((resolve) => {
      const off = r.onChange(() => {
        off();
        resolve();
      });
    });
    s = state({ primary: 'n2', generation: 4, roles: { n1: 'fenced', n2: 'primary', n3: 'standby' } });
    await woken;
    assert.deepEqual(r.route(false), { node: 'n2', host: '10.0.0.2', port: 5432, generation: 4, primary: true });
    r.close();
  });
});
