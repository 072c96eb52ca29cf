// Tests for the authenticated peer transport: validation, framing, and two real
// TcpTransports on loopback (ephemeral ports, everything closed at the end).

import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import { EntryType, MessageType, WIRE_MESSAGE_TYPES, message, type Message, type NodeId } from '../src/core/types.js';
import { FrameCodec, FrameDecoder, FRAME_LENGTH_MIN, MAC_BYTES } from '../src/transport/frame.js';
import { TcpTransport, type LogLine, type TcpTransportOptions } from '../src/transport/tcp-transport.js';
import type { PeerAddress } from '../src/transport/transport.js';
import { validateMessage } from '../src/transport/validate.js';
import { sourceAddressFor, sourceBinding } from '../src/transport/source-address.js';

const SECRET = 'ogel-test-secret-0123456789abcdef';
const CLUSTER = 'test-cluster';
const HOST = '127.0.0.1';
const SEED = Number(process.env['FC_SEED'] ?? 20240611);

// ---- arbitraries ------------------------------------------------------------------

// Plain objects, like msgpack produces (validateMessage returns plain objects too).
const NO_NULL_PROTO = { noNullPrototype: true } as const;
const natArb = fc.oneof(fc.nat({ max: 1000 }), fc.maxSafeNat());
const bytesArb = fc.uint8Array({ maxLength: 48 });
const idArb = fc.string({ minLength: 1, maxLength: 12, unit: 'grapheme' }).filter((s) => s.length <= 64);
const entryArb = fc.record(
  {
    term: natArb,
    index: natArb,
    type: fc.constantFrom(EntryType.Normal, EntryType.ConfChange),
    data: bytesArb,
  },
  NO_NULL_PROTO,
);
const chunkArb = fc.record(
  {
    meta: fc.record(
      {
        index: natArb,
        term: natArb,
        conf: fc.record({ voters: fc.array(idArb, { maxLength: 5 }), learners: fc.array(idArb, { maxLength: 3 }) }, NO_NULL_PROTO),
      },
      NO_NULL_PROTO,
    ),
    totalBytes: natArb,
    offset: natArb,
    data: bytesArb,
  },
  NO_NULL_PROTO,
);
function messageArb(from: fc.Arbitrary<NodeId>, to: fc.Arbitrary<NodeId>): fc.Arbitrary<Message> {
  return fc
    .record(
      {
        type: fc.constantFrom(...WIRE_MESSAGE_TYPES),
        from,
        to,
        term: natArb,
        logTerm: natArb,
        index: natArb,
        entries: fc.array(entryArb, { maxLength: 4 }),
        commit: natArb,
        reject: fc.boolean(),
        rejectHint: natArb,
        hintTerm: natArb,
        snapshot: fc.option(chunkArb, { nil: undefined }),
        context: fc.option(bytesArb, { nil: undefined }),
      },
      NO_NULL_PROTO,
    )
    .map((r) => message(r));
}
const abArb = messageArb(fc.constant('a'), fc.constant('b'));

// ---- an independent, deliberately naive oracle for "is a valid wire message" ---------

const refNat = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= Number.MAX_SAFE_INTEGER;
const refId = (v: unknown): boolean => typeof v === 'string' && v.length >= 1 && v.length <= 64;
const refObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
const refIds = (v: unknown): boolean => Array.isArray(v) && [...v].every(refId);
function refValid(x: unknown): boolean {
  if (!refObj(x)) return false;
  if (!WIRE_MESSAGE_TYPES.has(x['type'] as MessageType) || typeof x['type'] !== 'number') return false;
  if (!refId(x['from']) || !refId(x['to'])) return false;
  for (const k of ['term', 'logTerm', 'index', 'commit', 'rejectHint', 'hintTerm']) if (!refNat(x[k])) return false;
  if (typeof x['reject'] !== 'boolean') return false;
  const es = x['entries'];
  if (!Array.isArray(es)) return false;
  for (const e of [...es]) {
    if (!refObj(e) || !refNat(e['term']) || !refNat(e['index'])) return false;
    if (e['type'] !== 0 && e['type'] !== 1) return false;
    if (!(e['data'] instanceof Uint8Array)) return false;
  }
  const s = x['snapshot'];
  if (s !== undefined) {
    if (!refObj(s) || !refNat(s['totalBytes']) || !refNat(s['offset']) || !(s['data'] instanceof Uint8Array)) return false;
    const meta = s['meta'];
    if (!refObj(meta) || !refNat(meta['index']) || !refNat(meta['term'])) return false;
    const conf = meta['conf'];
    if (!refObj(conf) || !refIds(conf['voters']) || !refIds(conf['learners'])) return false;
  }
  const c = x['context'];
  if (c !== undefined && !(c instanceof Uint8Array)) return false;
  return true;
}

// ---- helpers ------------------------------------------------------------------------

interface TestNode {
  t: TcpTransport;
  got: Message[];
  logs: LogLine[];
  unreachable: NodeId[];
}

