// A client's startup and authentication (docs/proxy.md, Identity, Authentication,
// Protocol robustness): the startup packet family, TLS, identity and admission,
// and SCRAM-SHA-256(-PLUS) against the stored verifier. Its state lives only
// until the client is authenticated: the session then drops it.

import type net from 'node:net';
import tls from 'node:tls';
import type { Framer } from './protocol/framer.js';
import { describeType } from './protocol/framer.js';
import { F_SASL_RESPONSE, F_TERMINATE, parseSaslInitialResponse, parseStartupPacket, PROTOCOL_MINOR_LATEST, saslResponseData } from './protocol/frontend.js';
import {
  AUTHENTICATION_OK,
  authenticationSasl,
  authenticationSaslContinue,
  authenticationSaslFinal,
  negotiateProtocolVersion,
  SSL_NO,
  SSL_YES,
  type ErrorSpec,
} from './protocol/write.js';
import { tlsServerEndPoint } from './channel-binding.js';
import { checkScramMechanism, scramMechanisms } from './scram-server.js';
import type { SessionContext } from './session-types.js';
import { isRefusal, type ClaimedIdentity, type ProxyRefusal, type ScramServerExchange } from './types.js';

/** Terminate ('X', length 4): the whole of what a client that gives up before its startup packet sends. */
export function isTerminate(chunk: Buffer): boolean {
  return chunk.length === 5 && chunk[0] === F_TERMINATE && chunk.readInt32BE(1) === 4;
}

/** What the login needs of its session. */
export interface LoginHost {
  readonly socket: net.Socket;
  readonly framer: Framer;
  fatal(e: ErrorSpec): void;
  protocolError(why: string): void;
  close(): void;
  /** The client's socket is now this one (TLS over the old). */
  replaceSocket(s: net.Socket): void;
  /** The startup packet was read: authentication follows. */
  startAuth(): void;
  /** The identity was admitted (the client counts against its limits). */
  admitted(identity: ClaimedIdentity): void;
  /** SCRAM succeeded: link a server for the welcome. */
  authenticated(): void;
}

export class ClientLogin {
  private isTls = false;
  private sni: string | undefined;
  private scram: ScramServerExchange | null = null;
  /** The refusal a doomed exchange ends with. */
  private doomed: ProxyRefusal | null = null;
  private saslStep = 0;
  /** tls-server-end-point data of this connection when SCRAM-SHA-256-PLUS is offered (TLS, a bindable certificate). */
  private serverEndPoint: Buffer | null = null;
  private authTimer: NodeJS.Timeout | null;

  constructor(
    private readonly ctx: SessionContext,
    private readonly host: LoginHost,
  ) {
    this.authTimer = setTimeout(
      () => host.fatal({ code: '08006', message: `startup and authentication did not finish within ${ctx.authTimeoutMs} ms` }),
      ctx.authTimeoutMs,
    );
    this.authTimer.unref();
  }

  /** Startup and authentication are over (done, or the session closed). */
  stop(): void {
    if (this.authTimer) clearTimeout(this.authTimer);
    this.authTimer = null;
  }

