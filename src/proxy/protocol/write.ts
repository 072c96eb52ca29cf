// Serializers for the messages the proxy makes itself: to clients (errors,
// authentication, parameters, keys, ReadyForQuery, synthetic completions) and to
// servers (startup, SASL, the SET/Parse/Close it adds). The frequent constant
// ones are built once.

import { PROTOCOL_3_0 } from './frontend.js';
import { AUTH_OK, AUTH_SASL, AUTH_SASL_CONTINUE, AUTH_SASL_FINAL } from './backend.js';

/** A message: type byte, int32 length, body. */
function message(type: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = type;
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}

function cstr(s: string): Buffer {
  if (s.includes('\0')) throw new TypeError('a protocol string may not contain NUL');
  return Buffer.from(s + '\0', 'utf8');
}

function int32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeInt32BE(n);
  return b;
}

export interface ErrorSpec {
  /** ERROR, FATAL, WARNING, NOTICE... */
  severity?: string;
  code: string;
  message: string;
  detail?: string | undefined;
  hint?: string | undefined;
}

/** ErrorResponse ('E'), or NoticeResponse ('N') with notice: true. */
export function errorResponse(e: ErrorSpec, notice = false): Buffer {
  const sev = e.severity ?? 'ERROR';
  const fields: Buffer[] = [Buffer.from('S'), cstr(sev), Buffer.from('V'), cstr(sev), Buffer.from('C'), cstr(e.code), Buffer.from('M'), cstr(clean(e.message))];
  if (e.detail) fields.push(Buffer.from('D'), cstr(clean(e.detail)));
  if (e.hint) fields.push(Buffer.from('H'), cstr(clean(e.hint)));
  fields.push(Buffer.from([0]));
  return message(notice ? 0x4e : 0x45, Buffer.concat(fields));
}

/** Text that came from elsewhere may hold a NUL; a protocol string may not. */
function clean(s: string): string {
  return s.includes('\0') ? s.replace(/\0/g, '\\0') : s;
}

export const AUTHENTICATION_OK: Buffer = message(0x52, int32(AUTH_OK));

export function authenticationSasl(mechanisms: readonly string[]): Buffer {
  return message(0x52, Buffer.concat([int32(AUTH_SASL), ...mechanisms.map(cstr), Buffer.from([0])]));
}

export function authenticationSaslContinue(data: string): Buffer {
  return message(0x52, Buffer.concat([int32(AUTH_SASL_CONTINUE), Buffer.from(data, 'utf8')]));
}

export function authenticationSaslFinal(data: string): Buffer {
  return message(0x52, Buffer.concat([int32(AUTH_SASL_FINAL), Buffer.from(data, 'utf8')]));
}

export function parameterStatus(name: string, value: string): Buffer {
  return message(0x53, Buffer.concat([cstr(name), cstr(value)]));
}

export function backendKeyData(processId: number, secretKey: number): Buffer {
  return message(0x4b, Buffer.concat([int32(processId), int32(secretKey)]));
}

export const READY_IDLE: Buffer = message(0x5a, Buffer.from('I'));
export const READY_IN_TRANSACTION: Buffer = message(0x5a, Buffer.from('T'));
export const READY_FAILED: Buffer = message(0x5a, Buffer.from('E'));
export const PARSE_COMPLETE: Buffer = message(0x31, Buffer.alloc(0));
export const CLOSE_COMPLETE: Buffer = message(0x33, Buffer.alloc(0));

/** NegotiateProtocolVersion ('v'): the newest minor version we speak and the options we do not know. */
export function negotiateProtocolVersion(minor: number, unknownOptions: readonly string[]): Buffer {
  return message(0x76, Buffer.concat([int32(minor), int32(unknownOptions.length), ...unknownOptions.map(cstr)]));
}

/** The single byte answering SSLRequest/GSSENCRequest. */
export const SSL_YES: Buffer = Buffer.from('S');
export const SSL_NO: Buffer = Buffer.from('N');

// ---------------------------------------------------------------------------
// To servers

export function startupMessage(params: ReadonlyMap<string, string>): Buffer {
  const parts: Buffer[] = [int32(PROTOCOL_3_0)];
  for (const [k, v] of params) parts.push(cstr(k), cstr(v));
  parts.push(Buffer.from([0]));
  const body = Buffer.concat(parts);
  return Buffer.concat([int32(body.length + 4), body]);
}

export function cancelRequest(processId: number, secretKey: number): Buffer {
  const b = Buffer.allocUnsafe(16);
  b.writeInt32BE(16, 0);
  b.writeInt32BE((1234 << 16) | 5678, 4);
  b.writeInt32BE(processId, 8);
  b.writeInt32BE(secretKey, 12);
  return b;
}

export function saslInitialResponse(mechanism: string, data: string): Buffer {
  const d = Buffer.from(data, 'utf8');
  return message(0x70, Buffer.concat([cstr(mechanism), int32(d.length), d]));
}

export function saslResponse(data: string): Buffer {
  return message(0x70, Buffer.from(data, 'utf8'));
}

export function passwordMessage(password: string): Buffer {
  return message(0x70, cstr(password));
}

export function query(sql: string): Buffer {
  return message(0x51, cstr(sql));
}

export const SYNC: Buffer = message(0x53, Buffer.alloc(0));
export const TERMINATE: Buffer = message(0x58, Buffer.alloc(0));

/** Parse with a new statement name, keeping the original's query and types: buf[restFrom, end) is "query\0 int16 n oids". */
export function parseRenamed(name: string, buf: Buffer, restFrom: number, end: number): Buffer {
  const n = Buffer.byteLength(name);
  const out = Buffer.allocUnsafe(5 + n + 1 + (end - restFrom));
  out[0] = 0x50;
  out.writeInt32BE(out.length - 1, 1);
  out.write(name, 5, 'utf8');
  out[5 + n] = 0;
  buf.copy(out, 6 + n, restFrom, end);
  return out;
}

/**
 * A message with the name at buf[from, to) replaced (Bind's statement name,
 * Describe's or Close's): one copy, header length adjusted.
 */
export function withNameReplaced(buf: Buffer, start: number, end: number, from: number, to: number, name: string): Buffer {
  const n = Buffer.byteLength(name);
  const out = Buffer.allocUnsafe(end - start - (to - from) + n);
  buf.copy(out, 0, start, from);
  out.write(name, from - start, 'utf8');
  buf.copy(out, from - start + n, to, end);
  out.writeInt32BE(out.length - 1, 1);
  return out;
}

/** Close of a server-side prepared statement. */
export function closeStatement(name: string): Buffer {
  return message(0x43, Buffer.concat([Buffer.from('S'), cstr(name)]));
}
