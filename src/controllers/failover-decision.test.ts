// The failover decision (I3, I4): promote only past a lapsed lease, only after
// every reachable standby stopped receiving, never when an acknowledged commit
// may exist only on an unreachable standby, and always the most advanced standby.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { C, clusterOf3, run } from '../../fsm/test/helpers.js';
import { decideFailover, type FailoverInput, type StandbyProbe } from './failover-decision.js';

const stopped = (lsn: string): StandbyProbe => ({ reachable: true, receiverStopped: true, flushedLsn: lsn });
const down: StandbyProbe = { reachable: false, receiverStopped: false };

/** n1 primary of generation 1, past its first renewal (before it, bootstrap is still running). */
const serving = () => run([C.renew({ seq: 1 })], clusterOf3());

function input(over: Partial<FailoverInput> = {}): FailoverInput {
  return {
    state: serving(),
    lease: { lapsed: true, observedRenewalSeq: 1 },
    probes: new Map(),
    priority: new Map(),
    syncQuorum: 1,
    ...over,
  };
}

describe('failover decision', () => {
  it('does nothing while the lease holds (I3, I5)', () => {
    assert.deepEqual(decideFailover(input({ lease: { lapsed: false, observedRenewalSeq: 1 } })), { kind: 'healthy' });
  });

  it('waits while the first primary has not renewed its lease yet (bootstrap: no write was ever acknowledged)', () => {
    const d = decideFailover(input({ state: clusterOf3(), lease: { lapsed: true, observedRenewalSeq: 0 } }));
    assert.equal(d.kind, 'wait');
    assert.match((d as { reason: string }).reason, /bootstrap in progress/);
  });

  it('does nothing while maintenance is paused', () => {
    const state = run([C.maintenance({ paused: true, reason: 'upgrading' })], serving());
    assert.deepEqual(decideFailover(input({ state })), { kind: 'paused', reason: 'upgrading' });
  });

  it('waits when the lease was renewed after the lapse was observed', () => {
    const state = run([C.renew({ seq: 2 })], serving());
    assert.equal(decideFailover(input({ state })).kind, 'wait');
  });

  it("first stops every reachable standby's WAL receiver", () => {
    assert.deepEqual(decideFailover(input()), { kind: 'fence-standbys', nodes: ['n2', 'n3'] });
    const probes = new Map([
      ['n2', stopped('0/5000000')],
      ['n3', { reachable: true, receiverStopped: false }],
    ]);
    assert.deepEqual(decideFailover(input({ probes })), { kind: 'fence-standbys', nodes: ['n3'] });
  });

  it('promotes the standby with the highest flushed LSN, naming the lapsed renewal', () => {
    const probes = new Map([
      ['n2', stopped('0/5000000')],
      ['n3', stopped('0/5000100')],
    ]);
    assert.deepEqual(decideFailover(input({ probes })), {
      kind: 'promote',
      node: 'n3',
      generation: 2,
      lsn: '0/5000100',
      lapsedLease: { holder: 'n1', renewalSeq: 1 },
      forced: false,
    });
  });

  it('breaks an LSN tie by priority, then by id', () => {
    const probes = new Map([
      ['n2', stopped('0/5000000')],
      ['n3', stopped('0/5000000')],
    ]);
    assert.equal((decideFailover(input({ probes })) as { node: string }).node, 'n2');
    assert.equal((decideFailover(input({ probes, priority: new Map([['n3', 1]]) })) as { node: string }).node, 'n3');
  });

  it('refuses when the old primary and a standby are both unreachable (I4), and says why', () => {
    const probes = new Map([
      ['n2', stopped('0/5000000')],
      ['n3', down],
    ]);
    const d = decideFailover(input({ probes }));
    assert.equal(d.kind, 'blocked');
    assert.match((d as { reason: string }).reason, /n1 and standby n3 are unreachable.*acknowledged commit may exist only on it.*--force/);
  });

  it('--force --to accepts that risk, but never skips the lease (I3)', () => {
    const probes = new Map([
      ['n2', stopped('0/5000000')],
      ['n3', down],
    ]);
    const d = decideFailover(input({ probes, manual: { to: 'n2', force: true } }));
    assert.deepEqual(d, { kind: 'promote', node: 'n2', generation: 2, lsn: '0/5000000', lapsedLease: { holder: 'n1', renewalSeq: 1 }, forced: true });
    assert.deepEqual(decideFailover(input({ probes, manual: { to: 'n2', force: true }, lease: { lapsed: false, observedRenewalSeq: 1 } })), {
      kind: 'healthy',
    });
    assert.equal(decideFailover(input({ probes, manual: { to: 'n3', force: true } })).kind, 'blocked');
  });

  it('in asynchronous mode (k = 0) an unreachable standby does not block', () => {
    const probes = new Map([
      ['n2', stopped('0/5000000')],
      ['n3', down],
    ]);
    assert.equal(decideFailover(input({ probes, syncQuorum: 0 })).kind, 'promote');
  });

  it('never promotes a recloning node, and waits while there is no primary', () => {
    const state = run([C.setRole({ node: 'n3', role: 'recloning' })], serving());
    const probes = new Map([['n2', stopped('0/5000000')]]);
    assert.equal((decideFailover(input({ state, probes })) as { node: string }).node, 'n2');
    assert.equal(decideFailover(input({ state: run([C.memberAdd('n1', 1)]) })).kind, 'wait');
  });
  it("an operator's failover runs while paused, and --to without --force never loses commits", () => {
    const paused = run([C.maintenance({ paused: true, reason: 'upgrading' })], serving());
    const probes = new Map([
      ['n2', stopped('0/5000000')],
      ['n3', stopped('0/5000100')],
    ]);
    assert.equal((decideFailover(input({ state: paused, probes, manual: { force: false } })) as { node: string }).node, 'n3');
    const behind = decideFailover(input({ probes, manual: { to: 'n2', force: false } }));
    assert.equal(behind.kind, 'blocked');
    assert.match((behind as { reason: string }).reason, /--to n2 has flushed 0\/5000000, behind n3 \(0\/5000100\).*--force/);
    assert.equal((decideFailover(input({ probes, manual: { to: 'n2', force: true } })) as { node: string }).node, 'n2');
  });

  it('a released lease (switchover cut short) is promoted past without a lapse to wait for', () => {
    const state = run([C.release()], serving());
    assert.deepEqual(decideFailover(input({ state, lease: { lapsed: false, observedRenewalSeq: 1 } })), { kind: 'fence-standbys', nodes: ['n2', 'n3'] });
    const probes = new Map([
      ['n2', stopped('0/5000000')],
      ['n3', stopped('0/5000000')],
    ]);
    assert.deepEqual(decideFailover(input({ state, probes })), {
      kind: 'promote',
      node: 'n2',
      generation: 2,
      lsn: '0/5000000',
      lapsedLease: null,
      forced: false,
    });
  });

  it('a fenced former primary is neither a candidate nor counted as holding acknowledged commits', () => {
    // n1 (generation 1) was fenced when n2 became primary of generation 2; n2 failed too.
    const state = run([C.promote({ node: 'n2', generation: 2, lapsedLease: { holder: 'n1', renewalSeq: 1 } })], serving());
    assert.equal(state.postgres.nodes.get('n1')!.role, 'fenced');
    const lease = { lapsed: true, observedRenewalSeq: 0 };
    assert.deepEqual(decideFailover(input({ state, lease })), { kind: 'fence-standbys', nodes: ['n3'] });
    const d = decideFailover(input({ state, lease, probes: new Map([['n3', stopped('0/6000000')]]) }));
    assert.deepEqual(d, { kind: 'promote', node: 'n3', generation: 3, lsn: '0/6000000', lapsedLease: { holder: 'n2', renewalSeq: 0 }, forced: false });
  });
});
