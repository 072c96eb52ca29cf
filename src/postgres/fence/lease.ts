// The primary's lease as time (invariant I5): a duration, never a wall-clock
// instant compared across machines. Each side measures on its own monotonic
// clock, from a moment it observed itself:
//
//   holder   : from when it SENT the renewal that later committed. It must fence
//              its Postgres by  sentAt + leaseMs - fenceMarginMs.
//   observer : from when it SAW the renewal applied (or, having seen none since it
//              started watching, from when it started). It may treat the lease as
//              lapsed only after  seenAt + leaseMs + driftMarginMs.
//
// Why this is safe: a renewal is sent before it commits, and it commits before
// anyone applies it, so sentAt <= seenAt in real time. The holder therefore stops
// writing at least fenceMarginMs + driftMarginMs (less the clocks' rate drift over
// one lease) before any observer may promote a new primary. A holder that was
// paused (GC, SIGSTOP, a slow disk) and learns of a commit late computes its
// deadline from the send time, finds it in the past, and fences at once.

import { assert } from '../../../raft/index.js';

export type MonotonicMs = () => number;

export const monotonicMs: MonotonicMs = () => performance.now();

export interface LeaseTiming {
  leaseMs: number;
  /** The holder fences this long before its lease can lapse. */
  fenceMarginMs: number;
  /** Observers wait this long past the lease, for clock-rate drift between machines. */
  driftMarginMs: number;
}

/** Default margins for a lease: a fifth of it to fence, a tenth of it for drift. */
export function leaseTiming(leaseMs: number): LeaseTiming {
  assert(leaseMs >= 100, `leaseMs ${leaseMs} below 100`);
  return { leaseMs, fenceMarginMs: Math.round(leaseMs / 5), driftMarginMs: Math.round(leaseMs / 10) };
}

/** Renewals sent and not yet committed: bounded (older ones cannot matter once a newer commits). */
const PENDING_RENEWALS_MAX = 64;

/** The primary's side: when must it stop writing? */
export class LeaseHolder {
  private readonly sentAt = new Map<number, number>();
  /** Monotonic deadline to fence by; -Infinity until a renewal committed. */
  private fenceAt = Number.NEGATIVE_INFINITY;

  constructor(
    readonly generation: number,
    private readonly timing: LeaseTiming,
    private readonly now: MonotonicMs = monotonicMs,
  ) {}

  /** Call just before proposing lease.renew with this seq. */
  renewalSent(seq: number): void {
    this.sentAt.set(seq, this.now());
    if (this.sentAt.size > PENDING_RENEWALS_MAX) this.sentAt.delete(this.sentAt.keys().next().value!);
  }

  /** Call when lease.renew with this seq (for our generation) is applied. */
  renewalCommitted(seq: number): void {
    const sent = this.sentAt.get(seq);
    // A commit of a renewal we did not send (or whose send time we lost) gives no
    // time at all: we cannot know when it was sent.
    if (sent === undefined) return;
    for (const s of [...this.sentAt.keys()]) if (s <= seq) this.sentAt.delete(s);
    this.fenceAt = Math.max(this.fenceAt, sent + this.timing.leaseMs - this.timing.fenceMarginMs);
  }

  /** The promotion itself counts as the first renewal, sent when the promotion was proposed. */
  promotedAt(sentAtMs: number): void {
    this.fenceAt = Math.max(this.fenceAt, sentAtMs + this.timing.leaseMs - this.timing.fenceMarginMs);
  }

  /** True once the holder must no longer accept writes. */
  mustFence(): boolean {
    return this.now() >= this.fenceAt;
  }

  /** Milliseconds until the holder must fence (negative: overdue). */
  remainingMs(): number {
    return this.fenceAt - this.now();
  }
}

/** Everyone else's side (the failover controller on the Raft leader): has the lease lapsed? */
export class LeaseObserver {
  private seenAt: number;
  private key = '';

  /** Starts watching now: having seen no renewal yet, assume one committed just before. */
  constructor(
    private readonly timing: LeaseTiming,
    private readonly now: MonotonicMs = monotonicMs,
  ) {
    this.seenAt = now();
  }

  /**
   * Call whenever the state machine's lease changes (a renewal or a promotion
   * applied), with the lease's identity. Any change restarts the clock.
   */
  observe(holder: string, generation: number, renewalSeq: number): void {
    const key = `${holder}/${generation}/${renewalSeq}`;
    if (key === this.key) return;
    this.key = key;
    this.seenAt = this.now();
  }

  /** True once no renewal was seen for leaseMs + driftMarginMs. */
  lapsed(): boolean {
    return this.remainingMs() < 0;
  }

  /** Milliseconds until the lease may be considered lapsed here. */
  remainingMs(): number {
    return this.seenAt + this.timing.leaseMs + this.timing.driftMarginMs - this.now();
  }
}
