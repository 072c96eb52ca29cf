// The failover decision (I3, I4): promote only past a lapsed lease, only after
// every reachable standby stopped receiving, never when an acknowledged commit
// may exist only on an unreachable standby, and always the most advanced standby.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { C, clusterOf3, run } from '../../fsm/test/helpers.js';
import { decideFailover, type FailoverInput, type StandbyProbe } from './failover-decision.js';

const stopped = (lsn: string): StandbyProbe => ({ reachable: true, receiverStopped: true, flushedLsn: lsn });
const down: StandbyProbe = { reachable: false, receiverStopped: false };

function input(over: Partial<FailoverInput> = {}): FailoverInput {
  return {
    state: clusterOf3(),
    lease: { lapsed: true, observedRenewalSeq: 0 },
    probes: new Map(),
    priority: new Map(),
    syncQuorum: 1,
    ...over,
  };
}

describe('failover decision', () => {
  it('does nothing while the lease holds (I3, I5)', () => {
    assert.deepEqual(decideFailover(input({ lease: { lapsed: false, observedRenewalSeq: 0 } })), { kind: 'healthy' });
  });

  it('does nothing while maintenance is paused', () => {
    const state = run([C.maintenance({ paused: true, reason: 'upgrading' })], clusterOf3());
    assert.deepEqual(decideFailover(input({ state })), { kind: 'paused', reason: 'upgrading' });
  });

  it('waits when the lease was renewed after the lapse was observed', () => {
    const state = run([C.renew({ seq: 1 })], clusterOf3());
    assert.equal(decideFailover(input({ state })).kind, 'wait');
  });

  it('first stops every reachable standby\'s WAL receiver', () => {
    assert.deepEqual(decideFailover(input()), { kind: 'fence-standbys', nodes: ['n2', 'n3'] });
    const probes = new Map([['n2', stopped('0/5000000')], ['n3', { reachable: true, receiverStopped: false }]]);
    assert.deepEqual(decideFailover(input({ probes })), { kind: 'fence-standbys', nodes: ['n3'] });
  });

  it('promotes the standby with the highest flushed LSN, naming the lapsed renewal', () => {
    const probes = new Map([['n2', stopped('0/5000000')], ['n3', stopped('0/5000100')]]);
    assert.deepEqual(decideFailover(input({ probes })), {
      kind: 'promote',
      node: 'n3',
      generation: 2,
      lsn: '0/5000100',
      lapsedLease: { holder: 'n1', renewalSeq: 0 },
      forced: false,
    });
  });

  it('breaks an LSN tie by priority, then by id', () => {
    const probes = new Map([['n2', stopped('0/5000000')], ['n3', stopped('0/5000000')]]);
    assert.equal((decideFailover(input({ probes })) as { node: string }).node, 'n2');
    assert.equal((decideFailover(input({ probes, priority: new Map([['n3', 1]]) })) as { node: string }).node, 'n3');
  });

  it('refuses when the old primary and a standby are both unreachable (I4), and says why', () => {
    const probes = new Map([['n2', stopped('0/5000000')], ['n3', down]]);
    const d = decideFailover(input({ probes }));
    assert.equal(d.kind, 'blocked');
    assert.match((d as { reason: string }).reason, /n1 and standby n3 are unreachable.*acknowledged commit may exist only on it.*--force/);
  });

  it('--force --to accepts that risk, but never skips the lease (I3)', () => {
    const probes = new Map([['n2', stopped('0/5000000')], ['n3', down]]);
    const d = decideFailover(input({ probes, force: { to: 'n2' } }));
    assert.deepEqual(d, { kind: 'promote', node: 'n2', generation: 2, lsn: '0/5000000', lapsedLease: { holder: 'n1', renewalSeq: 0 }, forced: true });
    assert.deepEqual(decideFailover(input({ probes, force: { to: 'n2' }, lease: { lapsed: false, observedRenewalSeq: 0 } })), { kind: 'healthy' });
    assert.equal(decideFailover(input({ probes, force: { to: 'n3' } })).kind, 'blocked');
  });

  it('in asynchronous mode (k = 0) an unreachable standby does not block', () => {
    const probes = new Map([['n2', stopped('0/5000000')], ['n3', down]]);
    assert.equal(decideFailover(input({ probes, syncQuorum: 0 })).kind, 'promote');
  });

  it('never promotes a recloning node, and waits while there is no primary', () => {
    const state = run([C.setRole({ node: 'n3', role: 'recloning' })], clusterOf3());
    const probes = new Map([['n2', stopped('0/5000000')]]);
    assert.equal((decideFailover(input({ state, probes })) as { node: string }).node, 'n2');
    assert.equal(decideFailover(input({ state: run([C.memberAdd('n1', 1)]) })).kind, 'wait');
  });
});
