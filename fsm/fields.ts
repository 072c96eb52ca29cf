// Field readers for untrusted input (API bodies, decoded log entries, snapshots).
//
// Each reader checks one field and returns a clean, normalized value, or throws a
// FieldError naming the field path, the value it got and what would be valid. The
// public entry points (validateCommand, decodeSnapshot) catch FieldError; nothing
// else is caught. Only own properties are read, and unknown fields are errors, so
// a typo ('pasword', 'leaseDurationMS') is reported rather than ignored.

import type { ErrorCode } from './errors.js';
import { normalizeLsn, type Lsn } from './lsn.js';

export class FieldError extends Error {
  constructor(
    readonly field: string,
    readonly detail: string,
    readonly code: ErrorCode = 'invalid_command',
  ) {
    super(field ? `${field}: ${detail}` : detail);
    this.name = 'FieldError';
  }
}

/** A short rendering of a value for an error message. */
export function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (typeof v === 'string') return JSON.stringify(v.length > 48 ? v.slice(0, 48) + '…' : v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (typeof v === 'bigint') return `${v} (a 64-bit integer)`;
  if (v instanceof Uint8Array) return `binary data (${v.byteLength} bytes)`;
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v !== 'object') return `a ${typeof v}`;
  if (isPlainObject(v)) return 'an object';
  const ctor: unknown = (Object.getPrototypeOf(v) as { constructor?: unknown } | null)?.constructor;
  return typeof ctor === 'function' && ctor.name ? `a ${ctor.name} object` : 'an object';
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

// --- formats ------------------------------------------------------------------------

/** Ids of members, tenants, backups and computes: lowercase, starts with a letter or digit. */
export const ID_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const ID_DESC = '1-63 characters of a-z, 0-9, "_" and "-", starting with a letter or digit (e.g. "n1")';

/** An unquoted Postgres identifier in lowercase. */
export const PG_IDENT_RE = /^[a-z_][a-z0-9_]{0,62}$/;
const PG_IDENT_DESC = 'a Postgres identifier: 1-63 characters of a-z, 0-9 and "_", not starting with a digit';

const HOST_LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const ADDRESS_RE = new RegExp(`^(?:(${HOST_LABEL}(?:\\.${HOST_LABEL})*)|\\[([0-9A-Fa-f:.]{2,45})\\]):([1-9][0-9]{0,4})$`);
const ADDRESS_DESC =
  'host:port, where host is a DNS name or IPv4 address or [IPv6] address and port is 1..65535 (e.g. "10.0.0.1:5432", "n1.railway.internal:7000", "[::1]:5432")';

const CHECKSUM_RE = /^[a-z0-9]{2,16}:[0-9a-f]{8,128}$/;
const CHECKSUM_DESC = '"algorithm:hex" in lowercase, e.g. "sha256:9f86d08..."';

// S3's safe characters, which are also safe on a local filesystem.
const OBJECT_KEY_RE = /^[A-Za-z0-9!_.*'()/-]{1,1024}$/;
const OBJECT_KEY_DESC = "1-1024 characters of A-Z a-z 0-9 ! _ . * ' ( ) / -, relative (no leading '/'), with no empty, '.' or '..' path segment";

const OBJECT_PREFIX_DESC = `an object key (${OBJECT_KEY_DESC}), optionally followed by "/" to name a prefix (e.g. "c1/basebackups/b1/")`;

export const WAL_NAME_RE = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})(\.partial)?$/;
const WAL_NAME_DESC = '24 uppercase hex digits (timeline, log, segment), optionally followed by ".partial", e.g. "000000010000000000000003"';

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

// Lone surrogates do not survive UTF-8 (msgpack) and would decode differently from
// what was applied; C0 controls and DEL have no business in names or reasons.
const BAD_TEXT_RE = /[\u0000-\u001f\u007f]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function isAddress(s: string): boolean {
  const m = ADDRESS_RE.exec(s);
  return m !== null && Number(m[3]) <= 65535 && s.length <= 300;
}

export function isObjectKey(s: string): boolean {
  return OBJECT_KEY_RE.test(s) && s.split('/').every((seg) => seg !== '' && seg !== '.' && seg !== '..');
}

// --- the reader ---------------------------------------------------------------------

export interface TextOptions {
  maxChars: number;
  /** Default 1. */
  minChars?: number;
}

export class Fields {
  private constructor(
    private readonly o: Record<string, unknown>,
    readonly path: string,
  ) {}

  /**
   * Reads `v` as an object with only the `allowed` keys. `hints` turns a known
   * mistaken key into a specific message (e.g. password -> send a SCRAM verifier).
   */
  static of(v: unknown, path: string, allowed: readonly string[], hints: Readonly<Record<string, string>> = {}): Fields {
    if (!isPlainObject(v)) throw new FieldError(path, `expected an object, got ${show(v)}`);
    for (const k of Object.keys(v)) {
      if (allowed.includes(k)) continue;
      const hint = Object.hasOwn(hints, k) ? hints[k] : undefined;
      const at = join(path, k);
      if (hint !== undefined) throw new FieldError(at, hint);
      throw new FieldError(at, `unknown field; expected only ${allowed.join(', ')}`);
    }
    return new Fields(v, path);
  }

  at(key: string): string {
    return join(this.path, key);
  }

  has(key: string): boolean {
    return Object.hasOwn(this.o, key) && this.o[key] !== undefined;
  }

  raw(key: string, expected: string): unknown {
    if (!this.has(key)) throw new FieldError(this.at(key), `missing; expected ${expected}`);
    return this.o[key];
  }

  fail(key: string, got: unknown, expected: string, code?: ErrorCode): never {
    throw new FieldError(this.at(key), `${show(got)} is not valid; expected ${expected}`, code);
  }

