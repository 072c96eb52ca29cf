// Fuzzing the proxy's client side (docs/proxy.md, Protocol robustness): random
// and mutated message streams, split at random points, sent by authenticated
// and unauthenticated clients. Properties:
// - the proxy never crashes (an exception would fail this file) and still serves
//   a well-behaved client afterwards;
// - the server behind it never receives a malformed message: a fake backend
//   checks every message with its own validator (written apart from
//   src/proxy/protocol/frontend.ts on purpose) and answers like Postgres,
//   errors included (then it skips to Sync, as Postgres does).
// Seeds are printed by fast-check on failure and replay exactly.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ProxyServer } from '../src/proxy/server.js';
import { StaticRouter } from '../src/proxy/router.js';
import { scramServerExchange } from '../src/proxy/scram-server.js';
import { connect, FakeBackend, feed, identity, login, msg, Reader, split, startup } from './helpers/wire.js';

// ---------------------------------------------------------------------------
// Generators

const name = fc.oneof(
  fc.constant(''),
  fc.constantFrom('s1', 's2', 'p'),
  fc.string({ maxLength: 6 }).filter((x) => !x.includes('\0')),
);
const text = fc.string({ maxLength: 40 }).filter((x) => !x.includes('\0'));
const cstr = (s: string) => Buffer.from(s + '\0');
const i16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
};
const i32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};

const validMessage: fc.Arbitrary<Buffer> = fc.oneof(
  text.map((q) => msg('Q', cstr(q))),
  fc
    .tuple(name, text, fc.array(fc.integer({ min: 0, max: 5000 }), { maxLength: 3 }))
    .map(([n, q, t]) => msg('P', Buffer.concat([cstr(n), cstr(q), i16(t.length), ...t.map(i32)]))),
  fc
    .tuple(
      name,
      name,
      fc.array(fc.constantFrom(0, 1), { maxLength: 2 }),
      fc.array(fc.option(fc.uint8Array({ maxLength: 8 })), { maxLength: 3 }),
      fc.array(fc.constantFrom(0, 1), { maxLength: 2 }),
    )
    .map(([portal, stmt, pf, params, rf]) =>
      msg(
        'B',
        Buffer.concat([
          cstr(portal),
          cstr(stmt),
          i16(pf.length),
          ...pf.map(i16),
          i16(params.length),
          ...params.map((v) => (v === null ? i32(-1) : Buffer.concat([i32(v.length), Buffer.from(v)]))),
          i16(rf.length),
          ...rf.map(i16),
        ]),
      ),
    ),
  fc.tuple(fc.constantFrom('S', 'P'), name).map(([k, n]) => msg('D', Buffer.concat([Buffer.from(k), cstr(n)]))),
  fc.tuple(fc.constantFrom('S', 'P'), name).map(([k, n]) => msg('C', Buffer.concat([Buffer.from(k), cstr(n)]))),
  fc.tuple(name, fc.integer({ min: 0, max: 100 })).map(([n, rows]) => msg('E', Buffer.concat([cstr(n), i32(rows)]))),
  fc.constant(msg('S')),
  fc.constant(msg('S')),
  fc.constant(msg('H')),
  fc.uint8Array({ maxLength: 16 }).map((d) => msg('d', Buffer.from(d))),
  fc.constant(msg('c')),
  text.map((m) => msg('f', cstr(m))),
  fc
    .tuple(fc.integer({ min: 1, max: 5000 }), fc.array(fc.option(fc.uint8Array({ maxLength: 4 })), { maxLength: 2 }))
    .map(([oid, args]) =>
      msg(
        'F',
        Buffer.concat([
          i32(oid),
          i16(0),
          i16(args.length),
          ...args.map((v) => (v === null ? i32(-1) : Buffer.concat([i32(v.length), Buffer.from(v)]))),
          i16(0),
        ]),
      ),
    ),
);

/** A valid message damaged in one of the ways a broken or hostile client would. */
const mutated: fc.Arbitrary<Buffer> = fc
  .tuple(
    validMessage,
    fc.nat(),
    fc.integer({ min: 0, max: 255 }),
    fc.integer({ min: -10, max: 10 }),
    fc.constantFrom('flip', 'truncate', 'length', 'type', 'insert'),
  )
  .map(([m, at, byte, delta, how]) => {
    const b = Buffer.from(m);
    const i = at % b.length;
    switch (how) {
      case 'flip':
        b[i] = byte;
        return b;
      case 'truncate':
        return b.subarray(0, i);
      case 'length':
        b.writeInt32BE(b.readInt32BE(1) + delta, 1);
        return b;
      case 'type':
        b[0] = byte;
        return b;
      default:
        return Buffer.concat([b.subarray(0, i), Buffer.from([byte]), b.subarray(i)]);
    }
  });

