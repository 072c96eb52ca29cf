// I5: leases without cross-node clocks. The holder fences before any observer may
// consider the lease lapsed, whatever the delays, pauses and clock-rate drift
// (within the drift margin), because each side measures from an event it saw.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { LeaseHolder, LeaseObserver, leaseTiming } from './lease.js';

/** A clock that reads real time `t` at rate (1 + drift) from an arbitrary origin. */
function clockOf(real: { t: number }, drift: number, origin: number): () => number {
  return () => origin + real.t * (1 + drift);
}

describe('LeaseHolder', () => {
  const timing = leaseTiming(3_000); // fence margin 600 ms, drift margin 300 ms

  it('fences at sendTime + lease - margin of the newest committed renewal', () => {
    const real = { t: 0 };
    const h = new LeaseHolder(1, timing, clockOf(real, 0, 0));
    h.promotedAt(0);
    real.t = 1_000;
    h.renewalSent(1);
    real.t = 1_050;
    h.renewalCommitted(1);
    assert.equal(h.remainingMs(), 1_000 + 3_000 - 600 - 1_050);
    real.t = 3_399;
    assert.equal(h.mustFence(), false);
    real.t = 3_400;
    assert.equal(h.mustFence(), true);
  });

  it('a commit learned late (the daemon was paused) gives no extra time: it fences at once', () => {
    const real = { t: 0 };
    const h = new LeaseHolder(1, timing, clockOf(real, 0, 0));
    h.promotedAt(0);
    h.renewalSent(1);
    real.t = 10_000; // paused for 10 s, then the commit arrives
    h.renewalCommitted(1);
    assert.equal(h.mustFence(), true);
  });

  it('ignores commits of renewals it did not send, and an older renewal never shortens the lease', () => {
    const real = { t: 0 };
    const h = new LeaseHolder(1, timing, clockOf(real, 0, 0));
    h.renewalCommitted(7); // never sent by this process (e.g. before a restart)
    assert.equal(h.mustFence(), true, 'no renewal of ours committed: no lease');
    h.renewalSent(1);
    real.t = 100;
    h.renewalSent(2);
    h.renewalCommitted(2);
    const after2 = h.remainingMs();
    h.renewalCommitted(1);
    assert.equal(h.remainingMs(), after2);
  });
});

describe('LeaseObserver', () => {
  const timing = leaseTiming(3_000);

  it('starts with a full lease to wait out, and restarts its clock on every change', () => {
    const real = { t: 0 };
    const o = new LeaseObserver(timing, clockOf(real, 0, 0));
    real.t = 3_299;
    assert.equal(o.lapsed(), false);
    o.observe('n1', 1, 5);
    real.t = 6_000;
    assert.equal(o.lapsed(), false);
    o.observe('n1', 1, 5); // the same renewal again: no restart
    real.t = 6_600;
    assert.equal(o.lapsed(), true);
    o.observe('n1', 1, 6);
    assert.equal(o.lapsed(), false);
  });
});

describe('I5 property: a promotion the state machine accepts never overlaps a holder that has not fenced', () => {
  // The observer decides at real time x that the lease lapsed, having applied
  // renewal j. The promotion it proposes carries lapsedLease = j, and the state
  // machine accepts it only if j is still the current renewal, i.e. no renewal
  // after j committed before the promotion entered the log. Renewals after the
  // promotion are refused (stale generation), so they never extend the holder's
  // lease (the holder extends only on a successful renewal). The property: at
  // every x where the observer sees a lapse and the promotion would be accepted,
  // the holder has already fenced.
  it('holds for random delays, pauses, late observers and clock-rate drift up to 1%', () => {
    fc.assert(
      fc.property(
        fc.record({
          leaseMs: fc.integer({ min: 500, max: 10_000 }),
          holderDrift: fc.double({ min: -0.01, max: 0.01, noNaN: true }),
          observerDrift: fc.double({ min: -0.01, max: 0.01, noNaN: true }),
          observerOrigin: fc.integer({ min: -1e9, max: 1e9 }),
          observerStart: fc.integer({ min: 0, max: 20_000 }),
          renewals: fc.array(
            fc.record({
              gapMs: fc.integer({ min: 1, max: 5_000 }),
              committed: fc.boolean(),
              commitDelayMs: fc.integer({ min: 0, max: 3_000 }),
              holderLearnsAfterMs: fc.integer({ min: 0, max: 10_000 }),
              observerAppliesAfterMs: fc.integer({ min: 0, max: 3_000 }),
            }),
            { maxLength: 12 },
          ),
        }),
        (sc) => {
          const timing = leaseTiming(sc.leaseMs);
          const real = { t: 0 };
          const holder = new LeaseHolder(1, timing, clockOf(real, sc.holderDrift, 0));
          // Events in real time. Ties: the observer's view first (worst case).
          type Ev = { at: number; order: number; run: () => void };
          const events: Ev[] = [];
          let observer: LeaseObserver | undefined;
          let lastApplied = 0; // renewal seq the observer has applied (0: the promotion itself)
          let committedSeqMax = 0; // the state machine's current renewal seq
          holder.promotedAt(0);
          // The promotion (seq 0) is seen by the observer when it starts, at the latest.
          events.push({
            at: sc.observerStart,
            order: 1,
            run: () => {
              observer = new LeaseObserver(timing, clockOf(real, sc.observerDrift, sc.observerOrigin));
              observer.observe('n1', 1, lastApplied);
            },
          });
          let t = 0;
          sc.renewals.forEach((r, i) => {
            const seq = i + 1;
            t += r.gapMs;
            const sendAt = t;
            events.push({ at: sendAt, order: 2, run: () => holder.renewalSent(seq) });
            if (!r.committed) return;
            const commitAt = sendAt + r.commitDelayMs;
            events.push({ at: commitAt, order: 0, run: () => (committedSeqMax = Math.max(committedSeqMax, seq)) });
            events.push({ at: commitAt + r.holderLearnsAfterMs, order: 3, run: () => holder.renewalCommitted(seq) });
            events.push({
              at: commitAt + r.observerAppliesAfterMs,
              order: 1,
              run: () => {
                // Applied in log order: a later seq supersedes.
                if (seq > lastApplied) {
                  lastApplied = seq;
                  observer?.observe('n1', 1, seq);
                }
              },
            });
          });
          events.sort((a, b) => a.at - b.at || a.order - b.order);
          const end = t + sc.leaseMs * 3 + 20_000;
          // Check at every event and on a fine grid between them.
          const checkpoints = new Set<number>(events.map((e) => e.at));
          for (let x = 0; x <= end; x += Math.max(1, Math.floor(sc.leaseMs / 50))) checkpoints.add(x);
          const times = [...checkpoints].sort((a, b) => a - b);
          let ei = 0;
          for (const x of times) {
            real.t = x;
            while (ei < events.length && events[ei]!.at <= x) events[ei++]!.run();
            const promotionAccepted = committedSeqMax === lastApplied;
            if (observer?.lapsed() && promotionAccepted) {
              assert.ok(holder.mustFence(), `at ${x} ms the observer sees the lease lapsed but the holder has ${holder.remainingMs().toFixed(1)} ms left`);
            }
          }
        },
      ),
      { numRuns: 300, seed: 42 },
    );
  });
});
