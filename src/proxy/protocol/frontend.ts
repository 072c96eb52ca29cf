// Client (frontend) messages: the startup packet family, the SASL messages, and a
// structural check of every typed message the proxy may forward. A message that
// fails its check is never forwarded: the session answers 08P01 and closes.
//
// Checks follow Postgres's own parsing (postgres.c, pqformat.c): strings are
// NUL-terminated and may not run past the message, counts are non-negative and
// their arrays fit exactly, and messages with no body have length 4.

/** Postgres's limit for the startup packet (MAX_STARTUP_PACKET_LENGTH), header included. */
export const STARTUP_PACKET_BYTES_MAX = 10_000;
/** Before authentication completes only SASL messages come; Postgres caps them at 64 KiB (PG_MAX_AUTH_TOKEN_LENGTH). */
export const AUTH_MESSAGE_BYTES_MAX = 65_535 + 5;

export const PROTOCOL_3_0 = 3 << 16;
export const CANCEL_REQUEST_CODE = (1234 << 16) | 5678;
export const SSL_REQUEST_CODE = (1234 << 16) | 5679;
export const GSSENC_REQUEST_CODE = (1234 << 16) | 5680;
/** The newest minor version of protocol 3 the proxy speaks (as Postgres 17: 3.0). */
export const PROTOCOL_MINOR_LATEST = 0;
/** Startup parameters with this prefix are protocol extensions (NegotiateProtocolVersion lists those we do not know). */
export const PROTOCOL_OPTION_PREFIX = '_pq_.';
// Frontend message types (the byte before the length), as Postgres's protocol.h names them.
export const F_QUERY = 0x51; // Q
export const F_PARSE = 0x50; // P
export const F_BIND = 0x42; // B
export const F_DESCRIBE = 0x44; // D
export const F_EXECUTE = 0x45; // E
export const F_CLOSE = 0x43; // C
export const F_SYNC = 0x53; // S
export const F_FLUSH = 0x48; // H
export const F_TERMINATE = 0x58; // X
export const F_FUNCTION_CALL = 0x46; // F
export const F_COPY_DATA = 0x64; // d
export const F_COPY_DONE = 0x63; // c
export const F_COPY_FAIL = 0x66; // f
/** SASLInitialResponse and SASLResponse (PasswordMessage's type). */
export const F_SASL_RESPONSE = 0x70; // p
// The target of a Describe or Close.
export const F_TARGET_STATEMENT = 0x53; // S
export const F_TARGET_PORTAL = 0x50; // P

/** Bounds on the startup packet's parameters (far above what clients send). */
const STARTUP_PARAMS_MAX = 64;

export type StartupPacket =
  | { kind: 'ssl' }
  | { kind: 'gssenc' }
  | { kind: 'cancel'; processId: number; secretKey: number }
  | {
      kind: 'startup';
      minor: number;
      /** Parameters as sent, _pq_.* options excluded. */
      params: Map<string, string>;
      /** _pq_.* option names (none is supported: they are named in NegotiateProtocolVersion). */
      protocolOptions: string[];
    }
  | { kind: 'invalid'; code: string; message: string };