const live = new Set<TcpTransport>();
const rawSockets = new Set<net.Socket>();
const rawServers = new Set<net.Server>();
after(async () => {
  for (const s of rawSockets) s.destroy();
  await Promise.all([...live].map((t) => t.close()));
  await Promise.all([...rawServers].map((s) => new Promise<void>((r) => s.close(() => r()))));
});

async function startNode(self: NodeId, opts: Partial<TcpTransportOptions> = {}): Promise<TestNode> {
  const logs: LogLine[] = [];
  const t = new TcpTransport({
    self,
    clusterId: CLUSTER,
    secret: SECRET,
    listen: { host: HOST, port: 0 },
    peers: new Map(),
    log: (l) => logs.push(l),
    ...opts,
  });
  await t.start();
  live.add(t);
  const node: TestNode = { t, got: [], logs, unreachable: [] };
  t.onMessage((m) => node.got.push(m));
  t.onUnreachable((p) => node.unreachable.push(p));
  return node;
}

async function stopNode(n: TestNode): Promise<void> {
  await n.t.close();
  live.delete(n.t);
}

function addr(n: TestNode): PeerAddress {
  return { host: HOST, port: n.t.port };
}

/** Starts nodes and makes each a peer of every other. */
async function cluster(...ids: NodeId[]): Promise<TestNode[]> {
  const nodes = await Promise.all(ids.map((id) => startNode(id)));
  const peers = new Map(nodes.map((n, i) => [ids[i]!, addr(n)] as const));
  for (const n of nodes) n.t.setPeers(peers);
  return nodes;
}

