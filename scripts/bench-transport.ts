// Compares the framed-TCP peer transport with an HTTP alternative (undici Pool with
// pipelining to a node:http server), both carrying the same msgpack + HMAC frames.
//
// The responder ("b") runs in a child process, as a real peer would, so client and
// server do not share one event loop. Workloads, each for BENCH_MS (default 2000 ms)
// after a short warm-up:
//   pingpong_c1   one Heartbeat in flight, answered with a HeartbeatResp
//   pingpong_c16  sixteen in flight
//   app_c16       App messages of 32 entries x 256 B, sixteen in flight, each acked
//                 with an AppResp (one-way throughput with Raft-like flow control)
// Prints one JSON summary: ops/s and p50/p99 latency per variant, and tcp/http ratios.
//
// Usage: node dist/scripts/bench-transport.js

import { fork, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { EntryType, MessageType, message, FrameCodec, TcpTransport, type Entry, type Message, type LogLine } from '../raft/index.js';
import { setTimeout as sleep } from 'node:timers/promises';

const SECRET = 'bench-secret-0123456789abcdef';
const CLUSTER = 'bench';
const HOST = '127.0.0.1';
const DURATION_MS = Number(process.env['BENCH_MS'] ?? 2000);
const WARMUP_MS = 300;
const ENTRIES_PER_APP = 32;
const ENTRY_BYTES = 256;
const HTTP_CONNECTIONS = Number(process.env['BENCH_HTTP_CONNECTIONS'] ?? 1);
/** Only errors: the expected "peer connection lost" at shutdown is not news. */
const quietLog = (line: LogLine): void => {
  if (line.level === 'error') console.error(JSON.stringify(line));
};

function idBytes(id: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, id);
  return b;
}

function readId(ctx: Uint8Array | undefined): number {
  if (ctx === undefined || ctx.length !== 4) return -1;
  return new DataView(ctx.buffer, ctx.byteOffset, 4).getUint32(0);
}

/** b's answer to a request from a: the same request id in the context. */
function reply(m: Message): Message {
  if (m.type === MessageType.App) {
    const last = m.entries.at(-1)?.index ?? m.index;
    return message({ type: MessageType.AppResp, from: 'b', to: 'a', term: m.term, index: last, ...(m.context ? { context: m.context } : {}) });
  }
  return message({ type: MessageType.HeartbeatResp, from: 'b', to: 'a', term: m.term, ...(m.context ? { context: m.context } : {}) });
}

// ---- responder (child process) ----------------------------------------------------------

async function serve(): Promise<void> {
  const { aPort } = await new Promise<{ aPort: number }>((resolve) => process.once('message', (m) => resolve(m as { aPort: number })));
  const b = new TcpTransport({
    self: 'b',
    clusterId: CLUSTER,
    secret: SECRET,
    listen: { host: HOST, port: 0 },
    peers: new Map([['a', { host: HOST, port: aPort }]]),
    log: quietLog,
  });
  b.onMessage((m) => b.send([reply(m)]));
  await b.start();

  const codec = new FrameCodec({ clusterId: CLUSTER, secret: SECRET, self: 'b' });
  const known = (id: string): boolean => id === 'a';
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r = codec.open(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), known);
      if (!r.ok) {
        res.writeHead(403).end();
        return;
      }
      const out = codec.encodeFrame('a', r.messages.map(reply));
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': out.length });
      res.end(out);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, HOST, () => r()));
  const httpPort = (server.address() as { port: number }).port;
  process.send!({ tcpPort: b.port, httpPort });
  process.once('disconnect', () => {
    void b.close();
    server.close();
    server.closeAllConnections();
  });
}

// ---- clients ------------------------------------------------------------------------------

interface Client {
  request(m: Message): Promise<Message>;
}

class TcpClient implements Client {
  private readonly pending = new Map<number, (m: Message) => void>();
  private nextId = 1;
  constructor(private readonly t: TcpTransport) {
    t.onMessage((m) => {
      const id = readId(m.context);
      const done = this.pending.get(id);
      if (done !== undefined) {
        this.pending.delete(id);
        done(m);
      }
    });
  }
  request(m: Message): Promise<Message> {
    const id = this.nextId++;
    m.context = idBytes(id);
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.t.send([m]);
    });
  }
}

