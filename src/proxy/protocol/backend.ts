// Server (backend) messages the proxy reads. Everything else it forwards by type
// and length alone: on the hot path only ReadyForQuery's status byte matters.

import { cstringEnd } from './frontend.js';

export const B_AUTHENTICATION = 0x52; // R
export const B_PARAMETER_STATUS = 0x53; // S
export const B_BACKEND_KEY_DATA = 0x4b; // K
export const B_READY_FOR_QUERY = 0x5a; // Z
export const B_ERROR = 0x45; // E
export const B_NOTICE = 0x4e; // N
export const B_PARSE_COMPLETE = 0x31; // 1
export const B_BIND_COMPLETE = 0x32; // 2
export const B_CLOSE_COMPLETE = 0x33; // 3
export const B_COMMAND_COMPLETE = 0x43; // C
export const B_ROW_DESCRIPTION = 0x54; // T
export const B_PARAMETER_DESCRIPTION = 0x74; // t
export const B_NO_DATA = 0x6e; // n
export const B_PORTAL_SUSPENDED = 0x73; // s
export const B_EMPTY_QUERY = 0x49; // I
export const B_COPY_IN = 0x47; // G
export const B_COPY_OUT = 0x48; // H
export const B_COPY_BOTH = 0x57; // W
export const B_COPY_DATA = 0x64; // d
export const B_COPY_DONE = 0x63; // c
export const B_NOTIFICATION = 0x41; // A
export const B_FUNCTION_RESULT = 0x56; // V
export const B_DATA_ROW = 0x44; // D
export const B_NEGOTIATE_PROTOCOL = 0x76; // v

// ReadyForQuery's transaction status.
export const TX_IDLE = 0x49; // I: not in a transaction block
export const TX_IN_BLOCK = 0x54; // T: in a transaction block
export const TX_FAILED = 0x45; // E: in a failed transaction block (aborted)

// Authentication request codes (the int32 after 'R').
export const AUTH_OK = 0; // AuthenticationOk
export const AUTH_CLEARTEXT_PASSWORD = 3; // AuthenticationCleartextPassword
export const AUTH_MD5_PASSWORD = 5; // AuthenticationMD5Password (a 4-byte salt follows)
export const AUTH_SASL = 10; // AuthenticationSASL (mechanism names follow)
export const AUTH_SASL_CONTINUE = 11; // AuthenticationSASLContinue
export const AUTH_SASL_FINAL = 12; // AuthenticationSASLFinal

/** Where an Authentication message's data begins (after type, length and code). */
export const AUTH_DATA_OFFSET = 9;

/** Postgres's own message limit (1 GiB); the server is trusted, but lengths are still checked. */
export const SERVER_MESSAGE_BYTES_MAX = 1024 * 1024 * 1024;

export interface ErrorFields {
  /** Non-localized severity (V), else the localized one (S). */
  severity: string;
  code: string;
  message: string;
  detail?: string;
  hint?: string;
}

/** Fields of an ErrorResponse or NoticeResponse: buf[start, end) with its header. */
export function parseErrorFields(buf: Buffer, start: number, end: number): ErrorFields {
  const out: ErrorFields = { severity: '', code: '', message: '' };
  let localized = '';
  let at = start + 5;
  while (at < end && buf[at] !== 0) {
    const f = buf[at]!;
    const e = cstringEnd(buf, at + 1, end);
    if (e < 0) break;
    const v = buf.toString('utf8', at + 1, e);
    if (f === 0x56)
      out.severity = v; // V
    else if (f === 0x53)
      localized = v; // S
    else if (f === 0x43)
      out.code = v; // C
    else if (f === 0x4d)
      out.message = v; // M
    else if (f === 0x44)
      out.detail = v; // D
    else if (f === 0x48) out.hint = v; // H
    at = e + 1;
  }
  if (out.severity === '') out.severity = localized;
  return out;
}

/** ParameterStatus: [name, value], or null if malformed. */
export function parseParameterStatus(buf: Buffer, start: number, end: number): [string, string] | null {
  const n = cstringEnd(buf, start + 5, end);
  if (n < 0) return null;
  const v = cstringEnd(buf, n + 1, end);
  if (v < 0) return null;
  return [buf.toString('utf8', start + 5, n), buf.toString('utf8', n + 1, v)];
}

/** BackendKeyData (protocol 3.0: two int32). */
export function parseBackendKeyData(buf: Buffer, start: number, end: number): { processId: number; secretKey: number } | null {
  if (end - start !== 13) return null;
  return { processId: buf.readInt32BE(start + 5), secretKey: buf.readInt32BE(start + 9) };
}

/** Authentication request code (AUTH_*), or -1 when the message is too short for one. */
export function authCode(buf: Buffer, start: number, end: number): number {
  return end - start >= 9 ? buf.readInt32BE(start + 5) : -1;
}

/** ReadyForQuery's transaction status: 'I' idle, 'T' in a transaction, 'E' in a failed one. */
export function readyStatus(buf: Buffer, start: number): number {
  return buf[start + 5]!;
}

/** The severity is one that ends the server session (FATAL or PANIC). */
export function isFatal(severity: string): boolean {
  return severity === 'FATAL' || severity === 'PANIC';
}