/** Parses a whole startup-family packet: buf[start, end) including its int32 length. */
export function parseStartupPacket(buf: Buffer, start: number, end: number): StartupPacket {
  const len = end - start;
  if (len < 8) return { kind: 'invalid', code: '08P01', message: `invalid length of startup packet: ${len} bytes` };
  const code = buf.readInt32BE(start + 4);
  if (code === SSL_REQUEST_CODE || code === GSSENC_REQUEST_CODE) {
    if (len !== 8)
      return { kind: 'invalid', code: '08P01', message: `invalid length ${len} of ${code === SSL_REQUEST_CODE ? 'SSLRequest' : 'GSSENCRequest'} (8 expected)` };
    return { kind: code === SSL_REQUEST_CODE ? 'ssl' : 'gssenc' };
  }
  if (code === CANCEL_REQUEST_CODE) {
    // Protocol 3.0 keys are 4 bytes (3.2's longer keys are not offered: we negotiate 3.0).
    if (len !== 16) return { kind: 'invalid', code: '08P01', message: `invalid length ${len} of CancelRequest (16 expected)` };
    return { kind: 'cancel', processId: buf.readInt32BE(start + 8), secretKey: buf.readInt32BE(start + 12) };
  }
  const major = code >>> 16;
  const minor = code & 0xffff;
  if (major !== 3) {
    return {
      kind: 'invalid',
      code: '0A000',
      message: `unsupported frontend protocol ${major}.${minor}: server supports 3.0 to 3.${PROTOCOL_MINOR_LATEST}`,
    };
  }
  const params = new Map<string, string>();
  const protocolOptions: string[] = [];
  let at = start + 8;
  for (;;) {
    if (at >= end) return { kind: 'invalid', code: '08P01', message: 'invalid startup packet layout: expected terminator as last byte' };
    const nameEnd = buf.indexOf(0, at);
    if (nameEnd < 0 || nameEnd >= end) return { kind: 'invalid', code: '08P01', message: 'invalid startup packet layout: a parameter name is not terminated' };
    if (nameEnd === at) {
      if (nameEnd !== end - 1) return { kind: 'invalid', code: '08P01', message: 'invalid startup packet layout: expected terminator as last byte' };
      break;
    }
    const name = buf.toString('utf8', at, nameEnd);
    const valueEnd = buf.indexOf(0, nameEnd + 1);
    if (valueEnd < 0 || valueEnd >= end)
      return { kind: 'invalid', code: '08P01', message: `invalid startup packet layout: the value of ${JSON.stringify(name)} is not terminated` };
    const value = buf.toString('utf8', nameEnd + 1, valueEnd);
    if (params.size + protocolOptions.length >= STARTUP_PARAMS_MAX)
      return { kind: 'invalid', code: '08P01', message: `startup packet has more than ${STARTUP_PARAMS_MAX} parameters` };
    if (name.startsWith(PROTOCOL_OPTION_PREFIX)) protocolOptions.push(name);
    else params.set(name, value);
    at = valueEnd + 1;
  }
  return { kind: 'startup', minor, params, protocolOptions };
}

// ---------------------------------------------------------------------------
// Authentication messages ('p')

/** SASLInitialResponse: mechanism name, then int32 length (-1: none) and the data. */
export function parseSaslInitialResponse(buf: Buffer, start: number, end: number): { mechanism: string; data: string } | string {
  const body = start + 5;
  const nameEnd = cstringEnd(buf, body, end);
  if (nameEnd < 0) return 'SASLInitialResponse: the mechanism name is not terminated';
  if (nameEnd + 5 > end) return 'SASLInitialResponse: the data length is missing';
  const n = buf.readInt32BE(nameEnd + 1);
  const dataStart = nameEnd + 5;
  if (n === -1) {
    if (dataStart !== end) return 'SASLInitialResponse: bytes after the message';
    return { mechanism: buf.toString('utf8', body, nameEnd), data: '' };
  }
  if (n < 0 || dataStart + n !== end) return `SASLInitialResponse: data length ${n} does not match the message`;
  return { mechanism: buf.toString('utf8', body, nameEnd), data: buf.toString('utf8', dataStart, end) };
}

/** SASLResponse: the rest of the message is the data. */
export function saslResponseData(buf: Buffer, start: number, end: number): string {
  return buf.toString('utf8', start + 5, end);
}

// ---------------------------------------------------------------------------
// Typed messages after authentication

/** Index of the NUL ending the string at `at`, or -1 if there is none before `end`. */
export function cstringEnd(buf: Buffer, at: number, end: number): number {
  if (at >= end) return -1;
  const i = buf.indexOf(0, at);
  return i < 0 || i >= end ? -1 : i;
}

