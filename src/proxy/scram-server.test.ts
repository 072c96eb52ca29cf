import assert from 'node:assert/strict';
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { makeScramVerifier } from '../auth/scram.js';
import { checkScramMechanism, mockScramVerifier, scramMechanisms, scramServerExchange } from './scram-server.js';
import { tlsServerEndPoint } from './channel-binding.js';
import { generate } from 'selfsigned';
import { X509Certificate } from 'node:crypto';
import { isRefusal, type ProxyRefusal } from './types.js';

// node-postgres's own client side of SCRAM (what every pg user runs), driven
// directly against our server exchange.
interface PgSaslSession {
  mechanism: string;
  clientNonce: string;
  response: string;
  message: string;
}
interface PgSasl {
  startSession(mechanisms: string[], stream?: unknown): PgSaslSession;
  continueSession(session: PgSaslSession, password: string, serverData: string, stream?: unknown): Promise<void>;
  finalizeSession(session: PgSaslSession, serverData: string): void;
}
const pgSasl = createRequire(import.meta.url)('pg/lib/crypto/sasl.js') as PgSasl;

const ITERATIONS = 4096;
const verifier = makeScramVerifier('correct horse', ITERATIONS);

function ok(x: string | ProxyRefusal): string {
  if (isRefusal(x)) assert.fail(`unexpected refusal ${x.code}: ${x.message}`);
  return x;
}
function refused(x: string | ProxyRefusal, code: string, re?: RegExp): ProxyRefusal {
  if (!isRefusal(x)) assert.fail(`expected a refusal ${code}, got ${JSON.stringify(x)}`);
  assert.equal(x.code, code, x.message);
  if (re) assert.match(x.message, re);
  return x;
}

/** A full pg-client login; returns the server's answer to the final message. */
async function pgLogin(
  password: string,
  opts: { stream?: unknown; user?: string; doomed?: boolean; v?: typeof verifier } = {},
): Promise<string | ProxyRefusal> {
  const server = scramServerExchange(opts.v ?? verifier, { user: opts.user ?? 'alice', doomed: opts.doomed ?? false });
  const session = pgSasl.startSession(scramMechanisms(false), opts.stream);
  assert.equal(session.mechanism, 'SCRAM-SHA-256');
  const serverFirst = ok(server.start(session.response));
  await pgSasl.continueSession(session, password, serverFirst, opts.stream);
  const serverFinal = server.finish(session.response);
  if (!isRefusal(serverFinal)) pgSasl.finalizeSession(session, serverFinal); // throws if the server's signature is wrong
  return serverFinal;
}

