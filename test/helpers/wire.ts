// Wire-level helpers for the proxy tests: a fake Postgres backend that checks
// every message it receives with its own validator (written apart from
// src/proxy/protocol/frontend.ts on purpose) and answers like Postgres (errors
// included, then it skips to Sync); raw clients that speak startup and SCRAM.

import net from 'node:net';
import { makeScramVerifier } from '../../src/auth/scram.js';
import { ScramClient } from '../../src/proxy/protocol/scram-client.js';
import type { ClaimedIdentity, ProxyRefusal, StartupParams } from '../../src/proxy/types.js';

export const PASSWORD = 'fuzz-password';
export const VERIFIER = makeScramVerifier(PASSWORD, 16); // few iterations: hundreds of logins

/** Independent check of one frontend message (type byte + body); null when valid. */
export function validate(type: number, body: Buffer): string | null {
  let p = 0;
  const str = (): boolean => {
    const z = body.indexOf(0, p);
    if (z < 0) return false;
    p = z + 1;
    return true;
  };
  const need = (n: number): boolean => p + n <= body.length;
  const i16 = (): number => {
    const v = body.readInt16BE(p);
    p += 2;
    return v;
  };
  const i32 = (): number => {
    const v = body.readInt32BE(p);
    p += 4;
    return v;
  };
  const end = (): string | null => (p === body.length ? null : 'trailing bytes');
  const c = String.fromCharCode(type);
  switch (c) {
    case 'Q':
    case 'f':
      return str() ? end() : 'unterminated string';
    case 'S':
    case 'H':
    case 'c':
    case 'X':
      return body.length === 0 ? null : 'body on a bodiless message';
    case 'd':
      return null;
    case 'P': {
      if (!str() || !str() || !need(2)) return 'bad Parse';
      const n = i16();
      if (n < 0 || !need(4 * n)) return 'bad Parse types';
      p += 4 * n;
      return end();
    }
    case 'B': {
      if (!str() || !str()) return 'bad Bind names';
      for (const part of ['formats', 'params', 'results'] as const) {
        if (!need(2)) return `bad Bind ${part}`;
        const n = i16();
        if (n < 0) return `negative Bind ${part}`;
        for (let k = 0; k < n; k++) {
          if (part === 'params') {
            if (!need(4)) return 'bad Bind param';
            const len = i32();
            if (len < -1 || (len > 0 && !need(len))) return 'bad Bind param length';
            if (len > 0) p += len;
          } else {
            if (!need(2)) return `bad Bind ${part} code`;
            const f = i16();
            if (f !== 0 && f !== 1) return `bad Bind ${part} code ${f}`;
          }
        }
      }
      return end();
    }
    case 'D':
    case 'C':
      if (body.length < 2 || (body[0] !== 0x53 && body[0] !== 0x50)) return `bad ${c} kind`;
      p = 1;
      return str() ? end() : `bad ${c} name`;
    case 'E':
      if (!str() || !need(4)) return 'bad Execute';
      p += 4;
      return end();
    case 'F': {
      if (!need(6)) return 'bad FunctionCall';
      p += 4;
      const nf = i16();
      if (nf < 0 || !need(2 * nf)) return 'bad FunctionCall formats';
      for (let k = 0; k < nf; k++) if (![0, 1].includes(i16())) return 'bad FunctionCall format';
      if (!need(2)) return 'bad FunctionCall args';
      const na = i16();
      if (na < 0) return 'bad FunctionCall args';
      for (let k = 0; k < na; k++) {
        if (!need(4)) return 'bad FunctionCall arg';
        const len = i32();
        if (len < -1 || (len > 0 && !need(len))) return 'bad FunctionCall arg length';
        if (len > 0) p += len;
      }
      if (!need(2)) return 'bad FunctionCall result format';
      if (![0, 1].includes(i16())) return 'bad FunctionCall result format';
      return end();
    }
    default:
      return `unknown type ${type}`;
  }
}

export function msg(type: string, body: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(5);
  h.write(type, 0, 'latin1');
  h.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([h, body]);
}
export const Z = msg('Z', Buffer.from('I'));
export function err(m: string): Buffer {
  return msg('E', Buffer.from(`SERROR\0VERROR\0C42000\0M${m}\0\0`));
}

export class FakeBackend {
  readonly violations: string[] = [];
  messages = 0;
  private readonly server = net.createServer((s) => this.serve(s));
  private rng = 1;
  /** Percent of requests answered with an error. */
  errorPct = 10;
  port = 0;

  async listen(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }

  /** Deterministic "randomness" for error injection (the fuzz input drives the rest). */
  private chance(pct: number): boolean {
    this.rng = (this.rng * 1103515245 + 12345) & 0x7fffffff;
    return this.rng % 100 < pct;
  }

