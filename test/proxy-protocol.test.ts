// The proxy's protocol edges (docs/proxy.md), against a fake backend so they run
// in milliseconds: SSLRequest and GSSENCRequest, TLS (offered, required),
// protocol version negotiation, refused messages (unknown type, oversize,
// malformed), limits, the doomed SCRAM exchange of an unknown user, cancel keys,
// and the memory an idle client costs.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type net from 'node:net';
import tls from 'node:tls';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import pg from 'pg';
import { ProxyServer, type ProxyServerOptions } from '../src/proxy/server.js';
import { StaticRouter } from '../src/proxy/router.js';
import { mockScramVerifier, scramServerExchange } from '../src/proxy/scram-server.js';
import { loadProxyTls } from '../src/proxy/tls.js';
import type { ClaimedIdentity, ProxyRefusal, StartupParams } from '../src/proxy/types.js';
import { run } from './helpers/proxy.js';
import { authenticate, connect, FakeBackend, identity, login, msg, PASSWORD, Reader, startup } from './helpers/wire.js';

function i32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}

/** Fields of an ErrorResponse body. */
function fields(body: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let at = 0;
  while (at < body.length && body[at] !== 0) {
    const z = body.indexOf(0, at + 1);
    out[String.fromCharCode(body[at]!)] = body.toString('utf8', at + 1, z);
    at = z + 1;
  }
  return out;
}

async function readByte(s: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    s.once('data', (c: Buffer) => resolve(c.toString('latin1', 0, 1)));
    s.once('error', reject);
  });
}

/** The next ErrorResponse (skipping anything else), then the connection must close. */
async function expectError(r: Reader): Promise<Record<string, string>> {
  for (;;) {
    const m = await r.next(3_000);
    assert.ok(m, 'an ErrorResponse before the connection closed');
    if (m.type === 'E') return fields(m.body);
  }
}

async function closed(r: Reader): Promise<void> {
  for (let i = 0; i < 100 && !r.closed; i++) await r.next(30);
  assert.ok(r.closed, 'the proxy closed the connection');
}