describe('SCRAM-SHA-256 server exchange', () => {
  it('logs in node-postgres with the right password, and pg verifies our server signature', async () => {
    const final = await pgLogin('correct horse');
    assert.match(ok(final), /^v=[A-Za-z0-9+/]{43}=$/);
  });

  it("accepts the 'y' GS2 flag (client supports channel binding, server offers none)", async () => {
    // pg sends 'y' when it talks over a stream but we offered no -PLUS mechanism.
    const final = await pgLogin('correct horse', { stream: {} });
    ok(final);
  });

  it('normalizes passwords as SASLprep does (NFKC) on both sides', async () => {
    const v = makeScramVerifier('\u2168pw', ITERATIONS); // ROMAN NUMERAL NINE -> "IX"
    ok(await pgLogin('IXpw', { v }));
  });

  it('refuses a wrong password with 28P01 naming the startup user', async () => {
    const r = refused(await pgLogin('wrong horse', { user: 'alice' }), '28P01');
    assert.equal(r.message, 'password authentication failed for user "alice"');
  });

  it('a doomed exchange (unknown user) looks the same and fails with the same message, even with the right password', async () => {
    const mock = mockScramVerifier('ghost', 'server-secret-0123456789');
    assert.deepEqual(mock, mockScramVerifier('ghost', 'server-secret-0123456789'), 'stable salt across attempts, like a real user');
    assert.notEqual(mock.salt, mockScramVerifier('ghost2', 'server-secret-0123456789').salt);
    const r = refused(await pgLogin('correct horse', { user: 'ghost', doomed: true, v: verifier }), '28P01');
    assert.equal(r.message, 'password authentication failed for user "ghost"');
    const r2 = refused(await pgLogin('whatever', { user: 'ghost', doomed: true, v: mock }), '28P01');
    assert.equal(r2.message, r.message);
  });

  it('the server-first-message carries the client nonce + 18 random bytes, the salt and the iterations', () => {
    const server = scramServerExchange(verifier, { user: 'u', randomBytes: (n) => Buffer.alloc(n, 7) });
    const first = ok(server.start('n,,n=,r=abc'));
    assert.equal(first, `r=abc${Buffer.alloc(18, 7).toString('base64')},s=${verifier.salt},i=${ITERATIONS}`);
  });

  it('verifies a hand-computed RFC 7677 exchange (fixed nonces and salt)', () => {
    const v = makeScramVerifier('pencil', 4096, Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'));
    const server = scramServerExchange(v, { user: 'user', randomBytes: () => Buffer.from('%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0', 'latin1') });
    // Our server nonce is base64 of the random bytes, so compute the proof for what we actually get.
    const first = ok(server.start('n,,n=user,r=rOprNGfwEbeRWgbNEkqO'));
    const nonce = first.slice(2, first.indexOf(','));
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `n=user,r=rOprNGfwEbeRWgbNEkqO,${first},${withoutProof}`;
    const salted = pbkdf2Sync('pencil', Buffer.from(v.salt, 'base64'), v.iterations, 32, 'sha256');
    const clientKey = createHmac('sha256', salted).update('Client Key').digest();
    const sig = createHmac('sha256', Buffer.from(v.storedKey, 'base64')).update(authMessage).digest();
    const proof = Buffer.from(clientKey.map((b, i) => b ^ sig[i]!)).toString('base64');
    const final = ok(server.finish(`${withoutProof},p=${proof}`));
    const serverSig = createHmac('sha256', Buffer.from(v.serverKey, 'base64')).update(authMessage).digest('base64');
    assert.equal(final, `v=${serverSig}`);
  });

  it('refuses mechanisms other than those offered: -PLUS only when the connection can bind', () => {
    assert.equal(checkScramMechanism('SCRAM-SHA-256', false), null);
    assert.equal(checkScramMechanism('SCRAM-SHA-256', true), null);
    assert.equal(checkScramMechanism('SCRAM-SHA-256-PLUS', true), null);
    const plus = checkScramMechanism('SCRAM-SHA-256-PLUS', false);
    assert.equal(plus?.code, '08P01');
    assert.match(plus!.hint ?? '', /only over TLS/);
    assert.equal(checkScramMechanism('PLAIN', true)?.code, '08P01');
    assert.deepEqual(scramMechanisms(true), ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256']);
    assert.deepEqual(scramMechanisms(false), ['SCRAM-SHA-256']);
  });

  it("refuses the 'p=' GS2 flag with plain SCRAM-SHA-256, and -PLUS where it was not offered", () => {
    refused(
      scramServerExchange(verifier).start('p=tls-server-end-point,,n=,r=abc'),
      '08P01',
      /without channel binding, but the SCRAM message includes channel binding data/,
    );
    refused(
      scramServerExchange(verifier).start('p=tls-server-end-point,,n=,r=abc', { mechanism: 'SCRAM-SHA-256-PLUS', serverEndPoint: null }),
      '08P01',
      /not offered/,
    );
  });

  it('refuses an authzid and mandatory extensions (unsupported, as Postgres: 0A000)', () => {
    refused(scramServerExchange(verifier).start('n,a=bob,n=,r=abc'), '0A000', /authorization identity/);
    refused(scramServerExchange(verifier).start('n,,m=ext,n=,r=abc'), '0A000', /extension/);
  });

  it('refuses malformed client-first-messages with 08P01', () => {
    const cases: [string, RegExp][] = [
      ['', /empty/],
      ['n', /GS2 header/],
      ['n,', /GS2 header/],
      ['x,,n=,r=abc', /channel-binding flag/],
      ['n,,r=abc', /"n="/],
      ['n,,n=', /"r="/],
      ['n,,n=,r=', /nonce is empty/],
      ['n,,n=,r=a b', /non-printable/],
      ['n,,n=,r=abc,garbage', /malformed attribute/],
      ['n,,n=,r=abc\0', /NUL/],
      [`n,,n=,r=${'a'.repeat(600)}`, /more than 512/],
      [`n,,n=${'u'.repeat(5000)},r=abc`, /more than 2048/],
    ];
    for (const [msg, re] of cases) refused(scramServerExchange(verifier).start(msg), '08P01', re);
  });

  it('refuses malformed client-final-messages with 08P01, and a wrong channel binding or nonce', () => {
    const start = () => {
      const s = scramServerExchange(verifier, { user: 'u' });
      const first = ok(s.start('n,,n=,r=abc'));
      return { s, nonce: first.slice(2, first.indexOf(',')) };
    };
    const proof = Buffer.alloc(32, 1).toString('base64');
    const cases: [(nonce: string) => string, RegExp][] = [
      [() => '', /empty/],
      [(n) => `r=${n},p=${proof}`, /"c="/],
      [(n) => `c=eSws,r=${n},p=${proof}`, /channel binding check failed/], // 'y,,' but the client said 'n'
      [(n) => `c=b!ws,r=${n},p=${proof}`, /not base64/],
      [() => `c=biws,r=abcWRONG,p=${proof}`, /nonce does not match/],
      [(n) => `c=biws,r=${n}`, /proof attribute "p=" is missing/],
      [(n) => `c=biws,r=${n},x=1`, /last attribute must be the proof/],
      [(n) => `c=biws,r=${n},p=${proof},x=1`, /garbage after the proof/],
      [(n) => `c=biws,r=${n},p=${proof},p=${proof}`, /garbage after the proof/],
      [(n) => `c=biws,r=${n},p=AAAA`, /base64 of 32 bytes/],
      [(n) => `c=biws,r=${n},p=${proof.slice(0, -1)}`, /base64 of 32 bytes/],
      [(n) => `c=biws,r=${n},${'x=1,'.repeat(600)}p=${proof}`, /more than 2048/],
    ];
    for (const [make, re] of cases) {
      const { s, nonce } = start();
      refused(s.finish(make(nonce)), '08P01', re);
    }
    // A well-formed final message with extensions and a wrong proof: 28P01, not 08P01.
    const { s, nonce } = start();
    refused(s.finish(`c=biws,r=${nonce},x=ext,p=${proof}`), '28P01');
  });

  it('refuses messages out of order, and any message after the exchange ended', async () => {
    refused(scramServerExchange(verifier).finish('c=biws,r=x,p=x'), '08P01', /before the client-first-message/);
    const s = scramServerExchange(verifier);
    ok(s.start('n,,n=,r=abc'));
    refused(s.start('n,,n=,r=abc'), '08P01', /already started/);
    refused(s.finish('c=biws,r=abc,p=x'), '08P01', /ended/);
    // After a successful login, the exchange cannot be replayed.
    const server = scramServerExchange(verifier, { user: 'alice' });
    const session = pgSasl.startSession(['SCRAM-SHA-256']);
    await pgSasl.continueSession(session, 'correct horse', ok(server.start(session.response)));
    ok(server.finish(session.response));
    refused(server.finish(session.response), '08P01', /ended/);
  });

  it('a malformed verifier fails logins instead of throwing', async () => {
    const bad = { ...verifier, storedKey: 'short' };
    refused(await pgLogin('correct horse', { v: bad }), '28P01');
  });

  it('property: random and mutated messages never throw, and give a string or a refusal', () => {
    const valid = 'n,,n=*,r=fyko+d2lbbFgONRv9qkxdawL';
    const mutated = fc
      .tuple(fc.nat(valid.length), fc.nat(valid.length), fc.string({ maxLength: 8 }))
      .map(([a, b, ins]) => valid.slice(0, Math.min(a, b)) + ins + valid.slice(Math.max(a, b)));
    const anyText = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.string({ unit: 'binary', maxLength: 300 }),
      mutated,
      fc.constantFrom('', ',', ',,', 'n,,', 'p=,,', 'y,,n=,r=,'),
    );
    fc.assert(
      fc.property(anyText, anyText, (first, final) => {
        const s = scramServerExchange(verifier, { user: 'u' });
        const a = s.start(first);
        assert.ok(typeof a === 'string' || isRefusal(a));
        if (typeof a === 'string') {
          const nonce = a.slice(2, a.indexOf(','));
          for (const msg of [final, `c=biws,r=${nonce},${final}`]) {
            const s2 = scramServerExchange(verifier, { user: 'u', randomBytes: (n) => Buffer.alloc(n) });
            s2.start(first);
            const b = s2.finish(msg);
            assert.ok(typeof b === 'string' ? b.startsWith('v=') : isRefusal(b));
            if (typeof b === 'string') assert.fail('random garbage must not authenticate');
          }
        }
        const c = s.finish(final);
        assert.ok(isRefusal(c));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('SCRAM-SHA-256-PLUS (tls-server-end-point)', () => {
  type CertSignatures = { signatureAlgorithmHashFromCertificate(der: Buffer): string };
  const pgCert = createRequire(import.meta.url)('pg/lib/crypto/cert-signatures.js') as CertSignatures;
  const der = (pem: string) => Buffer.from(new X509Certificate(pem).raw);
  const certs = new Map<string, Buffer>();
  const cert = async (keyType: 'ec' | 'rsa', algorithm: 'sha256' | 'sha384' | 'sha512' | 'sha1'): Promise<Buffer> => {
    const k = `${keyType}-${algorithm}`;
    if (!certs.has(k))
      certs.set(
        k,
        der(
          (await generate([{ name: 'commonName', value: 'db' }], { keyType, algorithm, ...(keyType === 'ec' ? { curve: 'P-256' } : { keySize: 2048 }) })).cert,
        ),
      );
    return certs.get(k)!;
  };

  it("hashes the certificate with its signature's hash (SHA-1 -> SHA-256), as node-postgres and libpq do", async () => {
    for (const [keyType, algorithm] of [
      ['ec', 'sha256'],
      ['ec', 'sha384'],
      ['rsa', 'sha256'],
      ['rsa', 'sha512'],
      ['rsa', 'sha1'],
    ] as const) {
      const d = await cert(keyType, algorithm);
      const theirs = pgCert.signatureAlgorithmHashFromCertificate(d).toLowerCase().replace('-', '');
      const expected = createHash(theirs === 'sha1' || theirs === 'md5' ? 'sha256' : theirs)
        .update(d)
        .digest();
      assert.deepEqual(tlsServerEndPoint(d), expected, `${keyType} ${algorithm}`);
    }
    assert.equal(tlsServerEndPoint(Buffer.from('not a certificate')), null);
    assert.equal(tlsServerEndPoint(Buffer.alloc(0)), null);
  });

  async function plusLogin(password: string, serverCert: Buffer, clientSees: Buffer): Promise<string | ProxyRefusal> {
    const server = scramServerExchange(verifier, { user: 'alice' });
    const stream = { getPeerCertificate: () => ({ raw: clientSees }) };
    const session = pgSasl.startSession(scramMechanisms(true), stream);
    assert.equal(session.mechanism, 'SCRAM-SHA-256-PLUS');
    const negotiation = { mechanism: session.mechanism, serverEndPoint: tlsServerEndPoint(serverCert) };
    const serverFirst = server.start(session.response, negotiation);
    if (isRefusal(serverFirst)) return serverFirst;
    await pgSasl.continueSession(session, password, serverFirst, stream);
    const serverFinal = server.finish(session.response);
    if (!isRefusal(serverFinal)) pgSasl.finalizeSession(session, serverFinal);
    return serverFinal;
  }

  it('logs node-postgres in with channel binding to the certificate it saw', async () => {
    const c = await cert('ec', 'sha256');
    assert.match(ok(await plusLogin('correct horse', c, c)), /^v=/);
    refused(await plusLogin('wrong horse', c, c), '28P01');
  });

  it('refuses a client that saw another certificate (a man in the middle), even with the right password', async () => {
    refused(await plusLogin('correct horse', await cert('ec', 'sha256'), await cert('rsa', 'sha256')), '08P01', /channel binding check failed/);
  });

  it("refuses 'y' (client could bind, thinks the server cannot) when -PLUS was offered: a downgrade", () => {
    const endPoint = Buffer.alloc(32, 7);
    refused(scramServerExchange(verifier).start('y,,n=,r=abc', { mechanism: 'SCRAM-SHA-256', serverEndPoint: endPoint }), '08P01', /negotiation error/);
    ok(scramServerExchange(verifier).start('y,,n=,r=abc', { mechanism: 'SCRAM-SHA-256', serverEndPoint: null }));
    refused(
      scramServerExchange(verifier).start('n,,n=,r=abc', { mechanism: 'SCRAM-SHA-256-PLUS', serverEndPoint: endPoint }),
      '08P01',
      /does not include channel binding data/,
    );
    refused(
      scramServerExchange(verifier).start('p=tls-unique,,n=,r=abc', { mechanism: 'SCRAM-SHA-256-PLUS', serverEndPoint: endPoint }),
      '08P01',
      /unsupported SCRAM channel-binding type "tls-unique"/,
    );
  });
});
