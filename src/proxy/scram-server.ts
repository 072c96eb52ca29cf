// The server side of SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (RFC 5802, RFC 7677;
// channel binding tls-server-end-point, RFC 5929) against a stored verifier,
// behaving as PostgreSQL's auth-scram.c does: the user name in the
// client-first-message is ignored (the startup packet's user is the one that
// counts), the nonce is the client's followed by 18 random bytes in base64, the
// proof is compared in constant time, and a client that says it could bind but
// thinks the server cannot ("y") is refused when the server did offer binding
// (a downgrade by a man in the middle).
//
// Nothing here throws on client input: every malformed message is a refusal
// (08P01), because this runs inside a socket handler of the daemon.

import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ScramVerifier } from '../auth/scram.js';
import { SCRAM_ITERATIONS_DEFAULT } from '../auth/scram.js';
import type { ProxyRefusal, ScramNegotiation, ScramServerExchange } from './types.js';

export const SCRAM_MECHANISM = 'SCRAM-SHA-256';
/** The server's share of the nonce, as Postgres (SCRAM_RAW_NONCE_LEN). */
export const SERVER_NONCE_BYTES = 18;
/**
 * Bounds on client messages. Real clients send about 40 (first) and 110 (final)
 * characters; Postgres accepts any SASL message up to 64 KiB, but nothing
 * legitimate comes near these limits, and bounding them bounds our work.
 */
export const CLIENT_FIRST_CHARS_MAX = 2048;
export const CLIENT_FINAL_CHARS_MAX = 2048;
export const CLIENT_NONCE_CHARS_MAX = 512;
const KEY_BYTES = 32; // SHA-256

export interface ScramServerOptions {
  /** The startup packet's user, named in the 28P01 message (the SCRAM user name is ignored, as in Postgres). */
  user?: string;
  /**
   * Run the exchange to the end but always fail it with the same 28P01 as a wrong
   * password (Postgres's "doomed" exchange): for a user that does not exist, so a
   * client cannot tell it from a wrong password. Pair it with mockScramVerifier.
   */
  doomed?: boolean;
  /** The server nonce's random bytes (tests only). */
  randomBytes?: (n: number) => Buffer;
}

export const SCRAM_PLUS_MECHANISM = 'SCRAM-SHA-256-PLUS';
/** The only channel-binding type offered (as Postgres). */
export const CHANNEL_BINDING_TYPE = 'tls-server-end-point';

/** The SASL mechanisms to offer in AuthenticationSASL: -PLUS first when this TLS connection can bind. */
export function scramMechanisms(canBind: boolean): string[] {
  return canBind ? [SCRAM_PLUS_MECHANISM, SCRAM_MECHANISM] : [SCRAM_MECHANISM];
}

/** Checks the mechanism a client chose in SASLInitialResponse against what was offered; null when it is fine. */
export function checkScramMechanism(mechanism: string, canBind: boolean): ProxyRefusal | null {
  if (mechanism === SCRAM_MECHANISM || (mechanism === SCRAM_PLUS_MECHANISM && canBind)) return null;
  return malformedRefusal(
    `client selected an invalid SASL authentication mechanism ${JSON.stringify(mechanism.slice(0, 64))}`,
    mechanism === SCRAM_PLUS_MECHANISM
      ? 'SCRAM-SHA-256-PLUS is offered only over TLS; connect with sslmode=require, or channel_binding=prefer'
      : `this server offers ${scramMechanisms(canBind).join(' and ')}`,
  );
}

/** The 28P01 refusal of a failed login; the same for a wrong password and an unknown user. */
export function passwordFailedRefusal(user: string): ProxyRefusal {
  return { code: '28P01', message: `password authentication failed for user ${JSON.stringify(user)}` };
}

/**
 * A plausible verifier for a user that does not exist, so its server-first-message
 * looks like a real user's: the salt is derived from the user name and a server
 * secret, so it is stable across attempts (as a real user's is), like Postgres's
 * scram_mock_salt. Use it with `doomed: true`: its keys match no password anyone knows,
 * but the doomed flag is what guarantees failure.
 */