describe('proxy protocol edges', { timeout: 120_000 }, () => {
  let backend: FakeBackend;
  const proxies: ProxyServer[] = [];
  let dir: string;

  before(async () => {
    backend = new FakeBackend();
    backend.errorPct = 0;
    await backend.listen();
    dir = mkdtempSync(join(tmpdir(), 'ogel-proxy-tls-'));
  });
  after(async () => {
    for (const p of proxies) await p.close();
    await backend.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(o: Partial<ProxyServerOptions> = {}, pool: Partial<ProxyServerOptions['pool']> = {}): Promise<number> {
    const p = new ProxyServer({
      host: '127.0.0.1',
      port: 0,
      pool: {
        mode: 'transaction',
        defaultPoolSize: 2,
        maxClientConnections: 100,
        queueTimeoutMs: 5_000,
        serverIdleTimeoutMs: 60_000,
        holdTimeoutMs: 1_000,
        maxMessageBytes: 100_000,
        ...pool,
      },
      resolveIdentity: identity,
      scram: (v) => scramServerExchange(v),
      credentials: (role) => ({ user: role, password: 'unused' }),
      router: new StaticRouter({ node: 'fake', host: '127.0.0.1', port: backend.port, generation: 1 }),
      ...o,
    });
    proxies.push(p);
    return (await p.listen()).port;
  }

  it("SSLRequest is answered 'N' when TLS is off, GSSENCRequest always; the startup goes on in plaintext", async () => {
    const port = await start();
    const s = await connect(port);
    s.write(Buffer.concat([i32(8), i32(80877104)]));
    assert.equal(await readByte(s), 'N');
    s.write(Buffer.concat([i32(8), i32(80877103)]));
    assert.equal(await readByte(s), 'N');
    const r = new Reader(s);
    s.write(startup({ user: 'app', database: 'app' }));
    await authenticate(s, r);
    s.destroy();
  });

  it('TLS: SSLRequest answered with a handshake (generated certificate); node-postgres works over it; SNI reaches identity', async () => {
    const context = await loadProxyTls({ mode: 'on' }, dir, () => {});
    let sniSeen: string | undefined;
    const port = await start({
      tls: { mode: 'required', context },
      resolveIdentity: (params: StartupParams, sni: string | undefined) => {
        sniSeen = sni;
        return identity(params);
      },
    });
    const c = new pg.Client({
      host: '127.0.0.1',
      port,
      user: 'app',
      database: 'app',
      password: PASSWORD,
      ssl: { rejectUnauthorized: false, servername: 'app.localhost' },
    });
    await c.connect();
    await c.query('SELECT 1');
    await c.end();
    assert.equal(sniSeen, 'app.localhost');
    // Required: a plaintext startup is refused.
    const s = await connect(port);
    const r = new Reader(s);
    s.write(startup({ user: 'app', database: 'app' }));
    const e = await expectError(r);
    assert.equal(e['C'], '28000');
    assert.match(e['M']!, /requires TLS/);
    await closed(r);
    // Bytes sent after SSLRequest before the handshake (a possible injection) are refused.
    const s2 = await connect(port);
    const r2 = new Reader(s2);
    s2.write(Buffer.concat([i32(8), i32(80877103), startup({ user: 'app' })]));
    assert.equal((await expectError(r2))['M'], 'received unencrypted data after SSLRequest');
    await closed(r2);
    // A second SSLRequest inside TLS is a protocol violation.
    const raw = await connect(port);
    raw.write(Buffer.concat([i32(8), i32(80877103)]));
    assert.equal(await readByte(raw), 'S');
    const t = tls.connect({ socket: raw, rejectUnauthorized: false });
    await new Promise<void>((res) => t.once('secureConnect', () => res()));
    const rt = new Reader(t as unknown as net.Socket);
    t.write(Buffer.concat([i32(8), i32(80877103)]));
    assert.equal((await expectError(rt))['C'], '08P01');
  });

  it('TLS: SCRAM-SHA-256-PLUS is offered and binds to the certificate: node-postgres with channel binding, psql channel_binding=require', async () => {
    const context = await loadProxyTls({ mode: 'on' }, dir, () => {});
    const port = await start({ tls: { mode: 'on', context } });
    const c = new pg.Client({
      host: '127.0.0.1',
      port,
      user: 'app',
      database: 'app',
      password: PASSWORD,
      ssl: { rejectUnauthorized: false },
      enableChannelBinding: true,
    } as pg.ClientConfig);
    c.on('error', () => {});
    await c.connect(); // the fake backend answers queries, the login is what counts here
    await c.query('SELECT 1');
    await c.end();
    // libpq: require binding; over plaintext the same requirement fails, since -PLUS needs TLS.
    const env = { PGPASSWORD: PASSWORD };
    const bound = await run('psql', [`host=127.0.0.1 port=${port} user=app dbname=app sslmode=require channel_binding=require`, '-XAtc', 'SELECT 1'], {
      env,
      timeoutMs: 30_000,
    });
    assert.equal(bound.code, 0, bound.stderr);
    const plain = await run('psql', [`host=127.0.0.1 port=${port} user=app dbname=app sslmode=disable channel_binding=require`, '-XAtc', 'SELECT 1'], {
      env,
      timeoutMs: 30_000,
    });
    assert.notEqual(plain.code, 0);
    assert.match(plain.stderr, /channel binding/i);
  });

  it('protocol 3.2 and unknown _pq_ options: NegotiateProtocolVersion (3.0, the options named), then the login goes on', async () => {
    const port = await start();
    const s = await connect(port);
    const r = new Reader(s);
    const params = Buffer.from('user\0app\0database\0app\0_pq_.frobnicate\0on\0\0');
    s.write(Buffer.concat([i32(params.length + 8), i32((3 << 16) | 2), params]));
    const v = await r.next();
    assert.equal(v?.type, 'v');
    assert.equal(v.body.readInt32BE(0), 0, 'newest minor version: 0');
    assert.equal(v.body.readInt32BE(4), 1);
    assert.equal(v.body.toString('utf8', 8, v.body.length - 1), '_pq_.frobnicate');
    await authenticate(s, r);
    s.destroy();
  });

  it('protocol 2.0 is refused with 0A000', async () => {
    const port = await start();
    const s = await connect(port);
    const r = new Reader(s);
    s.write(Buffer.concat([i32(8 + 9), i32(2 << 16), Buffer.from('user\0app\0\0')]));
    const e = await expectError(r);
    assert.equal(e['C'], '0A000');
    assert.match(e['M']!, /unsupported frontend protocol 2\.0/);
    await closed(r);
  });

  it('an unknown message type, a malformed message or an oversized one: ErrorResponse 08P01, connection closed, nothing forwarded', async () => {
    const port = await start();
    const before = backend.messages;
    for (const bad of [
      msg('z', Buffer.from('x')),
      msg('Q', Buffer.from('SELECT 1')) /* no NUL */,
      msg('S', Buffer.from('x')),
      Buffer.concat([Buffer.from('Q'), i32(200_000)]),
    ]) {
      const { s, r } = await login(port);
      s.write(bad);
      const e = await expectError(r);
      assert.equal(e['C'], '08P01');
      assert.equal(e['S'], 'FATAL');
      assert.match(e['M']!, /invalid message from the client/);
      await closed(r);
    }
    assert.equal(backend.messages, before, 'the backend saw none of them');
    assert.deepEqual(backend.violations, []);
  });

  it('a startup packet over 10000 bytes is refused before it is read whole', async () => {
    const port = await start();
    const s = await connect(port);
    const r = new Reader(s);
    s.write(Buffer.concat([i32(10_001), i32(3 << 16)]));
    const e = await expectError(r);
    assert.equal(e['C'], '08P01');
    assert.match(e['M']!, /exceeds the limit of 10000 bytes/);
  });

  it('client limits: maxClientConnections per proxy and a tenant limit, with 53300', async () => {
    const port = await start({}, { maxClientConnections: 2 });
    const a = await login(port);
    const b = await login(port);
    const s = await connect(port);
    const r = new Reader(s);
    assert.equal((await expectError(r))['C'], '53300');
    a.s.destroy();
    b.s.destroy();
    const port2 = await start({
      resolveIdentity: (p: StartupParams): ClaimedIdentity | ProxyRefusal => ({ ...(identity(p) as ClaimedIdentity), maxClientConnections: 1 }),
    });
    const one = await login(port2);
    await assert.rejects(login(port2), /53300.*too many connections for this database/s);
    one.s.destroy();
    await new Promise((res) => setTimeout(res, 50));
    (await login(port2)).s.destroy();
  });

  it('an unknown user runs the whole SCRAM exchange and gets the 28P01 of a wrong password', async () => {
    const port = await start({
      resolveIdentity: (p: StartupParams) =>
        p.get('user') === 'app' ? identity(p) : { code: '28P01', message: `password authentication failed for user "${p.get('user')}"` },
      doomedScram: (user) => scramServerExchange(mockScramVerifier(user, 'secret-for-mock'), { user, doomed: true }),
    });
    await assert.rejects(login(port, { user: 'nobody', database: 'app' }), /28P01.*password authentication failed for user "nobody"/s);
    await assert.rejects(login(port, { user: 'app', database: 'app' }, 'wrong'), /28P01.*password authentication failed/s);
  });

  it('a CancelRequest with a wrong secret is ignored; the connection closes without an answer', async () => {
    const port = await start();
    const { s } = await login(port);
    const c = await connect(port);
    const rc = new Reader(c);
    c.write(Buffer.concat([i32(16), i32(80877102), i32(1), i32(12345)]));
    await closed(rc);
    s.destroy();
  });

  it('an idle authenticated client costs well under 10 KiB of the proxy’s memory', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const port = await start({}, { maxClientConnections: 1_000 });
    (await login(port)).s.destroy(); // warm up: the pool's server connection, code paths
    gc();
    const used = () => {
      const m = process.memoryUsage();
      return m.heapUsed + m.arrayBuffers;
    };
    const n = 300;
    const before = used();
    const clients: net.Socket[] = [];
    for (let i = 0; i < n; i++) clients.push((await login(port)).s);
    gc();
    // Both ends live in this process: the client sockets and Readers count too, so this is an upper bound.
    const perClientBytes = (used() - before) / n;
    for (const c of clients) c.destroy();
    process.stderr.write(`memory per idle client (proxy and test client together): ${Math.round(perClientBytes)} bytes\n`);
    assert.ok(perClientBytes < 10 * 1024, `${Math.round(perClientBytes)} bytes per idle client`);
  });
});