  private serve(s: net.Socket): void {
    s.on('error', () => {});
    let buf = Buffer.alloc(0);
    let started = false;
    let skipping = false;
    s.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        if (!started) {
          if (buf.length < 4) return;
          const len = buf.readInt32BE(0);
          if (buf.length < len) return;
          buf = buf.subarray(len);
          started = true;
          s.write(
            Buffer.concat([
              msg('R', Buffer.from([0, 0, 0, 0])),
              msg('S', Buffer.from('server_version\x0017.0\x00')),
              msg('K', Buffer.from([0, 0, 0, 7, 0, 0, 0, 9])),
              Z,
            ]),
          );
          continue;
        }
        if (buf.length < 5) return;
        const type = buf[0]!;
        const len = buf.readInt32BE(1);
        if (len < 4) {
          this.violations.push(`length ${len} for type ${type}`);
          s.destroy();
          return;
        }
        if (buf.length < len + 1) return;
        const body = buf.subarray(5, len + 1);
        buf = buf.subarray(len + 1);
        this.messages++;
        const bad = validate(type, body);
        if (bad) {
          this.violations.push(`${String.fromCharCode(type)}: ${bad}`);
          s.destroy();
          return;
        }
        const c = String.fromCharCode(type);
        if (c === 'X') return void s.end();
        if (skipping && c !== 'S') continue;
        switch (c) {
          case 'Q':
            s.write(this.chance(this.errorPct) ? Buffer.concat([err('fake failure'), Z]) : Buffer.concat([msg('C', Buffer.from('SELECT 0\0')), Z]));
            break;
          case 'S':
            skipping = false;
            s.write(Z);
            break;
          case 'F':
            s.write(Buffer.concat([msg('V', Buffer.from([0xff, 0xff, 0xff, 0xff])), Z]));
            break;
          case 'P':
          case 'B':
          case 'D':
          case 'E':
          case 'C':
            if (this.chance(this.errorPct)) {
              s.write(err('fake failure'));
              skipping = true;
              break;
            }
            if (c === 'P') s.write(msg('1'));
            else if (c === 'B') s.write(msg('2'));
            else if (c === 'C') s.write(msg('3'));
            else if (c === 'E') s.write(msg('C', Buffer.from('SELECT 1\0')));
            else if (body[0] === 0x53) s.write(Buffer.concat([msg('t', Buffer.from([0, 0])), msg('n')]));
            else s.write(msg('n'));
            break;
          default:
            break; // H, d, c, f: nothing to answer outside COPY
        }
      }
    });
  }
}

export function identity(params: StartupParams): ClaimedIdentity | ProxyRefusal {
  if (params.get('user') !== 'app' || params.get('database') !== 'app') return { code: '28000', message: 'no such tenant' };
  return {
    kind: 'tenant',
    tenantId: 't',
    role: 'app',
    database: 'app',
    verifier: VERIFIER,
    readOnly: false,
    poolMode: null,
    serverParams: new Map(),
    maxClientConnections: null,
    poolSize: null,
  };
}

export function startup(params: Record<string, string>): Buffer {
  const parts: Buffer[] = [Buffer.from([0, 3, 0, 0])];
  for (const [k, v] of Object.entries(params)) parts.push(Buffer.from(`${k}\0${v}\0`));
  parts.push(Buffer.from([0]));
  const body = Buffer.concat(parts);
  const h = Buffer.alloc(4);
  h.writeInt32BE(body.length + 4);
  return Buffer.concat([h, body]);
}

/** Reads typed messages from a socket. */
export class Reader {
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  closed = false;
  constructor(readonly s: net.Socket) {
    s.on('data', (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      this.wake();
    });
    s.on('close', () => {
      this.closed = true;
      this.wake();
    });
    s.on('error', () => {});
  }
  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
  async next(timeoutMs = 2_000): Promise<{ type: string; body: Buffer } | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.buf.length >= 5) {
        const len = this.buf.readInt32BE(1);
        if (this.buf.length >= len + 1) {
          const m = { type: String.fromCharCode(this.buf[0]!), body: this.buf.subarray(5, len + 1) };
          this.buf = this.buf.subarray(len + 1);
          return m;
        }
      }
      if (this.closed || Date.now() > deadline) return null;
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 20);
      });
    }
  }
}

export async function connect(port: number): Promise<net.Socket> {
  const s = net.connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => {
    s.once('connect', () => resolve());
    s.once('error', reject);
  });
  return s;
}

/** A client through startup and SCRAM, at ReadyForQuery. */
export async function login(
  port: number,
  params: Record<string, string> = { user: 'app', database: 'app' },
  password = PASSWORD,
): Promise<{ s: net.Socket; r: Reader }> {
  const s = await connect(port);
  const r = new Reader(s);
  s.write(startup(params));
  return { s, r: await authenticate(s, r, password) };
}

/** Answers the proxy's SCRAM challenge and reads up to ReadyForQuery; throws on an ErrorResponse. */
export async function authenticate(s: net.Socket, r: Reader, password = PASSWORD): Promise<Reader> {
  const sc = new ScramClient(password);
  for (;;) {
    const m = await r.next();
    if (!m) throw new Error('login: the proxy closed the connection');
    if (m.type === 'E') throw new Error(`login refused: ${m.body.toString()}`);
    if (m.type === 'R') {
      const code = m.body.readInt32BE(0);
      if (code === 10) {
        const first = Buffer.from(sc.first());
        const b = Buffer.alloc(4);
        b.writeInt32BE(first.length);
        s.write(msg('p', Buffer.concat([Buffer.from('SCRAM-SHA-256\0'), b, first])));
      } else if (code === 11) s.write(msg('p', Buffer.from(sc.final(m.body.subarray(4).toString()))));
      else if (code === 12) sc.verify(m.body.subarray(4).toString());
    }
    if (m.type === 'Z') return r;
  }
}

/** Sends chunks, then drains until the proxy closes or goes quiet. */
export async function feed(s: net.Socket, r: Reader, chunks: Buffer[]): Promise<void> {
  for (const c of chunks) {
    if (r.closed) break;
    s.write(c);
    await new Promise((res) => setImmediate(res));
  }
  while (!r.closed && (await r.next(30)) !== null) {
    // drain
  }
  s.destroy();
}

export function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    if (p > prev) out.push(bytes.subarray(prev, p));
    prev = p;
  }
  if (prev < bytes.length) out.push(bytes.subarray(prev));
  return out;
}