/** Message types a client may send once authenticated, and what the proxy does with them. */
export const FRONTEND_TYPES = 'QPBDECSHXFdcf';

/**
 * Checks one whole typed message buf[start, end) (header included). Returns null
 * when it is well formed, else why not (for an 08P01 ErrorResponse).
 */
export function checkFrontendMessage(type: number, buf: Buffer, start: number, end: number): string | null {
  const body = start + 5;
  switch (type) {
    case F_QUERY: // one string, nothing after it
    case F_COPY_FAIL: // one string
      return cstringEnd(buf, body, end) === end - 1 ? null : `${type === F_QUERY ? 'Query' : 'CopyFail'}: the string must end exactly at the message's end`;
    case F_SYNC:
    case F_FLUSH:
    case F_COPY_DONE:
    case F_TERMINATE:
      return end - start === 5 ? null : `${typeName(type)}: length ${end - start - 1} (4 expected)`;
    case F_COPY_DATA: // opaque
      return null;
    case F_PARSE: // name, query, int16 n, n * int32 oid
      return checkParse(buf, body, end);
    case F_BIND:
      return checkBind(buf, body, end);
    case F_DESCRIBE:
    case F_CLOSE: {
      // 'S' or 'P', then a name
      const what = type === F_DESCRIBE ? 'Describe' : 'Close';
      if (body >= end) return `${what}: empty message`;
      const k = buf[body];
      if (k !== F_TARGET_STATEMENT && k !== F_TARGET_PORTAL) return `${what}: invalid target type ${describeByte(k!)} ('S' or 'P' expected)`;
      return cstringEnd(buf, body + 1, end) === end - 1 ? null : `${what}: the name must end exactly at the message's end`;
    }
    case F_EXECUTE: {
      // portal, int32 max rows
      const e = cstringEnd(buf, body, end);
      return e >= 0 && e + 5 === end ? null : 'Execute: expected a portal name and a row limit';
    }
    case F_FUNCTION_CALL:
      return checkFunctionCall(buf, body, end);
    default:
      return `invalid frontend message type ${describeByte(type)}`;
  }
}

function checkParse(buf: Buffer, at: number, end: number): string | null {
  const nameEnd = cstringEnd(buf, at, end);
  if (nameEnd < 0) return 'Parse: the statement name is not terminated';
  const qEnd = cstringEnd(buf, nameEnd + 1, end);
  if (qEnd < 0) return 'Parse: the query string is not terminated';
  if (qEnd + 3 > end) return 'Parse: the parameter type count is missing';
  const n = buf.readInt16BE(qEnd + 1);
  if (n < 0) return `Parse: invalid parameter type count ${n}`;
  return qEnd + 3 + 4 * n === end ? null : `Parse: ${n} parameter types do not fit the message`;
}

/** Bind: portal, statement, int16 nf + nf int16 formats, int16 np + np values (int32 len, -1 = NULL), int16 nr + nr int16. */
function checkBind(buf: Buffer, at: number, end: number): string | null {
  const portalEnd = cstringEnd(buf, at, end);
  if (portalEnd < 0) return 'Bind: the portal name is not terminated';
  const stmtEnd = cstringEnd(buf, portalEnd + 1, end);
  if (stmtEnd < 0) return 'Bind: the statement name is not terminated';
  let p = stmtEnd + 1;
  const formats = (what: string): string | null => {
    if (p + 2 > end) return `Bind: the ${what} format count is missing`;
    const n = buf.readInt16BE(p);
    p += 2;
    if (n < 0 || p + 2 * n > end) return `Bind: invalid ${what} format count ${n}`;
    for (let i = 0; i < n; i++, p += 2) {
      const f = buf.readInt16BE(p);
      if (f !== 0 && f !== 1) return `Bind: invalid ${what} format code ${f}`;
    }
    return null;
  };
  const pf = formats('parameter');
  if (pf) return pf;
  if (p + 2 > end) return 'Bind: the parameter count is missing';
  const np = buf.readInt16BE(p);
  p += 2;
  if (np < 0) return `Bind: invalid parameter count ${np}`;
  for (let i = 0; i < np; i++) {
    if (p + 4 > end) return `Bind: parameter ${i + 1} of ${np} is missing`;
    const len = buf.readInt32BE(p);
    p += 4;
    if (len === -1) continue;
    if (len < 0 || p + len > end) return `Bind: invalid length ${len} of parameter ${i + 1}`;
    p += len;
  }
  const rf = formats('result');
  if (rf) return rf;
  return p === end ? null : 'Bind: bytes after the result formats';
}