  obj(key: string, allowed: readonly string[], hints?: Readonly<Record<string, string>>): Fields {
    return Fields.of(this.raw(key, `an object with ${allowed.join(', ')}`), this.at(key), allowed, hints);
  }

  array(key: string, maxItems: number): unknown[] {
    const v = this.raw(key, `an array of at most ${maxItems} items`);
    if (!Array.isArray(v)) this.fail(key, v, `an array of at most ${maxItems} items`);
    if (v.length > maxItems) throw new FieldError(this.at(key), `has ${v.length} items; at most ${maxItems} are allowed`);
    return v;
  }

  bool(key: string): boolean {
    const v = this.raw(key, 'true or false');
    if (typeof v !== 'boolean') this.fail(key, v, 'true or false');
    return v;
  }

  int(key: string, min: number, max: number, unit = ''): number {
    const expected = `an integer from ${min} to ${max}${unit ? ' ' + unit : ''}`;
    const v = this.raw(key, expected);
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) this.fail(key, v, expected);
    return v === 0 ? 0 : v; // -0 -> 0: one value, one encoding
  }

  /** A proposer's time: milliseconds since the epoch as a non-negative safe integer. */
  timeMs(key: string): number {
    return this.int(key, 0, Number.MAX_SAFE_INTEGER, '(milliseconds since the epoch, set by the proposer)');
  }

  text(key: string, opts: TextOptions): string {
    const min = opts.minChars ?? 1;
    const expected = `a string of ${min}-${opts.maxChars} characters without control characters`;
    const v = this.raw(key, expected);
    if (typeof v !== 'string' || v.length < min || v.length > opts.maxChars || BAD_TEXT_RE.test(v)) this.fail(key, v, expected);
    return v;
  }

  oneOf<T extends string>(key: string, values: readonly T[]): T {
    const expected = `one of ${values.map((x) => `"${x}"`).join(', ')}`;
    const v = this.raw(key, expected);
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) this.fail(key, v, expected);
    return v as T;
  }

  id(key: string): string {
    const v = this.raw(key, ID_DESC);
    if (typeof v !== 'string' || !ID_RE.test(v)) this.fail(key, v, ID_DESC);
    return v;
  }

  pgIdent(key: string): string {
    const v = this.raw(key, PG_IDENT_DESC);
    if (typeof v !== 'string' || !PG_IDENT_RE.test(v)) this.fail(key, v, PG_IDENT_DESC);
    return v;
  }

  lsn(key: string): Lsn {
    const expected = `a Postgres LSN like "0/3000148" (two hex numbers of up to 8 digits)`;
    const v = this.raw(key, expected);
    const n = typeof v === 'string' ? normalizeLsn(v) : null;
    if (n === null) this.fail(key, v, expected);
    return n;
  }

  address(key: string): string {
    const v = this.raw(key, ADDRESS_DESC);
    if (typeof v !== 'string' || !isAddress(v)) this.fail(key, v, ADDRESS_DESC);
    return v;
  }

  checksum(key: string): string {
    const v = this.raw(key, CHECKSUM_DESC);
    if (typeof v !== 'string' || !CHECKSUM_RE.test(v)) this.fail(key, v, CHECKSUM_DESC);
    return v;
  }

  objectKey(key: string): string {
    const v = this.raw(key, OBJECT_KEY_DESC);
    if (typeof v !== 'string' || !isObjectKey(v)) this.fail(key, v, OBJECT_KEY_DESC);
    return v;
  }

  /** An object key or a prefix ending in '/' (a backup's objects; a version-1 backup's one object key). */
  objectPrefix(key: string): string {
    const v = this.raw(key, OBJECT_PREFIX_DESC);
    if (typeof v !== 'string' || !isObjectKey(v.endsWith('/') ? v.slice(0, -1) : v)) this.fail(key, v, OBJECT_PREFIX_DESC);
    return v;
  }

  walName(key: string): string {
    const v = this.raw(key, WAL_NAME_DESC);
    if (typeof v !== 'string' || !WAL_NAME_RE.test(v)) this.fail(key, v, WAL_NAME_DESC);
    return v;
  }

  /** Canonical padded base64 decoding to minBytes..maxBytes bytes. */
  base64(key: string, minBytes: number, maxBytes: number): string {
    const size = minBytes === maxBytes ? `${minBytes}` : `${minBytes}-${maxBytes}`;
    const expected = `standard padded base64 of ${size} bytes`;
    const v = this.raw(key, expected);
    if (typeof v !== 'string' || v.length > 4 * Math.ceil(maxBytes / 3) || !BASE64_RE.test(v)) this.fail(key, v, expected);
    const bytes = Buffer.from(v, 'base64');
    if (bytes.byteLength < minBytes || bytes.byteLength > maxBytes || bytes.toString('base64') !== v) this.fail(key, v, expected);
    return v;
  }

  /** `read(key)` when the field is present and not null; null when absent or null. */
  nullable<T>(key: string, read: (key: string) => T): T | null {
    if (!this.has(key) || this.o[key] === null) return null;
    return read(key);
  }

  /** `read(key)` when the field is present; undefined when absent. */
  optional<T>(key: string, read: (key: string) => T): T | undefined {
    return this.has(key) ? read(key) : undefined;
  }

  /** Like optional, but an explicit null is kept as null (e.g. "clear the address"). */
  optionalNullable<T>(key: string, read: (key: string) => T): T | null | undefined {
    if (!this.has(key)) return undefined;
    if (this.o[key] === null) return null;
    return read(key);
  }
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

/** Reads the items of an array with `read(fields-of-item, path)`. */
export function items<T>(arr: unknown[], path: string, read: (v: unknown, path: string) => T): T[] {
  return arr.map((v, i) => read(v, `${path}[${i}]`));
}