export function mockScramVerifier(user: string, secret: string): ScramVerifier {
  const h = (label: string) => createHmac('sha256', secret).update(`ogel-scram-mock:${label}:${user}`).digest();
  return {
    iterations: SCRAM_ITERATIONS_DEFAULT,
    salt: h('salt').subarray(0, 16).toString('base64'),
    storedKey: h('stored').toString('base64'),
    serverKey: h('server').toString('base64'),
  };
}

type Phase = { kind: 'initial' } | { kind: 'started'; cbindInput: Buffer; clientFirstBare: string; serverFirst: string; nonce: string } | { kind: 'done' };

export function scramServerExchange(verifier: ScramVerifier, opts: ScramServerOptions = {}): ScramServerExchange {
  const user = opts.user ?? '';
  const random = opts.randomBytes ?? randomBytes;
  const keys = decodeVerifier(verifier);
  // A verifier that does not decode (the FSM validates them, so this is not
  // expected) fails every login instead of crashing the daemon.
  const doomed = opts.doomed === true || keys === null;
  let phase: Phase = { kind: 'initial' };

  return {
    start(clientFirst: string, negotiation: ScramNegotiation = { mechanism: SCRAM_MECHANISM, serverEndPoint: null }): string | ProxyRefusal {
      if (phase.kind !== 'initial') {
        phase = { kind: 'done' };
        return malformedRefusal('unexpected client-first-message: the SCRAM exchange has already started');
      }
      phase = { kind: 'done' }; // until it succeeds: any refusal ends the exchange
      const parsed = parseClientFirst(clientFirst, negotiation);
      if ('code' in parsed) return parsed;
      const serverNonce = random(SERVER_NONCE_BYTES).toString('base64');
      const nonce = parsed.clientNonce + serverNonce;
      const serverFirst = `r=${nonce},s=${verifier.salt},i=${verifier.iterations}`;
      phase = { kind: 'started', cbindInput: parsed.cbindInput, clientFirstBare: parsed.clientFirstBare, serverFirst, nonce };
      return serverFirst;
    },

    finish(clientFinal: string): string | ProxyRefusal {
      const p = phase;
      phase = { kind: 'done' };
      if (p.kind !== 'started') {
        return malformedRefusal(
          p.kind === 'initial' ? 'unexpected client-final-message before the client-first-message' : 'unexpected SCRAM message: the exchange has ended',
        );
      }
      const parsed = parseClientFinal(clientFinal, p.cbindInput, p.nonce);
      if ('code' in parsed) return parsed;
      if (doomed || keys === null) return passwordFailedRefusal(user);
      const authMessage = `${p.clientFirstBare},${p.serverFirst},${parsed.withoutProof}`;
      const clientSignature = createHmac('sha256', keys.storedKey).update(authMessage, 'utf8').digest();
      const clientKey = xor(parsed.proof, clientSignature);
      const storedKey = createHash('sha256').update(clientKey).digest();
      if (!timingSafeEqual(storedKey, keys.storedKey)) return passwordFailedRefusal(user);
      const serverSignature = createHmac('sha256', keys.serverKey).update(authMessage, 'utf8').digest('base64');
      return `v=${serverSignature}`;
    },
  };
}

// --- parsing (RFC 5802 §7) ---------------------------------------------------------

interface ClientFirst {
  /** What c= must carry in the client-final-message: the GS2 header, then the channel-binding data when bound. */
  cbindInput: Buffer;
  clientFirstBare: string;
  clientNonce: string;
}