  /** Returns false when the session ended or changed transport (stop reading this chunk). */
  startupPacket(buf: Buffer, start: number, end: number): boolean {
    const host = this.host;
    const p = parseStartupPacket(buf, start, end);
    switch (p.kind) {
      case 'invalid':
        host.fatal({ code: p.code, message: p.message });
        return false;
      case 'cancel':
        this.ctx.cancel(p.processId, p.secretKey);
        host.close();
        return false;
      case 'gssenc':
        // GSSAPI encryption is not offered; the client may go on with SSLRequest or a startup packet.
        host.socket.write(SSL_NO);
        return true;
      case 'ssl': {
        if (this.isTls) {
          host.fatal({ code: '08P01', message: 'SSLRequest received on a connection that already uses TLS' });
          return false;
        }
        if (this.ctx.tls === null || this.ctx.tlsMode === 'off') {
          host.socket.write(SSL_NO);
          return true;
        }
        if (host.framer.pendingBytes > 0) {
          // Bytes after SSLRequest, before the handshake: they could have been injected by a man in the middle (CVE-2021-23214).
          host.fatal({ code: '08P01', message: 'received unencrypted data after SSLRequest' });
          return false;
        }
        host.socket.write(SSL_YES);
        this.upgradeTls(this.ctx.tls);
        return false;
      }
      case 'startup':
        break;
    }
    if (p.minor > PROTOCOL_MINOR_LATEST || p.protocolOptions.length > 0) {
      host.socket.write(negotiateProtocolVersion(PROTOCOL_MINOR_LATEST, p.protocolOptions));
    }
    if (this.ctx.tlsMode === 'required' && !this.isTls) {
      host.fatal({ code: '28000', message: 'this server requires TLS', hint: 'connect with sslmode=require (or stronger)' });
      return false;
    }
    const params = p.params;
    const user = params.get('user');
    if (!user) {
      host.fatal({ code: '28000', message: 'no PostgreSQL user name specified in startup packet' });
      return false;
    }
    // As Postgres: the database defaults to the user name.
    if (!params.get('database')) params.set('database', user);
    let identity: ClaimedIdentity | ProxyRefusal;
    try {
      identity = this.ctx.resolveIdentity(params, this.sni);
    } catch (e) {
      this.ctx.log({ level: 'error', msg: 'identity resolution failed', error: (e as Error).message });
      identity = { code: 'XX000', message: 'internal error while checking the connection parameters' };
    }
    if (isRefusal(identity)) {
      if (identity.code === '28P01' && this.ctx.doomedScram !== null) {
        // As Postgres for an unknown user: the whole exchange, then the same 28P01 as a wrong password.
        this.scram = this.ctx.doomedScram(user);
        this.doomed = identity;
        host.startAuth();
        this.offerSasl();
        return true;
      }
      this.ctx.counters.authFailures++;
      host.fatal(identity);
      return false;
    }
    const refused = this.ctx.admit(identity);
    if (refused) {
      host.fatal(refused);
      return false;
    }
    host.admitted(identity);
    this.scram = this.ctx.scram(identity.verifier, identity);
    host.startAuth();
    this.offerSasl();
    return true;
  }

  /** AuthenticationSASL: SCRAM-SHA-256-PLUS too when this TLS connection's certificate can be bound (channel-binding.ts). */
  private offerSasl(): void {
    const socket = this.host.socket;
    if (this.isTls) {
      const raw = (socket as tls.TLSSocket).getCertificate();
      this.serverEndPoint = raw !== null && 'raw' in raw && Buffer.isBuffer(raw.raw) ? tlsServerEndPoint(raw.raw) : null;
    }
    socket.write(authenticationSasl(scramMechanisms(this.serverEndPoint !== null)));
  }

  private upgradeTls(context: tls.SecureContext): void {
    const secure = new tls.TLSSocket(this.host.socket, { isServer: true, secureContext: context });
    this.isTls = true;
    this.host.replaceSocket(secure);
    secure.on('secure', () => {
      const name = (secure as tls.TLSSocket & { servername?: string | false }).servername;
      this.sni = typeof name === 'string' && name !== '' ? name : undefined;
    });
  }

  authMessage(type: number, buf: Buffer, start: number, end: number): void {
    const host = this.host;
    if (type !== F_SASL_RESPONSE) return host.protocolError(`expected SASL response, got message type ${describeType(type)}`);
    const scram = this.scram!;
    if (this.saslStep === 0) {
      const r = parseSaslInitialResponse(buf, start, end);
      if (typeof r === 'string') return host.protocolError(r);
      const bad = checkScramMechanism(r.mechanism, this.serverEndPoint !== null);
      if (bad !== null) return host.fatal(bad);
      const out = scram.start(r.data, { mechanism: r.mechanism, serverEndPoint: this.serverEndPoint });
      if (isRefusal(out)) return this.authFailed(this.doomed !== null && out.code === '28P01' ? this.doomed : out);
      this.saslStep = 1;
      host.socket.write(authenticationSaslContinue(out));
      return;
    }
    if (this.saslStep === 1) {
      const out = scram.finish(saslResponseData(buf, start, end));
      if (isRefusal(out)) return this.authFailed(out);
      // A doomed exchange must fail; if it did not, refuse anyway.
      if (this.doomed !== null) return this.authFailed(this.doomed);
      this.saslStep = 2;
      this.scram = null;
      host.socket.write(authenticationSaslFinal(out));
      host.socket.write(AUTHENTICATION_OK);
      this.stop();
      host.authenticated();
      return;
    }
    host.protocolError('unexpected SASL response after authentication');
  }

  private authFailed(r: ProxyRefusal): void {
    this.ctx.counters.authFailures++;
    this.host.fatal(r);
  }
}
