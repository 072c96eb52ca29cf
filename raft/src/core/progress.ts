// The leader's view of each follower's log (Raft paper §5.3: nextIndex/matchIndex),
// plus the flow control that keeps a slow follower from ballooning memory.

import { assert } from './assert.js';

export enum ProgressState {
  /** Unknown match: send one App at a time and wait for the answer (backtracking). */
  Probe = 'probe',
  /** Known match: stream entries optimistically, bounded by the inflight window. */
  Replicate = 'replicate',
  /** Too far behind the log: a snapshot is being streamed in chunks. */
  Snapshot = 'snapshot',
}

/** A bounded window of App messages sent but not yet acknowledged. */
export class Inflights {
  private readonly lastIndexes: number[] = [];
  private readonly sizes: number[] = [];
  private bytes = 0;

  constructor(
    readonly maxCount: number,
    readonly maxBytes: number,
  ) {
    assert(maxCount > 0 && maxBytes > 0, 'inflight limits must be positive');
  }

  add(lastIndex: number, bytes: number): void {
    assert(!this.full(), 'inflights: add while full');
    const prev = this.lastIndexes[this.lastIndexes.length - 1];
    assert(prev === undefined || lastIndex > prev, `inflights: index ${lastIndex} not above ${prev}`);
    this.lastIndexes.push(lastIndex);
    this.sizes.push(bytes);
    this.bytes += bytes;
  }

  /** Frees every message whose last index is <= index (they were acknowledged). */
  freeLE(index: number): void {
    let n = 0;
    while (n < this.lastIndexes.length && this.lastIndexes[n]! <= index) {
      this.bytes -= this.sizes[n]!;
      n++;
    }
    if (n > 0) {
      this.lastIndexes.splice(0, n);
      this.sizes.splice(0, n);
    }
  }

  freeFirstOne(): void {
    if (this.lastIndexes.length === 0) return;
    this.freeLE(this.lastIndexes[0]!);
  }

  full(): boolean {
    return this.lastIndexes.length >= this.maxCount || this.bytes >= this.maxBytes;
  }

  count(): number {
    return this.lastIndexes.length;
  }

  reset(): void {
    this.lastIndexes.length = 0;
    this.sizes.length = 0;
    this.bytes = 0;
  }
}

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = ProgressState.Probe;
  /** In Probe: an App is outstanding; pause until its answer or the next heartbeat. */
  probeSent = false;
  /** Index of the snapshot being streamed (Snapshot state). */
  pendingSnapshot = 0;
  /** Bytes of the pending snapshot the follower has acknowledged. */
  snapshotAckedBytes = 0;
  /** snapshotAckedBytes at the previous heartbeat answer: unchanged means the stream stalled. */
  snapshotAckedAtLastBeat = -1;
  /** Heard from this peer since the last check-quorum round. */
  recentActive = false;
  /** The peer said it is rejoining after losing its state: it counts toward no quorum. */
  rejoining = false;
  /** This leader appended an empty entry for it, once caught up, so that a commit made without it ends its rejoining. */
  rejoinNudged = false;
  /** Ticks since we last heard from this peer (for status()). */
  ticksSinceContact = 0;
  readonly inflights: Inflights;

  constructor(
    next: number,
    public isLearner: boolean,
    maxInflightMsgs: number,
    maxInflightBytes: number,
  ) {
    this.next = next;
    this.inflights = new Inflights(maxInflightMsgs, maxInflightBytes);
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.snapshotAckedBytes = 0;
    this.snapshotAckedAtLastBeat = -1;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    // Coming back from a snapshot, the follower has at least the snapshot.
    if (this.state === ProgressState.Snapshot) {
      const pending = this.pendingSnapshot;
      this.resetState(ProgressState.Probe);
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState(ProgressState.Probe);
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState(ProgressState.Replicate);
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState(ProgressState.Snapshot);
    this.pendingSnapshot = snapshotIndex;
  }

  /** An acknowledgement up to n. Returns whether match advanced. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /** After an optimistic send in Replicate state. */
  optimisticUpdate(n: number): void {
    this.next = n + 1;
  }

  /**
   * A rejection of an App whose previous index was `rejected`; `matchHint` is the
   * highest index that may match. Returns false when the rejection is stale.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === ProgressState.Replicate) {
      // Stale: we already know the follower matches at or above the rejected index.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // Probe: only the answer to the outstanding probe counts.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1, 1);
    this.probeSent = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case ProgressState.Probe:
        return this.probeSent;
      case ProgressState.Replicate:
        return this.inflights.full();
      case ProgressState.Snapshot:
        return true;
    }
  }
}

/** The largest index replicated on a majority of `voters`, given each one's match. */
export function quorumMatchIndex(voters: readonly string[], matchOf: (id: string) => number): number {
  if (voters.length === 0) return Number.MAX_SAFE_INTEGER;
  const matches = voters.map(matchOf).sort((a, b) => b - a);
  return matches[Math.floor(voters.length / 2)]!;
}

export enum VoteResult {
  Pending = 'pending',
  Won = 'won',
  Lost = 'lost',
}

/** The outcome of an election among `voters` given the votes seen so far. */
export function voteResult(voters: readonly string[], votes: ReadonlyMap<string, boolean>): VoteResult {
  if (voters.length === 0) return VoteResult.Won;
  let granted = 0;
  let rejected = 0;
  for (const v of voters) {
    const vote = votes.get(v);
    if (vote === true) granted++;
    else if (vote === false) rejected++;
  }
  const quorum = Math.floor(voters.length / 2) + 1;
  if (granted >= quorum) return VoteResult.Won;
  if (voters.length - rejected < quorum) return VoteResult.Lost;
  return VoteResult.Pending;
}
