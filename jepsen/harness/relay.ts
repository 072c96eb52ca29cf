// Slow links without tc netem (missing from this kernel): an in-process TCP
// relay between every pair of hosts, with a delay that slow-link turns up and
// heal turns back to zero.
//
// The daemons are not told about relays. When slow-link is in a run, the harness
// adds NAT rules before the daemons start: a connection opened by host A's
// processes (its cgroup) to host B's Raft, admin API or Postgres port is
// redirected to a relay listening on 127.0.0.1, which dials B's real port and
// forwards both ways, each chunk held back by the link's current delay (order
// kept). Partitions still cut relayed connections: their rules match the
// connection's original destination (harness/firewall.ts). B sees relayed
// connections coming from 127.0.0.1 instead of A's address (Raft and the admin
// API authenticate peers by secret and token, not by address).
//
// Needs the per-host cgroups (only they tell whose connection it is for
// Postgres, which always dials from 127.0.0.1).

import net from 'node:net';
import type { HostCgroups } from './cgroups.js';
import { sh } from './netns.js';

export interface RelayHost {
  id: string;
  host: string;
  ports: readonly number[];
}

/** Bytes held in one direction of one relayed connection before the sender is paused. */
const BUFFERED_BYTES_MAX = 8 * 1024 * 1024;

function pairKey(a: string, b: string): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}

export class SlowLinks {
  private readonly delayMs = new Map<string, { base: number; jitter: number }>();
  private readonly servers: net.Server[] = [];
  private readonly sockets = new Set<net.Socket>();
  private readonly natRules: string[][] = [];
  relayedConnections = 0;

  private constructor(private readonly rand: () => number) {}

  /** Relays and NAT rules for every ordered pair of hosts. `rand` jitters delays (seeded by the caller). */
  static async create(hosts: readonly RelayHost[], cgroups: HostCgroups, rand: () => number): Promise<SlowLinks> {
    const s = new SlowLinks(rand);
    for (const a of hosts) {
      for (const b of hosts) {
        if (a.id === b.id) continue;
        for (const port of b.ports) {
          const relayPort = await s.listen(a.id, b.id, b.host, port);
          const rule = [
            '-t',
            'nat',
            '-A',
            'OUTPUT',
            '-m',
            'cgroup',
            '--path',
            cgroups.path(a.id),
            '-d',
            b.host,
            '-p',
            'tcp',
            '--dport',
            String(port),
            '-j',
            'DNAT',
            '--to-destination',
            `127.0.0.1:${relayPort}`,
          ];
          await sh('iptables', rule);
          s.natRules.push(rule);
        }
      }
    }
    return s;
  }

  /** Every chunk between a and b (both ways) waits base..base+jitter ms. */
  setDelay(a: string, b: string, baseMs: number, jitterMs: number): void {
    this.delayMs.set(pairKey(a, b), { base: baseMs, jitter: jitterMs });
  }

  clearDelays(): void {
    this.delayMs.clear();
  }

  private delayFor(a: string, b: string): number {
    const d = this.delayMs.get(pairKey(a, b));
    return d === undefined ? 0 : d.base + Math.floor(this.rand() * (d.jitter + 1));
  }

  private listen(from: string, to: string, host: string, port: number): Promise<number> {
    const server = net.createServer((inbound) => this.relay(inbound, from, to, host, port));
    this.servers.push(server);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
    });
  }

  private relay(inbound: net.Socket, from: string, to: string, host: string, port: number): void {
    this.relayedConnections++;
    const outbound = net.connect({ host, port, noDelay: true });
    inbound.setNoDelay(true);
    for (const s of [inbound, outbound]) {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      s.on('error', () => {
        inbound.destroy();
        outbound.destroy();
      });
    }
    this.pipe(inbound, outbound, from, to);
    this.pipe(outbound, inbound, from, to);
  }

  /** src -> dst with the link's delay, in order, bounded. */
  private pipe(src: net.Socket, dst: net.Socket, a: string, b: string): void {
    let buffered = 0;
    let lastDueMs = 0;
    src.on('data', (chunk: Buffer) => {
      const copy = Buffer.from(chunk);
      const delay = this.delayFor(a, b);
      if (delay === 0 && buffered === 0) {
        dst.write(copy);
        return;
      }
      // Never earlier than the chunk before it: a TCP stream keeps its order.
      const due = Math.max(performance.now() + delay, lastDueMs);
      lastDueMs = due;
      buffered += copy.length;
      if (buffered > BUFFERED_BYTES_MAX) src.pause();
      setTimeout(
        () => {
          buffered -= copy.length;
          if (!dst.destroyed) dst.write(copy);
          if (buffered <= BUFFERED_BYTES_MAX && src.isPaused()) src.resume();
        },
        Math.max(0, due - performance.now()),
      );
    });
    src.on('end', () => {
      const wait = Math.max(0, lastDueMs - performance.now());
      setTimeout(() => dst.end(), wait);
    });
  }

  async close(): Promise<void> {
    for (const rule of this.natRules)
      await sh(
        'iptables',
        rule.map((x) => (x === '-A' ? '-D' : x)),
      ).catch(() => {});
    for (const s of this.sockets) s.destroy();
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}
