import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import type { Logger, LogLine } from '../log.js';
import { loadProxyTls, ProxyTlsError } from './tls.js';

describe('proxy TLS material', () => {
  let dir: string;
  const lines: LogLine[] = [];
  const log: Logger = (l) => void lines.push(l);
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ogel-proxy-tls-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('mode off: no TLS (and a warning when files are configured anyway)', async () => {
    assert.equal(await loadProxyTls({ mode: 'off' }, dir, log), undefined);
    assert.equal(await loadProxyTls({ mode: 'off', certFile: '/x', keyFile: '/y' }, dir, log), undefined);
    assert.ok(lines.some((l) => l.level === 'warn' && /mode is off/.test(l.msg)));
  });

  it('generates a self-signed certificate once (key 0600, SANs for the proxy host), reuses it on restart, and it serves TLS', async () => {
    const data = join(dir, 'gen');
    const first = await loadProxyTls({ mode: 'on' }, data, log, { hosts: ['db.example.com', '127.0.0.11'] });
    assert.ok(first);
    const certPem = await readFile(join(data, 'proxy-tls', 'cert.pem'), 'utf8');
    assert.equal(first.cert, certPem);
    assert.equal((await stat(join(data, 'proxy-tls', 'key.pem'))).mode & 0o777, 0o600);
    assert.equal((await stat(join(data, 'proxy-tls'))).mode & 0o777, 0o700);
    const x = new X509Certificate(certPem);
    for (const h of ['db.example.com', 'localhost']) assert.equal(x.checkHost(h), h);
    for (const ip of ['127.0.0.1', '127.0.0.11', '::1']) assert.ok(x.checkIP(ip), ip);
    assert.ok(new Date(x.validTo).getTime() > Date.now() + 365 * 24 * 3600 * 1000);

    const again = await loadProxyTls({ mode: 'required' }, data, log, { hosts: ['db.example.com'] });
    assert.equal(again?.cert, first.cert, 'reused, not regenerated');
    assert.ok(lines.some((l) => /reusing/.test(l.msg)));

    // A real handshake with it, as a client verifying against it would do.
    const server = tls.createServer(first, (s) => s.end('hello'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as { port: number }).port;
      const got = await new Promise<string>((resolve, reject) => {
        const c = tls.connect({ host: '127.0.0.1', port, servername: 'db.example.com', ca: certPem }, () => {
          let s = '';
          c.on('data', (d: Buffer) => (s += d.toString()));
          c.on('end', () => resolve(s));
        });
        c.on('error', reject);
      });
      assert.equal(got, 'hello');
    } finally {
      server.close();
    }
  });

  it('regenerates when a host is added, when it nears expiry, or when the files are damaged', async () => {
    const data = join(dir, 'regen');
    const a = await loadProxyTls({ mode: 'on' }, data, log, { hosts: ['a.example.com'] });
    const b = await loadProxyTls({ mode: 'on' }, data, log, { hosts: ['b.example.com'] });
    assert.notEqual(b?.cert, a?.cert);
    assert.ok(lines.some((l) => /does not name b\.example\.com/.test(l.msg)));
    const later = new Date(Date.now() + 3649 * 24 * 3600 * 1000);
    const c = await loadProxyTls({ mode: 'on' }, data, log, { hosts: ['b.example.com'], now: () => later });
    assert.notEqual(c?.cert, b?.cert);
    assert.ok(lines.some((l) => /expires/.test(l.msg)));
    await writeFile(join(data, 'proxy-tls', 'key.pem'), 'garbage');
    const d = await loadProxyTls({ mode: 'on' }, data, log, { hosts: ['b.example.com'] });
    assert.notEqual(d?.cert, c?.cert);
    assert.ok(lines.some((l) => /does not load/.test(l.msg)));
  });

  it('uses configured certificate and key files', async () => {
    const gen = await loadProxyTls({ mode: 'on' }, join(dir, 'src'), log);
    const certFile = join(dir, 'my-cert.pem');
    const keyFile = join(dir, 'my-key.pem');
    await writeFile(certFile, gen!.cert as string);
    await writeFile(keyFile, gen!.key as string);
    const got = await loadProxyTls({ mode: 'required', certFile, keyFile }, join(dir, 'unused'), log);
    assert.deepEqual(got, { cert: gen!.cert, key: gen!.key });
  });

  it('clear errors naming the field and path: missing, not PEM, not a key, mismatched, half configured', async () => {
    const gen1 = await loadProxyTls({ mode: 'on' }, join(dir, 'e1'), log);
    const gen2 = await loadProxyTls({ mode: 'on' }, join(dir, 'e2'), log, { hosts: ['other.example.com'] });
    const cert1 = join(dir, 'c1.pem');
    const key2 = join(dir, 'k2.pem');
    const junk = join(dir, 'junk.pem');
    const badPem = join(dir, 'bad.pem');
    await writeFile(cert1, gen1!.cert as string);
    await writeFile(key2, gen2!.key as string);
    await writeFile(junk, 'this is not pem');
    await writeFile(badPem, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    const expect = async (t: Parameters<typeof loadProxyTls>[0], re: RegExp) => {
      await assert.rejects(loadProxyTls(t, dir, log), (e: unknown) => {
        assert.ok(e instanceof ProxyTlsError, String(e));
        assert.match(e.message, re);
        return true;
      });
    };
    const missing = join(dir, 'nope.pem');
    await expect({ mode: 'on', certFile: missing, keyFile: key2 }, new RegExp(`^proxy\\.tls\\.certFile: cannot read ${missing}: no such file$`));
    await expect({ mode: 'on', certFile: cert1, keyFile: missing }, /^proxy\.tls\.keyFile: cannot read .*nope\.pem: no such file$/);
    await expect({ mode: 'on', certFile: dir, keyFile: key2 }, /^proxy\.tls\.certFile: cannot read .*: it is a directory$/);
    await expect({ mode: 'on', certFile: junk, keyFile: key2 }, /^proxy\.tls\.certFile: .*junk\.pem is not a PEM file/);
    await expect({ mode: 'on', certFile: badPem, keyFile: key2 }, /^proxy\.tls\.certFile: .*bad\.pem is not a valid PEM certificate/);
    await expect({ mode: 'on', certFile: cert1, keyFile: cert1 }, /^proxy\.tls\.keyFile: .*c1\.pem holds no PEM private key/);
    await expect({ mode: 'on', certFile: cert1, keyFile: key2 }, /^proxy\.tls\.certFile: .*c1\.pem and proxy\.tls\.keyFile: .*k2\.pem do not belong together/);
    await expect({ mode: 'on', certFile: cert1 }, /^proxy\.tls: certFile is set without keyFile/);
  });
});