const stream = fc.array(
  fc.oneof(
    { weight: 6, arbitrary: validMessage },
    { weight: 2, arbitrary: mutated },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 24 }).map((a) => Buffer.from(a)) },
  ),
  {
    minLength: 1,
    maxLength: 25,
  },
);

// ---------------------------------------------------------------------------

describe('proxy fuzz: random and mutated client streams', { timeout: 180_000 }, () => {
  let backend: FakeBackend;
  let proxy: ProxyServer;
  let port = 0;
  /** Errors the proxy logged: a caught exception in a session is a bug even if the daemon survives it. */
  const internalErrors: string[] = [];

  before(async () => {
    backend = new FakeBackend();
    await backend.listen();
    proxy = new ProxyServer({
      host: '127.0.0.1',
      port: 0,
      pool: {
        mode: 'transaction',
        defaultPoolSize: 4,
        maxClientConnections: 100,
        queueTimeoutMs: 5_000,
        serverIdleTimeoutMs: 60_000,
        holdTimeoutMs: 1_000,
        maxMessageBytes: 1024 * 1024,
      },
      resolveIdentity: identity,
      scram: (v) => scramServerExchange(v),
      credentials: (role) => ({ user: role, password: 'unused' }),
      router: new StaticRouter({ node: 'fake', host: '127.0.0.1', port: backend.port, generation: 1 }),
      log: (l) => {
        if (l.level === 'error') internalErrors.push(`${l.msg}: ${String(l['error'])}`);
      },
    });
    port = (await proxy.listen()).port;
  });
  after(async () => {
    await proxy?.close();
    await backend?.close();
  });

  async function healthy(): Promise<void> {
    const { s, r } = await login(port);
    s.write(msg('Q', cstr('SELECT 1')));
    for (;;) {
      const m = await r.next();
      assert.ok(m, 'a well-behaved client still gets answers');
      if (m.type === 'Z') break;
    }
    s.destroy();
  }

  it('authenticated clients: never a malformed message to the server, never a crash', async () => {
    await fc.assert(
      fc.asyncProperty(stream, fc.array(fc.nat(), { maxLength: 6 }), async (msgs, cuts) => {
        const { s, r } = await login(port);
        await feed(s, r, split(Buffer.concat(msgs), cuts));
        assert.deepEqual(backend.violations, []);
        assert.deepEqual(internalErrors, []);
      }),
      { numRuns: 250 },
    );
    await healthy();
    assert.ok(backend.messages > 200, `the backend saw traffic (${backend.messages} messages)`);
    assert.ok(proxy.stats().counters.protocolErrors > 0, 'some streams were refused');
  });

  it('unauthenticated clients: random startup packets and SASL messages', async () => {
    const startupish = fc.oneof(
      fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
      fc
        .dictionary(
          fc.string({ maxLength: 8 }).filter((x) => !x.includes('\0') && x !== ''),
          text,
          { maxKeys: 4 },
        )
        .map((p) => startup(p)),
      fc.tuple(fc.integer({ min: -5, max: 20_000 }), fc.integer()).map(([len, code]) => Buffer.concat([i32(len), i32(code)])),
      fc.constant(Buffer.concat([i32(8), i32(80877103)])),
      fc.constant(Buffer.concat([i32(8), i32(80877104)])),
      fc.constant(Buffer.concat([i32(16), i32(80877102), i32(1), i32(2)])),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(startupish, { minLength: 1, maxLength: 3 }),
        fc.array(fc.oneof(validMessage, mutated), { maxLength: 3 }),
        fc.array(fc.nat(), { maxLength: 4 }),
        async (pre, post, cuts) => {
          const s = await connect(port);
          const r = new Reader(s);
          await feed(s, r, split(Buffer.concat([...pre, ...post]), cuts));
          assert.deepEqual(backend.violations, []);
          assert.deepEqual(internalErrors, []);
        },
      ),
      { numRuns: 200 },
    );
    await healthy();
  });
});
