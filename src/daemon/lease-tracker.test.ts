import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Lease } from '../../fsm/index.js';
import { LeaseTracker } from './lease-tracker.js';

test('LeaseTracker: remaining time restarts on every renewal, goes negative when overdue, null for an unseen lease', () => {
  let now = 1_000;
  const t = new LeaseTracker(() => now);
  const lease = (renewalSeq: number, holder = 'n1', generation = 2): Lease => ({ holder, generation, durationMs: 3000, renewalSeq });
  assert.equal(t.remainingMs(null), null);
  assert.equal(t.remainingMs(lease(1)), null, 'not observed yet');
  t.observe(lease(1));
  now += 1200;
  assert.equal(t.remainingMs(lease(1)), 1800);
  t.observe(lease(1)); // the same renewal again (another apply) does not restart the clock
  now += 2000;
  assert.equal(t.remainingMs(lease(1)), -200, 'overdue');
  t.observe(lease(2));
  assert.equal(t.remainingMs(lease(2)), 3000);
  t.observe(lease(0, 'n2', 3)); // a promotion: new holder and generation, seq back to 0
  now += 500;
  assert.equal(t.remainingMs(lease(0, 'n2', 3)), 2500);
  assert.equal(t.remainingMs(lease(2)), null, 'a lease other than the one observed');
  t.observe(null);
  assert.equal(t.remainingMs(lease(0, 'n2', 3)), null);
});