function parseClientFirst(msg: string, negotiation: ScramNegotiation): ClientFirst | ProxyRefusal {
  if (typeof msg !== 'string') return malformedRefusal('client-first-message is not text');
  if (msg.length === 0) return malformedRefusal('client-first-message is empty');
  if (msg.length > CLIENT_FIRST_CHARS_MAX) return malformedRefusal(`client-first-message is ${msg.length} characters, more than ${CLIENT_FIRST_CHARS_MAX}`);
  if (msg.includes('\0')) return malformedRefusal('client-first-message contains a NUL character');
  // gs2-header = gs2-cbind-flag "," [ authzid ] ","
  const c1 = msg.indexOf(',');
  if (c1 < 0) return malformedRefusal('client-first-message has no GS2 header (expected "n,," or "y,,")');
  const flag = msg.slice(0, c1);
  const plus = negotiation.mechanism === SCRAM_PLUS_MECHANISM;
  if (plus && negotiation.serverEndPoint === null) return malformedRefusal('SCRAM-SHA-256-PLUS was not offered on this connection');
  if (flag.startsWith('p=')) {
    if (!plus) return malformedRefusal('the client selected SCRAM-SHA-256 without channel binding, but the SCRAM message includes channel binding data');
    if (flag !== `p=${CHANNEL_BINDING_TYPE}`)
      return malformedRefusal(
        `unsupported SCRAM channel-binding type ${JSON.stringify(flag.slice(2, 40))}`,
        `the server binds with ${CHANNEL_BINDING_TYPE} only`,
      );
  } else if (plus) {
    return malformedRefusal('the client selected SCRAM-SHA-256-PLUS, but the SCRAM message does not include channel binding data');
  } else if (flag === 'y') {
    // The client could bind but believes the server cannot: over TLS where -PLUS was offered, someone removed it.
    if (negotiation.serverEndPoint !== null) {
      return malformedRefusal(
        'SCRAM channel binding negotiation error: the client supports channel binding but thinks the server does not, yet this server offered it (a man in the middle?)',
      );
    }
  } else if (flag !== 'n') {
    return malformedRefusal(`unexpected channel-binding flag ${JSON.stringify(flag.slice(0, 16))} (expected "n", "y" or "p=${CHANNEL_BINDING_TYPE}")`);
  }
  const c2 = msg.indexOf(',', c1 + 1);
  if (c2 < 0) return malformedRefusal('client-first-message ends inside the GS2 header');
  const authzid = msg.slice(c1 + 1, c2);
  if (authzid !== '') {
    if (!authzid.startsWith('a=')) return malformedRefusal('unexpected attribute in the GS2 header (expected an empty authzid or "a=")');
    return { code: '0A000', message: 'client uses authorization identity, but it is not supported' };
  }
  const gs2Header = Buffer.from(msg.slice(0, c2 + 1), 'latin1');
  const cbindInput = plus ? Buffer.concat([gs2Header, negotiation.serverEndPoint!]) : gs2Header;
  const clientFirstBare = msg.slice(c2 + 1);
  const attrs = clientFirstBare.split(',');
  let i = 0;
  if (attrs[i]?.startsWith('m=')) return { code: '0A000', message: 'client requires an unsupported SCRAM extension' };
  const username = attrs[i++];
  if (username === undefined || !username.startsWith('n='))
    return malformedRefusal('client-first-message: expected the user name attribute "n=" after the GS2 header');
  // The user name is ignored, as in Postgres: the startup packet's user counts.
  const nonceAttr = attrs[i++];
  if (nonceAttr === undefined || !nonceAttr.startsWith('r='))
    return malformedRefusal('client-first-message: expected the nonce attribute "r=" after the user name');
  const clientNonce = nonceAttr.slice(2);
  if (clientNonce.length === 0) return malformedRefusal('client-first-message: the nonce is empty');
  if (clientNonce.length > CLIENT_NONCE_CHARS_MAX)
    return malformedRefusal(`client-first-message: the nonce is ${clientNonce.length} characters, more than ${CLIENT_NONCE_CHARS_MAX}`);
  if (!isPrintable(clientNonce)) return malformedRefusal('client-first-message: non-printable characters in the SCRAM nonce');
  for (; i < attrs.length; i++) {
    // Optional extensions: none is supported, so they are checked for form and ignored.
    if (!isAttribute(attrs[i]!)) return malformedRefusal(`client-first-message: malformed attribute ${JSON.stringify(attrs[i]!.slice(0, 16))} after the nonce`);
  }
  return { cbindInput, clientFirstBare, clientNonce };
}

interface ClientFinal {
  withoutProof: string;
  proof: Buffer;
}

