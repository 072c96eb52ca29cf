// The proxy's TLS material (docs/proxy.md, tls.ts): the operator's certificate
// and key (proxy.tls.certFile/keyFile), or, when TLS is on without them, a
// self-signed certificate generated once per node into
// <dataDir>/proxy-tls/{cert,key}.pem and reused on restart, so clients that
// pin it (or just use sslmode=require) keep working.
//
// Errors name the config field and the path: a daemon that cannot load its
// certificate must say which file to fix.

import { X509Certificate, createPrivateKey } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { generate } from 'selfsigned';
import type { Config } from '../config/index.js';
import type { Logger } from '../log.js';

export type ProxyTlsConfig = Config['proxy']['tls'];

export const GENERATED_TLS_DIR = 'proxy-tls';
export const GENERATED_CERT_FILE = 'cert.pem';
export const GENERATED_KEY_FILE = 'key.pem';
/** Validity of a generated certificate. Long: nobody can verify a self-signed one anyway, and an expiry would just break clients. */
export const GENERATED_VALIDITY_DAYS = 3650;
/** A generated certificate this close to expiry is replaced at start. */
const RENEW_BEFORE_EXPIRY_MS = 30 * 24 * 3600 * 1000;
/** Larger PEM files are not certificates or keys we should be reading. */
const PEM_BYTES_MAX = 1024 * 1024;

export class ProxyTlsError extends Error {
  override name = 'ProxyTlsError';
}

export interface LoadProxyTlsOptions {
  /** Host names and addresses the generated certificate names (SANs); localhost, 127.0.0.1 and ::1 are always added. */
  hosts?: readonly string[];
  /** Clock, for tests. */
  now?: () => Date;
}

/**
 * The TLS options for the proxy's listener, or undefined when TLS is off.
 * Rejects with a ProxyTlsError naming the field and path when the configured
 * files are unreadable, not PEM, or do not belong together.
 */
export async function loadProxyTls(
  tls: ProxyTlsConfig,
  dataDir: string,
  log: Logger,
  opts: LoadProxyTlsOptions = {},
): Promise<SecureContextOptions | undefined> {
  if (tls.mode === 'off') {
    if (tls.certFile !== undefined)
      log({ level: 'warn', msg: 'proxy.tls.certFile and keyFile are set but proxy.tls.mode is off: TLS is not offered', certFile: tls.certFile });
    return undefined;
  }
  if (tls.certFile !== undefined || tls.keyFile !== undefined) {
    if (tls.certFile === undefined || tls.keyFile === undefined) {
      throw new ProxyTlsError(
        `proxy.tls: ${tls.certFile === undefined ? 'keyFile is set without certFile' : 'certFile is set without keyFile'}; give both, or neither for a self-signed certificate`,
      );
    }
    const cert = await readPem('proxy.tls.certFile', tls.certFile);
    const key = await readPem('proxy.tls.keyFile', tls.keyFile);
    checkPair({ cert, key }, { certField: 'proxy.tls.certFile', certPath: tls.certFile, keyField: 'proxy.tls.keyFile', keyPath: tls.keyFile });
    log({ level: 'info', msg: 'proxy TLS: using the configured certificate', certFile: tls.certFile });
    return { cert, key };
  }
  return generatedTls(dataDir, log, opts);
}

/** The generated certificate of this node: reused when valid and naming every host, else (re)generated. */
async function generatedTls(dataDir: string, log: Logger, opts: LoadProxyTlsOptions): Promise<SecureContextOptions> {
  const now = opts.now ?? (() => new Date());
  const hosts = [
    ...new Set(['localhost', '127.0.0.1', '::1', ...(opts.hosts ?? [])].map((h) => h.replace(/^\[|\]$/g, '').toLowerCase()).filter((h) => h !== '')),
  ];
  const dir = join(dataDir, GENERATED_TLS_DIR);
  const certPath = join(dir, GENERATED_CERT_FILE);
  const keyPath = join(dir, GENERATED_KEY_FILE);

  const existing = await readExisting(certPath, keyPath);
  if (existing !== null) {
    const why = reasonToRegenerate(existing, hosts, now());
    if (why === null) {
      log({ level: 'info', msg: 'proxy TLS: reusing the generated self-signed certificate', certFile: certPath });
      return existing;
    }
    log({ level: 'warn', msg: `proxy TLS: replacing the generated certificate: ${why}`, certFile: certPath });
  }

  const notBeforeDate = new Date(now().getTime() - 60_000); // a little slack for clients whose clocks lag
  const notAfterDate = new Date(notBeforeDate.getTime() + GENERATED_VALIDITY_DAYS * 24 * 3600 * 1000);
  const pems = await generate([{ name: 'commonName', value: hosts.find((h) => h !== 'localhost' && isIP(h) === 0) ?? 'localhost' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: hosts.map((h) => (isIP(h) === 0 ? { type: 2 as const, value: h } : { type: 7 as const, ip: h })) },
    ],
  });
  const material = { cert: pems.cert, key: pems.private };
  checkPair(material, { certField: 'generated certificate', certPath, keyField: 'generated key', keyPath });
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(keyPath, material.key, 0o600);
    await writeFileAtomic(certPath, material.cert, 0o644);
  } catch (e) {
    throw new ProxyTlsError(`proxy TLS: cannot write the generated certificate to ${dir}: ${(e as Error).message}`);
  }
  log({ level: 'info', msg: 'proxy TLS: generated a self-signed certificate', certFile: certPath, hosts });
  return material;
}

