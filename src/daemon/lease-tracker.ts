// How long the primary's lease has left, as this node sees it, for `ogel status`
// and the metrics. The state machine stores the lease as a duration and a
// renewal counter, never an instant (I5), so the remaining time is local
// knowledge: ms since this node saw renewalSeq (or the holder, or the generation)
// change, on its own monotonic clock, subtracted from the lease's duration.
//
// This is a display, not a safety decision: the failover controller keeps its
// own observer (with the drift margin) and the holder its own deadline (with
// the fence margin). A node that restarts, or restores a snapshot, starts the
// clock then, as the failover observer does when it becomes leader.

import type { Lease } from '../../fsm/index.js';
import { monotonicMs, type MonotonicMs } from '../postgres/fence/lease.js';

export class LeaseTracker {
  private key = '';
  private seenAtMs = 0;

  constructor(private readonly now: MonotonicMs = monotonicMs) {}

  /** Call after every apply or restore with the state machine's lease. Cheap. */
  observe(lease: Lease | null): void {
    if (lease === null) {
      this.key = '';
      return;
    }
    const key = `${lease.holder}/${lease.generation}/${lease.renewalSeq}`;
    if (key === this.key) return;
    this.key = key;
    this.seenAtMs = this.now();
  }

  /**
   * durationMs minus the time since this node saw the current renewal; negative
   * when overdue (the holder should have fenced by now). Null when there is no
   * lease, or it is not the one last observed (observe() was not called for it).
   */
  remainingMs(lease: Lease | null): number | null {
    if (lease === null) return null;
    if (`${lease.holder}/${lease.generation}/${lease.renewalSeq}` !== this.key) return null;
    return Math.round(lease.durationMs - (this.now() - this.seenAtMs));
  }
}