class HttpClient implements Client {
  private readonly codec = new FrameCodec({ clusterId: CLUSTER, secret: SECRET, self: 'a' });
  private nextId = 1;
  constructor(private readonly pool: Pool) {}
  async request(m: Message): Promise<Message> {
    m.context = idBytes(this.nextId++);
    const frame = this.codec.encodeFrame('b', [m]);
    const res = await this.pool.request({
      path: '/raft',
      method: 'POST',
      body: frame,
      headers: { 'content-type': 'application/octet-stream' },
    });
    const body = Buffer.from(await res.body.arrayBuffer());
    if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}`);
    const r = this.codec.open(body, (id) => id === 'b');
    if (!r.ok || r.messages.length !== 1) throw new Error(`bad reply: ${r.ok ? r.messages.length : r.detail}`);
    return r.messages[0]!;
  }
}

// ---- workloads ----------------------------------------------------------------------------

interface Result {
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

/** Closed loop: `concurrency` workers, each issuing the next request when the last is answered. */
async function closedLoop(client: Client, concurrency: number, make: (i: number) => Message, opsPerRequest: number): Promise<Result> {
  let i = 0;
  let measuring = false;
  let stop = false;
  const latencies: number[] = [];
  const worker = async (): Promise<void> => {
    while (!stop) {
      const m = make(i++);
      const t0 = performance.now();
      const r = await client.request(m);
      if (readId(r.context) !== readId(m.context)) throw new Error('reply to the wrong request');
      if (measuring) latencies.push(performance.now() - t0);
    }
  };
  const workers = Array.from({ length: concurrency }, () => worker());
  await sleep(WARMUP_MS);
  measuring = true;
  const t0 = performance.now();
  await sleep(DURATION_MS);
  measuring = false;
  const elapsedS = (performance.now() - t0) / 1000;
  stop = true;
  await Promise.all(workers);
  const sorted = Float64Array.from(latencies).sort();
  const round = (x: number, d: number): number => Math.round(x * 10 ** d) / 10 ** d;
  return {
    opsPerSec: Math.round((latencies.length * opsPerRequest) / elapsedS),
    p50Ms: round(percentile(sorted, 0.5), 3),
    p99Ms: round(percentile(sorted, 0.99), 3),
    requests: latencies.length,
  };
}

const heartbeat = (i: number): Message => message({ type: MessageType.Heartbeat, from: 'a', to: 'b', term: 1, commit: i });

const payload = new Uint8Array(ENTRY_BYTES).map((_, i) => (i * 31) & 0xff);
function app(i: number): Message {
  const first = i * ENTRIES_PER_APP + 1;
  const entries: Entry[] = Array.from({ length: ENTRIES_PER_APP }, (_, k) => ({
    term: 1,
    index: first + k,
    type: EntryType.Normal,
    data: payload,
  }));
  return message({ type: MessageType.App, from: 'a', to: 'b', term: 1, logTerm: 1, index: first - 1, commit: first - 1, entries });
}

async function main(): Promise<void> {
  const a = new TcpTransport({
    self: 'a',
    clusterId: CLUSTER,
    secret: SECRET,
    listen: { host: HOST, port: 0 },
    peers: new Map(),
    log: quietLog,
  });
  await a.start();
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--serve'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ports = await new Promise<{ tcpPort: number; httpPort: number }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as { tcpPort: number; httpPort: number }));
    child.once('exit', (code) => reject(new Error(`responder exited with ${code}`)));
    child.send({ aPort: a.port });
  });
  a.setPeers(new Map([['b', { host: HOST, port: ports.tcpPort }]]));
  const tcp = new TcpClient(a);
  const pool = new Pool(`http://${HOST}:${ports.httpPort}`, { connections: HTTP_CONNECTIONS, pipelining: 16 });
  const httpClient = new HttpClient(pool);

  const cases: [string, number, (i: number) => Message, number][] = [
    ['pingpong_c1', 1, heartbeat, 1],
    ['pingpong_c16', 16, heartbeat, 1],
    ['app_c16', 16, app, ENTRIES_PER_APP],
  ];
  const results: Record<string, unknown> = {};
  for (const [name, concurrency, make, opsPer] of cases) {
    const t = await closedLoop(tcp, concurrency, make, opsPer);
    const h = await closedLoop(httpClient, concurrency, make, opsPer);
    const ratio = Math.round((t.opsPerSec / h.opsPerSec) * 100) / 100;
    results[name] = {
      unit: opsPer === 1 ? 'round trips/s' : `entries/s (${ENTRY_BYTES} B each, ${ENTRIES_PER_APP} per App)`,
      tcp: t,
      http: h,
      tcpOverHttp: ratio,
      ...(opsPer > 1 ? { tcpMBps: Math.round((t.opsPerSec * ENTRY_BYTES) / 1e5) / 10, httpMBps: Math.round((h.opsPerSec * ENTRY_BYTES) / 1e5) / 10 } : {}),
    };
  }
  const summary = {
    bench: 'raft peer transport: framed TCP vs HTTP (undici Pool, pipelining 16)',
    httpConnections: HTTP_CONNECTIONS,
    node: process.version,
    cpus: os.cpus().length,
    durationMs: DURATION_MS,
    results,
    tcpStats: a.stats(),
  };
  console.log(JSON.stringify(summary, null, 2));
  await pool.close();
  await a.close();
  child.disconnect();
  await new Promise((r) => child.once('exit', r));
}

if (process.argv.includes('--serve')) {
  void serve();
} else {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
