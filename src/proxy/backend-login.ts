// The proxy's own login to a Postgres server, for a pool (docs/proxy.md,
// Authentication): connect, answer the server's authentication requests
// (SCRAM-SHA-256, or MD5/cleartext if the server asks), note what it reports
// (ParameterStatus, BackendKeyData) and wait for ReadyForQuery. One small step
// per message kind; the first failure settles the login.

import net from 'node:net';
import { createHash } from 'node:crypto';
import {
  AUTH_CLEARTEXT_PASSWORD,
  AUTH_DATA_OFFSET,
  AUTH_MD5_PASSWORD,
  AUTH_OK,
  AUTH_SASL,
  AUTH_SASL_CONTINUE,
  AUTH_SASL_FINAL,
  authCode,
  B_AUTHENTICATION,
  B_BACKEND_KEY_DATA,
  B_ERROR,
  B_PARAMETER_STATUS,
  B_READY_FOR_QUERY,
  parseBackendKeyData,
  parseErrorFields,
} from './protocol/backend.js';
import { passwordMessage, saslInitialResponse, saslResponse, startupMessage } from './protocol/write.js';
import { ScramClient } from './protocol/scram-client.js';
import { ServerConnection, ServerError } from './server-conn.js';
import type { Pool, PoolOptions } from './pool.js';

/** SQLSTATEs at login that mean "not now" rather than "never": worth waiting out. */
const TRANSIENT_LOGIN_CODES = new Set(['57P01', '57P02', '57P03', '53300', '08006', '08001', '08004', '28000']);

/** AuthenticationMD5Password is exactly its header, its code and a 4-byte salt. */
const AUTH_MD5_MESSAGE_BYTES = AUTH_DATA_OFFSET + 4;

/** Connects and logs in, and resolves with the connection once the server is ready for queries. */
export function loginServer(pool: Pool, o: PoolOptions): Promise<ServerConnection> {
  return new Promise((resolve, reject) => {
    new BackendLogin(pool, o, resolve, reject).start();
  });
}