function parseClientFinal(msg: string, cbindInput: Buffer, nonce: string): ClientFinal | ProxyRefusal {
  if (typeof msg !== 'string') return malformedRefusal('client-final-message is not text');
  if (msg.length === 0) return malformedRefusal('client-final-message is empty');
  if (msg.length > CLIENT_FINAL_CHARS_MAX) return malformedRefusal(`client-final-message is ${msg.length} characters, more than ${CLIENT_FINAL_CHARS_MAX}`);
  if (msg.includes('\0')) return malformedRefusal('client-final-message contains a NUL character');
  const attrs = msg.split(',');
  const cb = attrs[0]!;
  if (!cb.startsWith('c=')) return malformedRefusal('client-final-message: expected the channel-binding attribute "c=" first');
  const cbData = decodeBase64Strict(cb.slice(2));
  if (cbData === null) return malformedRefusal('client-final-message: the channel-binding attribute is not base64');
  // c= is the GS2 header, followed (when bound) by the hash of the certificate the client saw.
  if (!cbData.equals(cbindInput))
    return malformedRefusal(
      "SCRAM channel binding check failed: the channel-binding data does not match this connection (a GS2 header other than the first message's, or the certificate of another server)",
    );
  const r = attrs[1];
  if (r === undefined || !r.startsWith('r=')) return malformedRefusal('client-final-message: expected the nonce attribute "r=" after the channel binding');
  if (r.slice(2) !== nonce) return malformedRefusal('client-final-message: the nonce does not match the one of this exchange');
  const last = attrs.length - 1;
  if (last < 2) return malformedRefusal('client-final-message: the proof attribute "p=" is missing');
  for (let i = 2; i < last; i++) {
    if (attrs[i]!.startsWith('p=')) return malformedRefusal('client-final-message: garbage after the proof attribute');
    if (!isAttribute(attrs[i]!)) return malformedRefusal(`client-final-message: malformed attribute ${JSON.stringify(attrs[i]!.slice(0, 16))}`);
  }
  const p = attrs[last]!;
  if (!p.startsWith('p=')) return malformedRefusal('client-final-message: the last attribute must be the proof "p="');
  const proof = decodeBase64Strict(p.slice(2));
  if (proof === null || proof.length !== KEY_BYTES) return malformedRefusal(`client-final-message: the proof is not base64 of ${KEY_BYTES} bytes`);
  return { withoutProof: msg.slice(0, msg.length - p.length - 1), proof };
}

// --- helpers ----------------------------------------------------------------------

function malformedRefusal(detail: string, hint?: string): ProxyRefusal {
  return hint === undefined
    ? { code: '08P01', message: `malformed SCRAM message: ${detail}` }
    : { code: '08P01', message: `malformed SCRAM message: ${detail}`, hint };
}

/** printable = %x21-2B / %x2D-7E (printable ASCII except ","). */
function isPrintable(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x21 || c > 0x7e || c === 0x2c) return false;
  }
  return true;
}

/** attr-val = ALPHA "=" value */
function isAttribute(s: string): boolean {
  return /^[A-Za-z]=/.test(s);
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Canonical base64 only: Node's decoder skips garbage silently, which must not pass. */
function decodeBase64Strict(s: string): Buffer | null {
  if (!BASE64.test(s)) return null;
  const b = Buffer.from(s, 'base64');
  return b.toString('base64') === s ? b : null;
}

function decodeVerifier(v: ScramVerifier): { storedKey: Buffer; serverKey: Buffer } | null {
  if (typeof v !== 'object' || v === null) return null;
  if (!Number.isSafeInteger(v.iterations) || v.iterations < 1) return null;
  if (typeof v.salt !== 'string' || decodeBase64Strict(v.salt) === null) return null;
  const storedKey = typeof v.storedKey === 'string' ? decodeBase64Strict(v.storedKey) : null;
  const serverKey = typeof v.serverKey === 'string' ? decodeBase64Strict(v.serverKey) : null;
  if (storedKey === null || serverKey === null || storedKey.length !== KEY_BYTES || serverKey.length !== KEY_BYTES) return null;
  return { storedKey, serverKey };
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}
