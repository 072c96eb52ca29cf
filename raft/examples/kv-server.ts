// A replicated key-value store on the raft/ library: one process per node, an HTTP
// front, LevelDB storage and the authenticated TCP transport. It is the library's
// usage example and the process the Raft benchmark drives.
//
//   node dist/raft/examples/kv-server.js --id n1 --data /tmp/kv1 --http 127.0.0.1:8001 \
//     --peers n1=127.0.0.1:9001,n2=127.0.0.1:9002,n3=127.0.0.1:9003 --secret 0123456789abcdef
//
// HTTP: PUT /kv/KEY (body = value) replicates a write on the leader; GET /kv/KEY
// is a linearizable read; GET /status is the node's Raft status; POST
// /transfer?to=n2 hands over leadership. A follower answers writes with 421 and
// the leader's id in `x-raft-leader`.

import http from 'node:http';
import { parseArgs } from 'node:util';
import { RaftNode, NotLeaderError, LevelStorage, TcpTransport, type StateMachine, type PeerAddress } from '../index.js';

class KvMachine implements StateMachine<null> {
  private data = new Map<string, Buffer>();

  apply(cmd: Uint8Array): null {
    // Command: 2-byte key length, key, value.
    const buf = Buffer.from(cmd.buffer, cmd.byteOffset, cmd.byteLength);
    const keyLength = buf.readUInt16BE(0);
    this.data.set(buf.subarray(2, 2 + keyLength).toString('utf8'), Buffer.from(buf.subarray(2 + keyLength)));
    return null;
  }

  get(key: string): Buffer | undefined {
    return this.data.get(key);
  }

  snapshot(): Uint8Array {
    const parts: Buffer[] = [];
    for (const [k, v] of [...this.data].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      const kb = Buffer.from(k, 'utf8');
      const head = Buffer.alloc(8);
      head.writeUInt32BE(kb.length, 0);
      head.writeUInt32BE(v.length, 4);
      parts.push(head, kb, v);
    }
    return Buffer.concat(parts);
  }

  restore(data: Uint8Array): void {
    this.data = new Map();
    const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    for (let off = 0; off < buf.length; ) {
      const kl = buf.readUInt32BE(off);
      const vl = buf.readUInt32BE(off + 4);
      off += 8;
      const k = buf.subarray(off, off + kl).toString('utf8');
      off += kl;
      this.data.set(k, Buffer.from(buf.subarray(off, off + vl)));
      off += vl;
    }
  }
}

export function encodePut(key: string, value: Uint8Array): Uint8Array {
  const kb = Buffer.from(key, 'utf8');
  const out = Buffer.alloc(2 + kb.length + value.byteLength);
  out.writeUInt16BE(kb.length, 0);
  kb.copy(out, 2);
  out.set(value, 2 + kb.length);
  return out;
}

function parseAddress(s: string, what: string): PeerAddress {
  const i = s.lastIndexOf(':');
  const port = Number(s.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`${what}: expected HOST:PORT, got '${s}'`);
  }
  return { host: s.slice(0, i), port };
}

async function main(): Promise<void> {
  const { values: a } = parseArgs({
    options: {
      id: { type: 'string' },
      data: { type: 'string' },
      http: { type: 'string' },
      peers: { type: 'string' },
      secret: { type: 'string' },
      'tick-ms': { type: 'string', default: '20' },
    },
    strict: true,
  });
  if (!a.id || !a.data || !a.http || !a.peers || !a.secret) {
    throw new Error('usage: kv-server --id ID --data DIR --http HOST:PORT --peers ID=HOST:PORT,... --secret SECRET');
  }
  const peers = new Map<string, PeerAddress>();
  for (const p of a.peers.split(',')) {
    const [id, addr] = p.split('=');
    if (!id || !addr) throw new Error(`--peers: expected ID=HOST:PORT, got '${p}'`);
    peers.set(id, parseAddress(addr, `--peers ${id}`));
  }
  const self = peers.get(a.id);
  if (!self) throw new Error(`--id ${a.id} is not in --peers`);
  const storage = await LevelStorage.open(a.data, { bootstrapConf: { voters: [...peers.keys()], learners: [] } });
  // JSON log lines on stderr, one per event (elections, snapshots, peer trouble).
  const log = (line: { level: string; msg: string }) => {
    if (line.level !== 'debug') process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), node: a.id, ...line })}\n`);
  };
  const transport = new TcpTransport({ self: a.id, clusterId: 'kv-example', secret: a.secret, listen: self, peers, log });
  const kv = new KvMachine();
  const node = await RaftNode.start({ id: a.id, storage, transport, stateMachine: kv, tickMs: Number(a['tick-ms']), log });

  const httpAddr = parseAddress(a.http, '--http');
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const fail = (status: number, msg: string) => {
      res.writeHead(status, { 'content-type': 'text/plain', 'x-raft-leader': node.leaderId() });
      res.end(msg + '\n');
    };
    if (url.pathname === '/status') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(node.status()));
      return;
    }
    if (url.pathname === '/transfer' && req.method === 'POST') {
      node.transferLeadership(url.searchParams.get('to') ?? '').then(
        (leader) => {
          res.writeHead(200);
          res.end(JSON.stringify({ leader }));
        },
        (e: Error) => fail(503, e.message),
      );
      return;
    }
    if (!url.pathname.startsWith('/kv/')) return fail(404, 'not found');
    const key = decodeURIComponent(url.pathname.slice(4));
    if (req.method === 'GET') {
      node.read().then(
        () => {
          const v = kv.get(key);
          if (!v) return fail(404, 'no such key');
          res.writeHead(200);
          res.end(v);
        },
        (e: Error) => fail(e instanceof NotLeaderError ? 421 : 503, e.message),
      );
      return;
    }
    if (req.method !== 'PUT') return fail(405, 'use GET or PUT');
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      node.propose(encodePut(key, Buffer.concat(chunks))).then(
        (r) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(`{"index":${r.index}}`);
        },
        (e: Error) => fail(e instanceof NotLeaderError ? 421 : 503, e.message),
      );
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(httpAddr.port, httpAddr.host, resolve));
  process.stdout.write(`ready ${JSON.stringify({ id: a.id, http: a.http })}\n`);

  const shutdown = async () => {
    server.close();
    await node.stop('signal');
    await storage.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown());
  process.on('SIGINT', () => void shutdown());
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e: Error) => {
    console.error(`kv-server: ${e.message}`);
    process.exit(1);
  });
}