/** FunctionCall: int32 oid, int16 nf formats, int16 na args (int32 len + bytes), int16 result format. */
function checkFunctionCall(buf: Buffer, at: number, end: number): string | null {
  let p = at + 4;
  if (p + 2 > end) return 'FunctionCall: too short';
  const nf = buf.readInt16BE(p);
  p += 2;
  if (nf < 0 || p + 2 * nf + 2 > end) return `FunctionCall: invalid format count ${nf}`;
  for (let i = 0; i < nf; i++, p += 2) {
    const f = buf.readInt16BE(p);
    if (f !== 0 && f !== 1) return `FunctionCall: invalid format code ${f}`;
  }
  const na = buf.readInt16BE(p);
  p += 2;
  if (na < 0) return `FunctionCall: invalid argument count ${na}`;
  for (let i = 0; i < na; i++) {
    if (p + 4 > end) return `FunctionCall: argument ${i + 1} of ${na} is missing`;
    const len = buf.readInt32BE(p);
    p += 4;
    if (len === -1) continue;
    if (len < 0 || p + len > end) return `FunctionCall: invalid length ${len} of argument ${i + 1}`;
    p += len;
  }
  if (p + 2 !== end) return 'FunctionCall: the result format is missing or followed by more bytes';
  const rf = buf.readInt16BE(p);
  return rf === 0 || rf === 1 ? null : `FunctionCall: invalid result format ${rf}`;
}

const NAMES: Record<number, string> = {
  [F_QUERY]: 'Query',
  [F_PARSE]: 'Parse',
  [F_BIND]: 'Bind',
  [F_DESCRIBE]: 'Describe',
  [F_EXECUTE]: 'Execute',
  [F_CLOSE]: 'Close',
  [F_SYNC]: 'Sync',
  [F_FLUSH]: 'Flush',
  [F_TERMINATE]: 'Terminate',
  [F_FUNCTION_CALL]: 'FunctionCall',
  [F_COPY_DATA]: 'CopyData',
  [F_COPY_DONE]: 'CopyDone',
  [F_COPY_FAIL]: 'CopyFail',
  [F_SASL_RESPONSE]: 'SASLResponse',
};

export function typeName(type: number): string {
  return NAMES[type] ?? describeByte(type);
}

function describeByte(b: number): string {
  return b >= 0x20 && b < 0x7f ? `'${String.fromCharCode(b)}'` : `0x${b.toString(16).padStart(2, '0')}`;
}

// ---------------------------------------------------------------------------
// Field access for the few messages the proxy rewrites (prepared statements)

/** Parse: the statement name, and where the rest (query, types) starts and the name ends. */
export function parseMessageName(buf: Buffer, start: number, end: number): { name: string; nameEnd: number } {
  const nameEnd = cstringEnd(buf, start + 5, end);
  return { name: buf.toString('utf8', start + 5, nameEnd), nameEnd };
}

/** Bind: the statement name's [from, to) (after the portal name); checked messages only. */
export function bindStatementSpan(buf: Buffer, start: number, end: number): { from: number; to: number } {
  const portalEnd = cstringEnd(buf, start + 5, end);
  const stmtEnd = cstringEnd(buf, portalEnd + 1, end);
  return { from: portalEnd + 1, to: stmtEnd };
}