/** One login in progress. `settled` once it resolved or failed; nothing after that changes its outcome. */
class BackendLogin {
  private readonly conn: ServerConnection;
  private scram: ScramClient | null = null;
  private settled = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly pool: Pool,
    private readonly o: PoolOptions,
    private readonly resolve: (conn: ServerConnection) => void,
    private readonly reject: (err: ServerError) => void,
  ) {
    this.conn = new ServerConnection(pool);
  }

  private get where(): string {
    const t = this.pool.target;
    return `${t.node} (${t.host}:${t.port})`;
  }

  start(): void {
    const t = this.pool.target;
    const conn = this.conn;
    // Reads go to the connection's own buffer (no allocation per read, no stream machinery).
    const socket = net.connect({
      host: t.host,
      port: t.port,
      noDelay: true,
      onread: {
        buffer: () => conn.rbuf,
        callback: (n: number, buf: Uint8Array) => {
          conn.onRead((buf as Buffer).subarray(0, n));
          return true; // pausing is pause()'s job
        },
      },
    });
    conn.socket = socket;
    conn.onLogin = (chunk) => this.onData(chunk);
    this.timer = setTimeout(
      () => this.fail(new ServerError(`connecting to ${this.where} took longer than ${this.o.connectTimeoutMs} ms`, '08001', true)),
      this.o.connectTimeoutMs,
    );
    socket.on('error', (e: Error) => this.fail(new ServerError(`cannot connect to ${this.where}: ${e.message}`, '08001', true)));
    socket.on('close', () => this.onClose());
    socket.on('connect', () => socket.write(startupMessage(this.startupParams())));
  }

  private startupParams(): Map<string, string> {
    const params = new Map<string, string>([
      ['user', this.o.credentials.user],
      ['database', this.o.database],
    ]);
    for (const [k, v] of this.o.startupParams ?? []) params.set(k, v);
    return params;
  }

  /** The socket closed: during login a failure; after, the connection's end, told to its user unless the proxy closed it. */
  private onClose(): void {
    if (!this.settled) return this.fail(new ServerError(`${this.where} closed the connection during login`, '08006', true));
    const conn = this.conn;
    const byProxy = conn.closed;
    conn.closed = true;
    this.pool.forget(conn);
    if (!byProxy) conn.handler?.onServerClose(conn, null);
  }

  private fail(err: ServerError): void {
    if (this.settled) return;
    this.settled = true;
    this.clearTimer();
    this.conn.socket.destroy();
    this.conn.closed = true;
    this.reject(err);
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private onData(chunk: Buffer): void {
    const f = this.conn.framer;
    f.feed(chunk, true);
    while (f.next()) {
      const err = this.message(f.type, f.buf, f.start, f.end, f.pendingBytes);
      if (err !== null) return this.fail(err);
      if (this.settled) return;
    }
    if (f.error) this.fail(new ServerError(`${this.pool.target.node}: ${f.error}`, '08P01', false));
  }

  /** One server message during login; an error fails the login. */
  private message(type: number, buf: Buffer, start: number, end: number, pendingBytes: number): ServerError | null {
    switch (type) {
      case B_AUTHENTICATION:
        return this.authRequest(buf, start, end);
      case B_PARAMETER_STATUS:
        this.conn.noteParameter(buf, start, end);
        return null;
      case B_BACKEND_KEY_DATA: {
        const k = parseBackendKeyData(buf, start, end);
        if (k) {
          this.conn.processId = k.processId;
          this.conn.secretKey = k.secretKey;
        }
        return null;
      }
      case B_ERROR:
        return this.refused(buf, start, end);
      case B_READY_FOR_QUERY:
        return this.ready(pendingBytes);
      default:
        // NoticeResponse and NegotiateProtocolVersion at login: nothing to do.
        return null;
    }
  }

  private authRequest(buf: Buffer, start: number, end: number): ServerError | null {
    const code = authCode(buf, start, end);
    const data = () => buf.toString('utf8', start + AUTH_DATA_OFFSET, end);
    if (code === AUTH_OK) return null;
    if (code === AUTH_SASL) return this.saslStart(data());
    if (code === AUTH_SASL_CONTINUE && this.scram !== null) return this.saslContinue(this.scram, data());
    if (code === AUTH_SASL_FINAL && this.scram !== null) return this.saslFinal(this.scram, data());
    if (code === AUTH_CLEARTEXT_PASSWORD) {
      this.conn.socket.write(passwordMessage(this.o.credentials.password));
      return null;
    }
    if (code === AUTH_MD5_PASSWORD && end - start === AUTH_MD5_MESSAGE_BYTES) return this.md5Password(buf.subarray(start + AUTH_DATA_OFFSET, end));
    return new ServerError(`${this.pool.target.node} asks for an authentication method the proxy does not speak (code ${code})`, '28000', false);
  }

  /** AuthenticationSASL: the server's mechanisms, NUL-separated. */
  private saslStart(mechanismList: string): ServerError | null {
    const mechanisms = mechanismList.split('\0');
    if (!mechanisms.includes('SCRAM-SHA-256')) {
      return new ServerError(`${this.pool.target.node} offers no SCRAM-SHA-256 (${mechanisms.filter(Boolean).join(', ')})`, '28000', false);
    }
    this.scram = new ScramClient(this.o.credentials.password);
    this.conn.socket.write(saslInitialResponse('SCRAM-SHA-256', this.scram.first()));
    return null;
  }

  private saslContinue(scram: ScramClient, serverFirst: string): ServerError | null {
    try {
      this.conn.socket.write(saslResponse(scram.final(serverFirst)));
      return null;
    } catch (e) {
      return new ServerError((e as Error).message, '28000', false);
    }
  }

  /** The server's signature: proof that it knows the verifier too. */
  private saslFinal(scram: ScramClient, serverFinal: string): ServerError | null {
    try {
      scram.verify(serverFinal);
      return null;
    } catch (e) {
      return new ServerError((e as Error).message, '28000', false);
    }
  }

  /** md5(md5(password + user) + salt), as Postgres computes it. */
  private md5Password(salt: Buffer): null {
    const { user, password } = this.o.credentials;
    const inner = createHash('md5')
      .update(password + user)
      .digest('hex');
    this.conn.socket.write(passwordMessage('md5' + createHash('md5').update(inner).update(salt).digest('hex')));
    return null;
  }

  private refused(buf: Buffer, start: number, end: number): ServerError {
    const e = parseErrorFields(buf, start, end);
    const transient = TRANSIENT_LOGIN_CODES.has(e.code);
    return new ServerError(
      `${this.where} refused the proxy's login as ${JSON.stringify(this.o.credentials.user)}: ${e.message}`,
      e.code || '08006',
      transient,
      e,
    );
  }

  /** ReadyForQuery: logged in. Nothing may follow it before the proxy's first request. */
  private ready(pendingBytes: number): ServerError | null {
    const conn = this.conn;
    conn.initial = new Map(conn.reported);
    if (!this.pool.welcome) this.pool.welcome = conn.initial;
    conn.onLogin = null;
    if (pendingBytes > 0) return new ServerError('unexpected bytes after ReadyForQuery at login', '08P01', false);
    this.settled = true;
    this.clearTimer();
    this.resolve(conn);
    return null;
  }
}
