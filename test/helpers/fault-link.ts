// A TCP link between a client and a server that a test can slow down and cut:
// the object store "going down mid-backup" without killing the server (whose
// files the test then inspects). Listens on 127.0.0.1, an ephemeral port.
//
// States: 'open' (bytes pass), 'throttled' (client-to-server bytes pass at a set
// rate, so a test can act while a transfer is under way), 'cut' (every
// connection is destroyed, and new ones are accepted and destroyed at once:
// the client sees resets, as from a crashed server).

import net from 'node:net';

export type LinkState = { kind: 'open' } | { kind: 'throttled'; bytesPerSecond: number } | { kind: 'cut' };

/** The throttle's accounting window: short, so a throttled transfer does not stall in long steps. */
const WINDOW_MS = 50;

export class FaultLink {
  private state: LinkState = { kind: 'open' };
  private readonly sockets = new Set<net.Socket>();
  private windowStartMs = 0;
  private windowBytes = 0;

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
    private readonly upstreamPort: number,
  ) {}

  static async start(upstreamPort: number): Promise<FaultLink> {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const link = new FaultLink(server, (server.address() as net.AddressInfo).port, upstreamPort);
    server.on('connection', (s) => link.accept(s));
    return link;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  throttle(bytesPerSecond: number): void {
    this.state = { kind: 'throttled', bytesPerSecond };
  }

  /** Destroys every connection; new ones are reset until heal(). */
  cut(): void {
    this.state = { kind: 'cut' };
    for (const s of this.sockets) s.destroy();
  }

  heal(): void {
    this.state = { kind: 'open' };
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    if (this.state.kind === 'cut') {
      client.destroy();
      return;
    }
    const upstream = net.connect(this.upstreamPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        this.sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    upstream.pipe(client);
    client.on('data', (chunk: Buffer) => {
      if (!upstream.write(chunk)) {
        client.pause();
        upstream.once('drain', () => client.resume());
      }
      this.pace(client, chunk.length);
    });
    client.on('end', () => upstream.end());
  }

  /** In the throttled state, pauses the client once its window's budget is spent. */
  private pace(client: net.Socket, bytes: number): void {
    if (this.state.kind !== 'throttled') return;
    const nowMs = Date.now();
    if (nowMs - this.windowStartMs >= WINDOW_MS) {
      this.windowStartMs = nowMs;
      this.windowBytes = 0;
    }
    this.windowBytes += bytes;
    const budget = (this.state.bytesPerSecond * WINDOW_MS) / 1000;
    if (this.windowBytes < budget) return;
    const waitMs = ((this.windowBytes - budget) / this.state.bytesPerSecond) * 1000 + (WINDOW_MS - (nowMs - this.windowStartMs));
    client.pause();
    setTimeout(() => {
      if (!client.destroyed) client.resume();
    }, waitMs).unref();
  }
}
