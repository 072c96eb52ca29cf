// ReadIndex (Raft dissertation §6.4): a read is linearizable once the leader has
// confirmed, after the read arrived, that it is still leader (a quorum answered a
// heartbeat carrying the read's context), and the state machine has applied up to
// the commit index recorded when the read arrived.

import type { Message, NodeId } from './types.js';

export enum ReadOnlyOption {
  /** Confirm leadership with a heartbeat round per batch of reads. */
  Safe = 'safe',
  /** Trust check-quorum's leader lease: no round trip. Depends on bounded clock drift. */
  LeaseBased = 'lease',
}

interface ReadIndexStatus {
  request: Message;
  index: number;
  acks: Set<NodeId>;
}

function contextKey(ctx: Uint8Array): string {
  return Buffer.from(ctx.buffer, ctx.byteOffset, ctx.byteLength).toString('hex');
}

export class ReadOnly {
  private readonly pending = new Map<string, ReadIndexStatus>();
  private queue: string[] = [];

  constructor(
    readonly option: ReadOnlyOption,
    readonly maxPending: number,
  ) {}

  /** Returns false when the request is a duplicate or the queue is full. */
  addRequest(index: number, m: Message): boolean {
    const ctx = m.context;
    if (!ctx) return false;
    const key = contextKey(ctx);
    if (this.pending.has(key) || this.queue.length >= this.maxPending) return false;
    this.pending.set(key, { request: m, index, acks: new Set() });
    this.queue.push(key);
    return true;
  }

  /** Records a heartbeat acknowledgement carrying ctx; returns the acks so far. */
  recvAck(from: NodeId, ctx: Uint8Array): ReadonlySet<NodeId> | undefined {
    const rs = this.pending.get(contextKey(ctx));
    if (!rs) return undefined;
    rs.acks.add(from);
    return rs.acks;
  }

  /**
   * The request with ctx is confirmed; so is every request queued before it
   * (their heartbeats went out earlier). Returns them in order.
   */
  advance(ctx: Uint8Array): { request: Message; index: number }[] {
    const key = contextKey(ctx);
    const at = this.queue.indexOf(key);
    if (at < 0) return [];
    const done = this.queue.slice(0, at + 1);
    this.queue = this.queue.slice(at + 1);
    const out: { request: Message; index: number }[] = [];
    for (const k of done) {
      const rs = this.pending.get(k)!;
      this.pending.delete(k);
      out.push({ request: rs.request, index: rs.index });
    }
    return out;
  }

  /** Context of the newest pending read: piggybacked on heartbeats. */
  lastPendingContext(): Uint8Array | undefined {
    const key = this.queue[this.queue.length - 1];
    return key === undefined ? undefined : this.pending.get(key)!.request.context;
  }

  pendingCount(): number {
    return this.queue.length;
  }

  reset(): void {
    this.pending.clear();
    this.queue = [];
  }
}