async function waitFor(what: string, pred: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

/** Connects a raw socket, writes chunks, half-closes, and resolves when the server has closed it. */
async function rawExchange(port: number, chunks: readonly Uint8Array[], opts: { end?: boolean } = {}): Promise<void> {
  const s = net.connect({ host: HOST, port });
  rawSockets.add(s);
  s.on('error', () => {}); // ECONNRESET when the server destroys us mid-write is expected
  // A server that fails to close the connection must fail the test, not hang it.
  let timer: NodeJS.Timeout | undefined;
  const closed = new Promise<void>((resolve, reject) => {
    timer = setTimeout(() => {
      s.destroy();
      reject(new Error('the server did not close the connection within 3 s'));
    }, 3000);
    s.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  await new Promise<void>((r, j) => {
    s.once('connect', () => r());
    s.once('error', j);
  });
  for (const c of chunks) if (c.length > 0 && !s.destroyed) s.write(c);
  if (opts.end ?? true) s.end();
  s.resume();
  await closed;
  rawSockets.delete(s);
}

function codecFor(self: NodeId, over: { clusterId?: string; secret?: string } = {}): FrameCodec {
  return new FrameCodec({ clusterId: over.clusterId ?? CLUSTER, secret: over.secret ?? SECRET, self });
}

function hb(from: NodeId, to: NodeId, term: number): Message {
  return message({ type: MessageType.Heartbeat, from, to, term, commit: term });
}

/** Waits until the good peer still gets through to `b`. */
async function assertStillServes(a: TestNode, b: TestNode): Promise<void> {
  const before = b.got.length;
  a.t.send([hb('a', 'b', 777)]);
  await waitFor('good peer delivery', () => b.got.length > before);
  assert.equal(b.got.at(-1)?.term, 777);
}

// ---- validateMessage ----------------------------------------------------------------

describe('validateMessage', () => {
  test('accepts well-formed messages and returns an equal copy', () => {
    fc.assert(
      fc.property(messageArb(idArb, idArb), (m) => {
        const r = validateMessage(m);
        assert.notEqual(typeof r, 'string', String(r));
        assert.deepEqual(r, m);
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  test('normalises Buffer to a plain Uint8Array view of the same memory', () => {
    const buf = Buffer.from([1, 2, 3]);
    const r = validateMessage(
      message({ type: MessageType.App, from: 'a', to: 'b', entries: [{ term: 1, index: 1, type: EntryType.Normal, data: buf }], context: buf }),
    );
    assert.ok(typeof r !== 'string');
    const data = r.entries[0]!.data;
    assert.equal(Object.getPrototypeOf(data), Uint8Array.prototype);
    assert.equal(data.buffer, buf.buffer);
    assert.deepEqual([...data], [1, 2, 3]);
    assert.equal(Object.getPrototypeOf(r.context), Uint8Array.prototype);
  });

  test('gives short reasons naming the field', () => {
    const base = message({ type: MessageType.App, from: 'a', to: 'b' });
    assert.equal(validateMessage({ ...base, term: -1 }), 'field term: expected non-negative safe integer, got -1');
    assert.match(String(validateMessage({ ...base, type: MessageType.Hup })), /field type/);
    assert.match(String(validateMessage({ ...base, from: '' })), /field from/);
    assert.match(String(validateMessage({ ...base, to: 'x'.repeat(65) })), /field to/);
    assert.match(String(validateMessage({ ...base, entries: [{ term: 1, index: 2, type: 7, data: new Uint8Array() }] })), /entries\[0\]\.type/);
    assert.match(String(validateMessage({ ...base, context: 'nope' })), /field context/);
    assert.match(String(validateMessage({ ...base, snapshot: { meta: {} } })), /snapshot\.meta\.index/);
    assert.match(String(validateMessage({ ...base, index: 2 ** 53 })), /field index/);
    assert.match(String(validateMessage(null)), /message: expected object/);
  });

  test('fuzz: arbitrary values never throw and are accepted exactly when the oracle accepts', () => {
    fc.assert(
      fc.property(
        fc.anything({
          withTypedArray: true,
          withBigInt: true,
          withBoxedValues: true,
          withMap: true,
          withSet: true,
          withDate: true,
          withNullPrototype: true,
          withObjectString: true,
          withSparseArray: true,
        }),
        (x) => {
          const r = validateMessage(x);
          assert.equal(typeof r !== 'string', refValid(x));
        },
      ),
      { seed: SEED, numRuns: 500 },
    );
  });

  test('fuzz: mutated valid messages are accepted exactly when the oracle accepts', () => {
    const paths = [
      ['type'],
      ['from'],
      ['to'],
      ['term'],
      ['logTerm'],
      ['index'],
      ['entries'],
      ['commit'],
      ['reject'],
      ['rejectHint'],
      ['hintTerm'],
      ['snapshot'],
      ['context'],
      ['entries', 0],
      ['entries', 0, 'term'],
      ['entries', 0, 'index'],
      ['entries', 0, 'type'],
      ['entries', 0, 'data'],
      ['snapshot', 'meta'],
      ['snapshot', 'data'],
      ['snapshot', 'offset'],
      ['snapshot', 'totalBytes'],
      ['snapshot', 'meta', 'conf'],
      ['snapshot', 'meta', 'conf', 'voters'],
      ['snapshot', 'meta', 'conf', 'voters', 0],
      ['snapshot', 'meta', 'index'],
    ] as const;
    const valueArb = fc.oneof(
      fc.anything({ withTypedArray: true, withBigInt: true, withNullPrototype: true, maxDepth: 2 }),
      fc.constantFrom(undefined, null, -1, 1.5, NaN, 2 ** 53, '', 'x'.repeat(65), 'ok', 0, 1, 2, 13, 18, true, new Uint8Array(2), Buffer.from('hi')),
    );
    fc.assert(
      fc.property(messageArb(idArb, idArb), fc.constantFrom(...paths), valueArb, fc.boolean(), (m, path, value, del) => {
        const x = structuredClone(m) as unknown as Record<string | number, unknown>;
        let obj: Record<string | number, unknown> | undefined = x;
        for (let i = 0; i < path.length - 1 && obj !== undefined; i++) {
          const next: unknown = obj[path[i]!];
          obj = typeof next === 'object' && next !== null ? (next as Record<string | number, unknown>) : undefined;
        }
        if (obj !== undefined) {
          if (del) delete obj[path[path.length - 1]!];
          else obj[path[path.length - 1]!] = value;
        }
        const r = validateMessage(x);
        const ok = refValid(x);
        assert.equal(typeof r !== 'string', ok, typeof r === 'string' ? r : 'accepted');
        if (typeof r !== 'string') assert.equal(typeof validateMessage(r), 'object');
      }),
      { seed: SEED, numRuns: 1000 },
    );
  });
});

// ---- framing ------------------------------------------------------------------------

describe('frames', () => {
  const a = codecFor('a');
  const b = codecFor('b');
  const known = (id: NodeId): boolean => id === 'a';

  test('round-trip: random batches decode to equal messages', () => {
    fc.assert(
      fc.property(fc.array(abArb, { minLength: 0, maxLength: 20 }), (msgs) => {
        const frame = a.encodeFrame('b', msgs);
        const { frames, error } = new FrameDecoder().push(frame);
        assert.equal(error, undefined);
        assert.equal(frames.length, 1);
        const r = b.open(frames[0]!, known);
        assert.ok(r.ok, r.ok ? '' : r.detail);
        assert.equal(r.sender, 'a');
        assert.deepEqual(r.invalid, []);
        assert.deepEqual(r.messages, msgs);
      }),
      { seed: SEED, numRuns: 200 },
    );
  });

  test('layout: length prefix, version, ids, msgpack array, 32-byte MAC', () => {
    const frame = a.encodeFrame('b', [hb('a', 'b', 1)]);
    assert.equal(frame.readUInt32BE(0), frame.length - 4);
    assert.equal(frame[4], 1);
    assert.equal(frame[5], CLUSTER.length);
    assert.equal(frame.subarray(6, 6 + CLUSTER.length).toString(), CLUSTER);
    const p = 6 + CLUSTER.length;
    assert.deepEqual([...frame.subarray(p, p + 4)], [1, 0x61, 1, 0x62]); // "a" -> "b"
    assert.equal(frame[p + 4], 0x91); // fixarray of one message
    assert.ok(frame.length > p + 5 + MAC_BYTES);
  });

  test('fuzz: a single-byte mutation anywhere is never accepted', () => {
    fc.assert(
      fc.property(fc.array(abArb, { minLength: 1, maxLength: 4 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (msgs, pos, xor) => {
        const frame = a.encodeFrame('b', msgs);
        const i = pos % frame.length;
        const mutated = Buffer.from(frame);
        mutated[i] = mutated[i]! ^ xor;
        const { frames } = new FrameDecoder().push(mutated);
        for (const f of frames) assert.equal(b.open(f, known).ok, false, `mutation at byte ${i} was accepted`);
      }),
      { seed: SEED, numRuns: 500 },
    );
  });

  test('fuzz: the decoder reassembles any chunking of a frame sequence', () => {
    fc.assert(
      fc.property(fc.array(fc.array(abArb, { maxLength: 3 }), { minLength: 1, maxLength: 6 }), fc.array(fc.nat(), { maxLength: 40 }), (batches, cuts) => {
        const frames = batches.map((msgs) => a.encodeFrame('b', msgs));
        const stream = Buffer.concat(frames);
        const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((x, y) => x - y);
        const dec = new FrameDecoder();
        const out: Buffer[] = [];
        let prev = 0;
        for (const p of [...points, stream.length]) {
          const r = dec.push(stream.subarray(prev, p));
          assert.equal(r.error, undefined);
          out.push(...r.frames);
          prev = p;
        }
        assert.equal(out.length, frames.length);
        out.forEach((f, i) => {
          assert.ok(f.equals(frames[i]!));
        });
        assert.equal(dec.bufferedBytes, 0);
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  test('decoder rejects an oversized length prefix before buffering the body', () => {
    const dec = new FrameDecoder(1024);
    const r = dec.push(Buffer.from([0x00, 0x00, 0x04, 0x01, 0xaa]));
    assert.equal(r.error?.reason, 'oversized');
    assert.equal(dec.bufferedBytes, 0);
    assert.ok(dec.failed);
    assert.deepEqual(dec.push(Buffer.alloc(10)).frames, []);
    const small = new FrameDecoder();
    assert.equal(small.push(Buffer.from([0, 0, 0, FRAME_LENGTH_MIN - 1])).error?.reason, 'malformed');
  });

  test('a prefix split across chunks is read correctly', () => {
    const frame = a.encodeFrame('b', [hb('a', 'b', 5)]);
    const dec = new FrameDecoder();
    const got: Buffer[] = [];
    for (const byte of frame) got.push(...dec.push(Buffer.from([byte])).frames);
    assert.equal(got.length, 1);
    assert.ok(got[0]!.equals(frame));
  });

  test('a secret shorter than 16 bytes is refused with a clear error', () => {
    assert.throws(() => codecFor('a', { secret: 'short' }), /at least 16 bytes, got 5/);
    assert.throws(
      () => new TcpTransport({ self: 'a', clusterId: CLUSTER, secret: new Uint8Array(15), listen: { host: HOST, port: 0 }, peers: new Map() }),
      /at least 16 bytes, got 15/,
    );
  });
});

// ---- TcpTransport on loopback ---------------------------------------------------------

describe('TcpTransport', { timeout: 20_000 }, () => {
  test('delivers messages intact and in order, both ways', async () => {
    const [a, b] = (await cluster('a', 'b')) as [TestNode, TestNode];
    const data = new Uint8Array(300).map((_, i) => (i * 7) & 0xff);
    const sent: Message[] = [
      message({
        type: MessageType.App,
        from: 'a',
        to: 'b',
        term: 3,
        logTerm: 2,
        index: 10,
        commit: 9,
        entries: [
          { term: 3, index: 11, type: EntryType.Normal, data },
          { term: 3, index: 12, type: EntryType.ConfChange, data: new Uint8Array([0, 0xff, 0x80]) },
          { term: 3, index: 13, type: EntryType.Normal, data: new Uint8Array(0) },
        ],
      }),
      message({
        type: MessageType.Snap,
        from: 'a',
        to: 'b',
        term: 3,
        snapshot: {
          meta: { index: 100, term: 2, conf: { voters: ['a', 'b', 'c'], learners: ['d'] } },
          totalBytes: 1 << 20,
          offset: 65536,
          data: new Uint8Array(1000).fill(0xab),
        },
      }),
      message({ type: MessageType.ReadIndex, from: 'a', to: 'b', term: 3, context: new Uint8Array([9, 8, 7, 6]) }),
      message({ type: MessageType.AppResp, from: 'a', to: 'b', term: 3, reject: true, rejectHint: 4, hintTerm: 1 }),
    ];
    a.t.send(sent);
    for (let i = 0; i < 50; i++) {
      a.t.send([hb('a', 'b', 100 + i)]);
      if (i % 7 === 0) await nextTurn();
    }
    await waitFor('54 messages at b', () => b.got.length === 54);
    assert.deepEqual(b.got.slice(0, 4), sent);
    assert.deepEqual(
      b.got.slice(4).map((m) => m.term),
      Array.from({ length: 50 }, (_, i) => 100 + i),
    );
    b.t.send([message({ type: MessageType.HeartbeatResp, from: 'b', to: 'a', term: 3, context: new Uint8Array([1]) })]);
    await waitFor('reply at a', () => a.got.length === 1);
    assert.equal(a.got[0]!.type, MessageType.HeartbeatResp);
    assert.deepEqual(a.got[0]!.context, new Uint8Array([1]));
    const sa = a.t.stats();
    const sb = b.t.stats();
    assert.equal(sa.messagesSent, 54);
    assert.equal(sb.messagesReceived, 54);
    assert.equal(sb.framesReceived, sa.framesSent);
    assert.equal(sb.bytesReceived, sa.bytesSent);
    assert.deepEqual(Object.values(sb.droppedInbound), [0, 0, 0, 0, 0, 0, 0]);
    await Promise.all([stopNode(a), stopNode(b)]);
  });

  test('batching: sends in one tick become one frame', async () => {
    const [a, b] = (await cluster('a', 'b')) as [TestNode, TestNode];
    a.t.send([hb('a', 'b', 1)]);
    await waitFor('warm-up', () => b.got.length === 1);
    const sa0 = a.t.stats();
    const sb0 = b.t.stats();
    for (let i = 0; i < 200; i++) a.t.send([hb('a', 'b', i + 2)]);
    await waitFor('batch', () => b.got.length === 201);
    const sa = a.t.stats();
    const sb = b.t.stats();
    assert.equal(sa.framesSent - sa0.framesSent, 1);
    assert.equal(sa.messagesSent - sa0.messagesSent, 200);
    assert.equal(sb.framesReceived - sb0.framesReceived, 1);
    assert.deepEqual(
      b.got.map((m) => m.term),
      Array.from({ length: 201 }, (_, i) => i + 1),
    );
    await Promise.all([stopNode(a), stopNode(b)]);
  });

  test('a batch larger than maxFrameBytes is split into several frames', async () => {
    const a = await startNode('a', { maxFrameBytes: 64 * 1024 });
    const b = await startNode('b', { maxFrameBytes: 64 * 1024 });
    a.t.setPeers(new Map([['b', addr(b)]]));
    b.t.setPeers(new Map([['a', addr(a)]]));
    const entry = (i: number) => ({ term: 1, index: i, type: EntryType.Normal, data: new Uint8Array(10_000).fill(i) });
    const msgs = Array.from({ length: 20 }, (_, i) => message({ type: MessageType.App, from: 'a', to: 'b', index: i, entries: [entry(i)] }));
    a.t.send(msgs);
    await waitFor('20 messages', () => b.got.length === 20);
    assert.deepEqual(b.got, msgs);
    assert.ok(a.t.stats().framesSent >= 4, `framesSent=${a.t.stats().framesSent}`);
    // A single message that cannot fit in any frame is dropped and counted, not sent.
    const huge = message({ type: MessageType.App, from: 'a', to: 'b', entries: [{ term: 1, index: 1, type: EntryType.Normal, data: new Uint8Array(70_000) }] });
    a.t.send([huge]);
    assert.equal(a.t.stats().droppedOutbound.oversized, 1);
    await Promise.all([stopNode(a), stopNode(b)]);
  });

  test('reconnects after the receiver restarts; reports it unreachable meanwhile', async () => {
    const [a, b] = (await cluster('a', 'b')) as [TestNode, TestNode];
    const port = b.t.port;
    a.t.send([hb('a', 'b', 1)]);
    await waitFor('first delivery', () => b.got.length === 1);
    await stopNode(b);
    // Until the restart, sends are dropped (counted) and the peer reported unreachable.
    for (let i = 0; i < 10; i++) {
      a.t.send([hb('a', 'b', 2)]);
      await sleep(10);
    }
    await waitFor('unreachable report', () => a.unreachable.includes('b'));
    assert.ok(a.t.stats().droppedOutbound.disconnected > 0);
    const b2 = await startNode('b', { listen: { host: HOST, port } });
    b2.t.setPeers(new Map([['a', addr(a)]]));
    const deadline = Date.now() + 3000;
    while (b2.got.length === 0 && Date.now() < deadline) {
      a.t.send([hb('a', 'b', 3)]);
      await sleep(10);
    }
    assert.ok(b2.got.length > 0, 'no delivery after restart');
    assert.equal(b2.got[0]!.term, 3);
    assert.ok(a.t.stats().connects >= 2);
    assert.ok(a.logs.some((l) => l.msg === 'peer connection lost' && l['peer'] === 'b'));
    assert.ok(a.logs.some((l) => l.msg === 'peer reachable again' && l['peer'] === 'b'));
    await Promise.all([stopNode(a), stopNode(b2)]);
  });

  test('a peer that never listens is reported unreachable and its messages dropped', async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, HOST, () => r()));
    const deadPort = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const a = await startNode('a', { unreachableIntervalMs: 0 });
    a.t.setPeers(new Map([['c', { host: HOST, port: deadPort }]]));
    a.t.send([hb('a', 'c', 1)]);
    await waitFor('unreachable', () => a.unreachable.includes('c'));
    a.t.send([hb('a', 'c', 2)]);
    const s = a.t.stats();
    assert.ok(s.connectionErrors >= 1);
    assert.ok(s.droppedOutbound.disconnected >= 2, JSON.stringify(s.droppedOutbound));
    // Not a peer at all: dropped and counted, never thrown.
    a.t.send([hb('a', 'zz', 1)]);
    assert.equal(a.t.stats().droppedOutbound.unknownPeer, 1);
    // A programmer error (local message type, wrong sender) does throw.
    assert.throws(() => a.t.send([message({ type: MessageType.Hup, from: 'a', to: 'c' })]), /not a wire message/);
    assert.throws(() => a.t.send([hb('b', 'c', 1)]), /message from "b"/);
    await stopNode(a);
  });

  test('wrong secret: dropped as badMac, logged once, connection closed; good peer unaffected', async () => {
    const [a, b] = (await cluster('a', 'b')) as [TestNode, TestNode];
    const evil = codecFor('a', { secret: 'not-the-cluster-secret-xxxxxxxx' });
    for (let i = 0; i < 3; i++) await rawExchange(b.t.port, [evil.encodeFrame('b', [hb('a', 'b', 1)])], { end: false });
    const s = b.t.stats();
    assert.equal(s.droppedInbound.badMac, 3);
    assert.equal(b.got.length, 0);
    const lines = b.logs.filter((l) => l.reason === 'bad MAC');
    assert.equal(lines.length, 1, 'logged once per remote address and reason');
    assert.equal(lines[0]!.level, 'warn');
    assert.equal(lines[0]!.msg, 'dropped peer frame');
    assert.match(String(lines[0]!['remote']), /^127\.0\.0\.1:\d+$/);
    await assertStillServes(a, b);
    await Promise.all([stopNode(a), stopNode(b)]);
  });

  test('unknown sender, wrong cluster, wrong receiver: dropped and counted per reason', async () => {
    const [a, b] = (await cluster('a', 'b')) as [TestNode, TestNode];
    // A full transport for a node b does not know, holding the right secret.
    const x = await startNode('x');
    x.t.setPeers(new Map([['b', addr(b)]]));
    x.t.send([hb('x', 'b', 1)]);
    await waitFor('unknownNode', () => b.t.stats().droppedInbound.unknownNode === 1);
    // Raw frames over one connection: authenticated but misrouted frames do not close it.
    const other = codecFor('a', { clusterId: 'another-cluster' });
    const ca = codecFor('a');
    await rawExchange(b.t.port, [
      other.encodeFrame('b', [hb('a', 'b', 1)]),
      ca.encodeFrame('c', [message({ type: MessageType.Heartbeat, from: 'a', to: 'c' })]),
      ca.encodeFrame('b', [hb('a', 'b', 42)]),
    ]);
    const s = b.t.stats();
    assert.equal(s.droppedInbound.wrongCluster, 1);
    assert.equal(s.droppedInbound.wrongReceiver, 1);
    assert.equal(s.droppedInbound.badMac, 0);
    assert.deepEqual(
      b.got.map((m) => m.term),
      [42],
    );
    for (const reason of ['unknown node', 'wrong cluster', 'wrong receiver']) {
      assert.equal(b.logs.filter((l) => l.reason === reason).length, 1, reason);
    }
    await assertStillServes(a, b);
    await Promise.all([stopNode(a), stopNode(b), stopNode(x)]);
  });

  test('an invalid message inside an authenticated batch is dropped; the rest are delivered', async () => {
    const [a, b] = (await cluster('a', 'b')) as [TestNode, TestNode];
    const ca = codecFor('a');
    const bad = { ...hb('a', 'b', 2), term: -5 } as Message;
    const spoofed = hb('c', 'b', 3); // claims another sender inside a's frame
    await rawExchange(b.t.port, [
      ca.seal(
        'b',
        [hb('a', 'b', 1), bad, spoofed, hb('a', 'b', 4)].map((m) => ca.encodeMessage(m)),
      ),
    ]);
    assert.deepEqual(
      b.got.map((m) => m.term),
      [1, 4],
    );
    assert.equal(b.t.stats().droppedInbound.invalidMessage, 2);
    assert.equal(b.t.stats().framesReceived, 1);
    // An authenticated body that is not msgpack (a str8 marker with no length) is a
    // malformed frame; the connection stays open and the next frame on it is delivered.
    await rawExchange(b.t.port, [ca.seal('b', [Buffer.from([0xd9])]), ca.encodeFrame('b', [hb('a', 'b', 5)])]);
    assert.equal(b.t.stats().droppedInbound.malformed, 1);
    assert.deepEqual(
      b.got.map((m) => m.term),
      [1, 4, 5],
    );
    await assertStillServes(a, b);
    await Promise.all([stopNode(a), stopNode(b)]);
  });

  test('oversized length prefix: connection closed, counted, nothing big allocated', async () => {
    const [a, b] = (await cluster('a', 'b')) as [TestNode, TestNode];
    const before = process.memoryUsage().arrayBuffers;
    const prefix = Buffer.alloc(8);
    prefix.writeUInt32BE(0xffff_fff0, 0);
    await rawExchange(b.t.port, [prefix], { end: false }); // resolves only when b closes it
    const justOver = Buffer.alloc(4);
    justOver.writeUInt32BE(64 * 1024 * 1024 + 1, 0);
    await rawExchange(b.t.port, [justOver], { end: false });
    const grown = process.memoryUsage().arrayBuffers - before;
    assert.ok(grown < 16 * 1024 * 1024, `arrayBuffers grew by ${grown}`);
    assert.equal(b.t.stats().droppedInbound.oversized, 2);
    assert.equal(b.logs.filter((l) => l.reason === 'oversized frame').length, 1);
    await assertStillServes(a, b);
    await Promise.all([stopNode(a), stopNode(b)]);
  });

  test('backpressure: a peer that stops reading leaves a bounded queue, oldest dropped', async () => {
    const stalled = new Set<net.Socket>();
    const sink = net.createServer((s) => {
      stalled.add(s);
      s.pause();
    });
    rawServers.add(sink);
    await new Promise<void>((r) => sink.listen(0, HOST, () => r()));
    const maxQueued = 256 * 1024;
    const a = await startNode('a', { maxQueuedBytesPerPeer: maxQueued });
    a.t.setPeers(new Map([['s', { host: HOST, port: (sink.address() as net.AddressInfo).port }]]));
    const data = new Uint8Array(64 * 1024);
    const app = (i: number) => message({ type: MessageType.App, from: 'a', to: 's', index: i, entries: [{ term: 1, index: i, type: EntryType.Normal, data }] });
    let i = 0;
    // Keep sending until the kernel buffers are full too: from then on nothing more is
    // written (write() said no and 'drain' never comes), while the queue stays bounded.
    let stableRounds = 0;
    let lastBytes = -1;
    const deadline = Date.now() + 5000;
    while (stableRounds < 20 && Date.now() < deadline) {
      for (let k = 0; k < 16; k++) a.t.send([app(i++)]);
      await nextTurn();
      const sent = a.t.stats().bytesSent;
      stableRounds = sent === lastBytes ? stableRounds + 1 : 0;
      lastBytes = sent;
    }
    const s = a.t.stats();
    assert.equal(stableRounds, 20, `still writing after 5 s: ${s.bytesSent} bytes`);
    assert.ok(s.droppedOutbound.queueFull > 0, 'queue never filled');
    // Everything offered was either written, dropped as overflow, or is still queued (<= the bound).
    const offeredBytes = i * (64 * 1024);
    const queuedBound = maxQueued;
    assert.ok(s.messagesSent + s.droppedOutbound.queueFull >= i - Math.ceil(queuedBound / (64 * 1024)));
    assert.ok(s.bytesSent < offeredBytes, 'everything was written: the peer was not blocked');
    for (const s of stalled) s.destroy();
    await stopNode(a);
    await new Promise<void>((r) => sink.close(() => r()));
    rawServers.delete(sink);
  });

  test('fuzz: random byte streams never crash the node nor deliver anything', async () => {
    const [a, b] = (await cluster('a', 'b')) as [TestNode, TestNode];
    const ca = codecFor('a');
    const valid = ca.encodeFrame('b', [hb('a', 'b', 9)]);
    const streamArb = fc.oneof(
      // pure noise
      fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 4 }),
      // a plausible small length prefix followed by noise
      fc.tuple(fc.integer({ min: 0, max: 400 }), fc.uint8Array({ maxLength: 400 })).map(([n, rest]) => {
        const p = Buffer.alloc(4);
        p.writeUInt32BE(n, 0);
        return [p, rest];
      }),
      // a real header (prefix, version, ids) with a corrupted tail
      fc
        .tuple(fc.integer({ min: 20, max: valid.length - 1 }), fc.uint8Array({ minLength: 1, maxLength: 64 }))
        .map(([cut, rest]) => [valid.subarray(0, cut), rest]),
    );
    await fc.assert(
      fc.asyncProperty(streamArb, async (chunks) => {
        await rawExchange(b.t.port, chunks);
      }),
      { seed: SEED, numRuns: 60 },
    );
    assert.equal(b.got.length, 0);
    assert.equal(b.t.stats().messagesReceived, 0);
    await assertStillServes(a, b);
    await Promise.all([stopNode(a), stopNode(b)]);
  });

  test('fuzz: single-byte mutations of valid frames on the wire are never delivered', async () => {
    const [a, b] = (await cluster('a', 'b')) as [TestNode, TestNode];
    const ca = codecFor('a');
    await fc.assert(
      fc.asyncProperty(fc.array(abArb, { minLength: 1, maxLength: 3 }), fc.nat(), fc.integer({ min: 1, max: 255 }), async (msgs, pos, xor) => {
        const frame = ca.encodeFrame('b', msgs);
        const i = pos % frame.length;
        frame[i] = frame[i]! ^ xor;
        await rawExchange(b.t.port, [frame]);
      }),
      { seed: SEED, numRuns: 40 },
    );
    assert.equal(b.got.length, 0);
    await assertStillServes(a, b);
    await Promise.all([stopNode(a), stopNode(b)]);
  });

  test('setPeers: removed peers are dropped, new ones reached', async () => {
    const [a, b, c] = (await cluster('a', 'b', 'c')) as [TestNode, TestNode, TestNode];
    a.t.send([hb('a', 'b', 1), hb('a', 'c', 1)]);
    await waitFor('both', () => b.got.length === 1 && c.got.length === 1);
    a.t.setPeers(new Map([['c', addr(c)]]));
    a.t.send([hb('a', 'b', 2), hb('a', 'c', 2)]);
    await waitFor('c', () => c.got.length === 2);
    assert.equal(a.t.stats().droppedOutbound.unknownPeer, 1);
    // b no longer accepts a once a is removed from b's peers.
    b.t.setPeers(new Map([['c', addr(c)]]));
    a.t.setPeers(new Map([['b', addr(b)]]));
    a.t.send([hb('a', 'b', 3)]);
    await waitFor('unknownNode at b', () => b.t.stats().droppedInbound.unknownNode === 1);
    assert.equal(b.got.length, 1);
    await Promise.all([stopNode(a), stopNode(b), stopNode(c)]);
  });

  // Partition tests cut a node off by its address with iptables; that only works if
  // its outgoing connections carry that address. All of 127.0.0.0/8 is on lo, and
  // left alone the kernel would pick 127.0.0.1 as the source for every node.
  test('outgoing connections leave from the listen address, not the one the kernel would pick', async () => {
    const seen: string[] = [];
    const sink = net.createServer((s) => {
      seen.push(s.remoteAddress ?? '');
      s.resume();
    });
    rawServers.add(sink);
    await new Promise<void>((r) => sink.listen(0, HOST, () => r()));
    const sinkAddr = { host: HOST, port: (sink.address() as net.AddressInfo).port };
    const bound = await startNode('a', { listen: { host: '127.0.0.5', port: 0 } });
    assert.equal(bound.t.sourceAddress, '127.0.0.5');
    bound.t.setPeers(new Map([['s', sinkAddr]]));
    bound.t.send([hb('a', 's', 1)]);
    await waitFor('a connection from a', () => seen.length === 1);
    assert.equal(seen[0], '127.0.0.5');
    // A wildcard listener names no address: the kernel chooses (127.0.0.1 here).
    const wild = await startNode('w', { listen: { host: '0.0.0.0', port: 0 } });
    assert.equal(wild.t.sourceAddress, undefined);
    wild.t.setPeers(new Map([['s', sinkAddr]]));
    wild.t.send([hb('w', 's', 1)]);
    await waitFor('a connection from w', () => seen.length === 2);
    assert.equal(seen[1], '127.0.0.1');
    await Promise.all([stopNode(bound), stopNode(wild)]);
    await new Promise<void>((r) => sink.close(() => r()));
    rawServers.delete(sink);
  });
});

describe('source address', () => {
  test('an IP literal binds; wildcards and host names leave it to the kernel', () => {
    assert.equal(sourceAddressFor('127.0.0.11'), '127.0.0.11');
    assert.equal(sourceAddressFor('::1'), '::1');
    assert.equal(sourceAddressFor('[fd00::5]'), 'fd00::5');
    for (const h of ['0.0.0.0', '::', '0:0:0:0:0:0:0:0', '[::]', 'localhost', 'db-1.internal']) assert.equal(sourceAddressFor(h), undefined, h);
  });

  test('a peer of the other family is dialled unbound; a named peer is resolved in the source family', () => {
    assert.deepEqual(sourceBinding('127.0.0.11', '127.0.0.12'), { localAddress: '127.0.0.11', family: 4 });
    assert.deepEqual(sourceBinding('127.0.0.11', 'localhost'), { localAddress: '127.0.0.11', family: 4 });
    assert.deepEqual(sourceBinding('::1', '[::1]'), { localAddress: '::1', family: 6 });
    assert.equal(sourceBinding('127.0.0.11', '::1'), undefined);
    assert.equal(sourceBinding('::1', '10.0.0.1'), undefined);
    assert.equal(sourceBinding(undefined, '10.0.0.1'), undefined);
    assert.throws(() => sourceBinding('localhost', '10.0.0.1'), /not an IP literal/);
  });
});