async function readExisting(certPath: string, keyPath: string): Promise<{ cert: string; key: string } | null> {
  try {
    return { cert: await readFile(certPath, 'utf8'), key: await readFile(keyPath, 'utf8') };
  } catch {
    return null; // absent (first start) or unreadable: generate a new one
  }
}

function reasonToRegenerate(m: { cert: string; key: string }, hosts: readonly string[], now: Date): string | null {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(m.cert);
    checkPair(m, { certField: 'cert', certPath: '', keyField: 'key', keyPath: '' });
  } catch (e) {
    return `it does not load (${(e as Error).message})`;
  }
  if (new Date(x509.validTo).getTime() - now.getTime() < RENEW_BEFORE_EXPIRY_MS) return `it expires on ${x509.validTo}`;
  const missing = hosts.filter((h) => (isIP(h) === 0 ? x509.checkHost(h) === undefined : x509.checkIP(h) === undefined));
  if (missing.length > 0) return `it does not name ${missing.join(', ')}`;
  return null;
}

async function readPem(field: string, path: string): Promise<string> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (e as Error).message;
    throw new ProxyTlsError(`${field}: cannot read ${path}: ${why}`);
  }
  if (buf.length > PEM_BYTES_MAX) throw new ProxyTlsError(`${field}: ${path} is ${buf.length} bytes, more than a PEM file should be (${PEM_BYTES_MAX})`);
  const text = buf.toString('utf8');
  if (!/-----BEGIN [A-Z0-9 ]+-----/.test(text)) throw new ProxyTlsError(`${field}: ${path} is not a PEM file (no "-----BEGIN ...-----" line)`);
  return text;
}

interface PairNames {
  certField: string;
  certPath: string;
  keyField: string;
  keyPath: string;
}

/** The certificate parses, the key parses, and they belong together (as TLS will need them). */
function checkPair(m: { cert: string; key: string }, n: PairNames): void {
  const at = (field: string, path: string) => (path === '' ? field : `${field}: ${path}`);
  if (!m.cert.includes('-----BEGIN CERTIFICATE-----'))
    throw new ProxyTlsError(`${at(n.certField, n.certPath)} holds no PEM certificate ("-----BEGIN CERTIFICATE-----")`);
  try {
    new X509Certificate(m.cert);
  } catch (e) {
    throw new ProxyTlsError(`${at(n.certField, n.certPath)} is not a valid PEM certificate: ${(e as Error).message}`);
  }
  if (!/-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/.test(m.key)) {
    const hint = m.key.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----') ? ' (it is encrypted; give an unencrypted key)' : ' ("-----BEGIN PRIVATE KEY-----")';
    throw new ProxyTlsError(`${at(n.keyField, n.keyPath)} holds no PEM private key${hint}`);
  }
  try {
    createPrivateKey(m.key);
  } catch (e) {
    throw new ProxyTlsError(`${at(n.keyField, n.keyPath)} is not a valid PEM private key: ${(e as Error).message}`);
  }
  try {
    createSecureContext({ cert: m.cert, key: m.key });
  } catch (e) {
    throw new ProxyTlsError(`${at(n.certField, n.certPath)} and ${at(n.keyField, n.keyPath)} do not belong together: ${(e as Error).message}`);
  }
}

/** Written under a temporary name and renamed: a crash never leaves half a key that the next start would try to use. */
async function writeFileAtomic(path: string, text: string, mode: number): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, text, { mode });
  await chmod(tmp, mode); // the umask may have narrowed or (for 0600) the file pre-existed
  await rename(tmp, path);
}
