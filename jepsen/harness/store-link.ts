// The link between the daemons and the run's object store (s3rver, when a
// store nemesis is in the run): an in-process TCP relay on 127.0.0.1 that the
// cluster's storage.s3.endpoint names, and that store-down and store-slow turn
// into an outage or a slow store while the object store itself keeps running.
//
// States:
//   open   bytes pass both ways
//   down   every connection is destroyed, and new ones are accepted and reset at
//          once: the daemons see resets, as from a store that crashed
//   slow   each chunk towards the store waits `delayMs` (so each request pays
//          it once: requests and their bodies go up this way, answers come back
//          at once), and, with `bytesPerSecond`, the link's uploads share that
//          bandwidth; order is kept per connection
//
// Healing (open) sends at once whatever a slow link still holds, so a healed
// link carries no delay left over from the fault. Partitions do not touch the
// link: its address is 127.0.0.1, not a host's (harness/firewall.ts), and the
// slow-link relays redirect only the hosts' own ports (harness/relay.ts).
//
// Like test/helpers/fault-link.ts (cut, throttle), with a per-request delay and
// a heal that flushes.

import net from 'node:net';

export type StoreLinkState = { kind: 'open' } | { kind: 'down' } | { kind: 'slow'; delayMs: number; bytesPerSecond: number | null };

/** Bytes a slow link holds for one connection before it stops reading from the daemon. */
const HELD_BYTES_MAX = 1024 * 1024;

export interface StoreLinkCounts {
  connections: number;
  /** Connections reset because the link was down (open ones cut, new ones refused). */
  reset: number;
  /** Chunks towards the store held back by a slow link, and their bytes. */
  delayedChunks: number;
  delayedBytes: number;
}

interface Held {
  chunk: Buffer;
  dueMs: number;
}

class Upstream {
  readonly held: Held[] = [];
  heldBytes = 0;
  timer: NodeJS.Timeout | undefined;
  lastDueMs = 0;

  constructor(
    readonly client: net.Socket,
    readonly server: net.Socket,
  ) {}
}

export class StoreLink {
  private state: StoreLinkState = { kind: 'open' };
  private readonly sockets = new Set<net.Socket>();
  private readonly upstreams = new Set<Upstream>();
  /** With a bandwidth limit: when the link's upload side is free again. */
  private uploadFreeAtMs = 0;
  readonly counts: StoreLinkCounts = { connections: 0, reset: 0, delayedChunks: 0, delayedBytes: 0 };

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
    private readonly upstreamPort: number,
  ) {}

  static async start(upstreamPort: number): Promise<StoreLink> {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const link = new StoreLink(server, (server.address() as net.AddressInfo).port, upstreamPort);
    server.on('connection', (s) => link.accept(s));
    return link;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get current(): StoreLinkState {
    return this.state;
  }

  /** Cuts every connection; new ones are reset until open(). Returns how many were cut. */
  down(): number {
    this.state = { kind: 'down' };
    const open = [...this.upstreams];
    for (const u of open) {
      this.counts.reset++;
      u.client.destroy();
      u.server.destroy();
    }
    return open.length;
  }

  slow(delayMs: number, bytesPerSecond: number | null): void {
    this.state = { kind: 'slow', delayMs, bytesPerSecond };
  }

  /** Back to open; whatever a slow link held goes now. */
  open(): void {
    this.state = { kind: 'open' };
    this.uploadFreeAtMs = 0;
    for (const u of this.upstreams) this.flush(u, true);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    this.counts.connections++;
    if (this.state.kind === 'down') {
      this.counts.reset++;
      client.resetAndDestroy();
      return;
    }
    const server = net.connect(this.upstreamPort, '127.0.0.1');
    const u = new Upstream(client, server);
    this.upstreams.add(u);
    for (const s of [client, server]) {
      this.sockets.add(s);
      s.setNoDelay(true);
      s.on('error', () => {});
      s.on('close', () => {
        this.sockets.delete(s);
        this.upstreams.delete(u);
        if (u.timer !== undefined) clearTimeout(u.timer);
        client.destroy();
        server.destroy();
      });
    }
    server.pipe(client);
    client.on('data', (chunk: Buffer) => this.towardsStore(u, chunk));
    client.on('end', () => this.endWhenFlushed(u));
  }

  private towardsStore(u: Upstream, chunk: Buffer): void {
    const s = this.state;
    if (s.kind !== 'slow' && u.held.length === 0) {
      if (!u.server.write(chunk)) {
        u.client.pause();
        u.server.once('drain', () => u.client.resume());
      }
      return;
    }
    const nowMs = performance.now();
    let dueMs = Math.max(nowMs, u.lastDueMs);
    if (s.kind === 'slow') {
      dueMs = Math.max(dueMs, nowMs + s.delayMs);
      if (s.bytesPerSecond !== null) {
        this.uploadFreeAtMs = Math.max(this.uploadFreeAtMs, nowMs) + (chunk.length / s.bytesPerSecond) * 1000;
        dueMs = Math.max(dueMs, this.uploadFreeAtMs);
      }
      this.counts.delayedChunks++;
      this.counts.delayedBytes += chunk.length;
    }
    u.lastDueMs = dueMs;
    u.held.push({ chunk: Buffer.from(chunk), dueMs });
    u.heldBytes += chunk.length;
    if (u.heldBytes > HELD_BYTES_MAX) u.client.pause();
    this.schedule(u);
  }

  private schedule(u: Upstream): void {
    if (u.timer !== undefined || u.held.length === 0) return;
    u.timer = setTimeout(
      () => {
        u.timer = undefined;
        this.flush(u, false);
      },
      Math.max(0, u.held[0]!.dueMs - performance.now()),
    );
  }

  /** Writes the held chunks that are due (all of them with `all`), then waits for the next. */
  private flush(u: Upstream, all: boolean): void {
    if (all && u.timer !== undefined) {
      clearTimeout(u.timer);
      u.timer = undefined;
    }
    const nowMs = performance.now();
    while (u.held.length > 0 && (all || u.held[0]!.dueMs <= nowMs)) {
      const h = u.held.shift()!;
      u.heldBytes -= h.chunk.length;
      if (!u.server.destroyed) u.server.write(h.chunk);
    }
    if (all) u.lastDueMs = 0;
    if (u.heldBytes <= HELD_BYTES_MAX && u.client.isPaused()) u.client.resume();
    if (u.held.length > 0) this.schedule(u);
    else if (u.client.readableEnded) u.server.end();
  }

  private endWhenFlushed(u: Upstream): void {
    if (u.held.length === 0) u.server.end();
  }
}
