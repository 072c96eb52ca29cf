// On-disk encoding of the Raft log store: key layout and checksummed values.
//
// Every value is framed as
//
//   [u32 BE payload length][u32 BE CRC32 of the payload][msgpack payload]
//
// The length lets us tell a truncated value (a torn or clipped write) from a
// flipped bit, and the CRC catches corruption that msgpack would happily decode
// into a different, plausible-looking entry. Payloads are positional arrays, not
// maps: smaller, and a field can never be silently missing.

import { crc32 } from 'node:zlib';
import { Packr } from 'msgpackr';
import type { ConfState, Entry, HardState, Snapshot } from '../core/types.js';
import { EntryType } from '../core/types.js';
import { CorruptStorageError } from './storage.js';

/** The format this build writes. Bump it (and keep a reader for the old one) when the layout changes. */
export const FORMAT_VERSION = 1;

export const FORMAT_VERSION_KEY = 'v';
export const HARD_STATE_KEY = 'h';
export const SNAPSHOT_KEY = 's';
/** Entry keys are 'e:' + 16 zero-padded decimal digits, so byte order equals index order. */
export const ENTRY_KEY_PREFIX = 'e:';
const ENTRY_INDEX_DIGITS = 16;
/** Upper bound for an iterator over every entry key (';' sorts right after ':'). */
export const ENTRY_KEY_END = 'e;';

const FRAME_HEADER_BYTES = 8;

// useRecords: false keeps the payload plain msgpack (no msgpackr record extension),
// so the format does not depend on msgpackr's structure-sharing state.
const packr = new Packr({ useRecords: false });

export function entryKey(index: number): string {
  if (!Number.isSafeInteger(index) || index < 0 || index >= 10 ** ENTRY_INDEX_DIGITS) {
    throw new Error(`entryKey: index ${index} out of range`);
  }
  return ENTRY_KEY_PREFIX + String(index).padStart(ENTRY_INDEX_DIGITS, '0');
}

/** The index a key names, or undefined if it is not a well-formed entry key. */
export function parseEntryKey(key: string): number | undefined {
  if (!key.startsWith(ENTRY_KEY_PREFIX)) return undefined;
  const digits = key.slice(ENTRY_KEY_PREFIX.length);
  if (digits.length !== ENTRY_INDEX_DIGITS || !/^[0-9]+$/.test(digits)) return undefined;
  return Number(digits);
}

function frame(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_BYTES + payload.byteLength);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  view.setUint32(0, payload.byteLength);
  view.setUint32(4, crc32(payload));
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

/** Checks length and CRC, then decodes the msgpack payload. Throws CorruptStorageError naming `where`. */
function unframe(where: string, value: Uint8Array): unknown {
  if (value.byteLength < FRAME_HEADER_BYTES) {
    throw new CorruptStorageError(where, `truncated value: ${value.byteLength} bytes, shorter than the ${FRAME_HEADER_BYTES}-byte header`);
  }
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  const payloadBytes = view.getUint32(0);
  const foundBytes = value.byteLength - FRAME_HEADER_BYTES;
  if (foundBytes < payloadBytes) {
    throw new CorruptStorageError(where, `truncated value: header says ${payloadBytes} payload bytes, found ${foundBytes}`);
  }
  if (foundBytes > payloadBytes) {
    throw new CorruptStorageError(where, `trailing bytes: header says ${payloadBytes} payload bytes, found ${foundBytes}`);
  }
  const payload = value.subarray(FRAME_HEADER_BYTES);
  const storedCrc = view.getUint32(4);
  const actualCrc = crc32(payload);
  if (storedCrc !== actualCrc) {
    throw new CorruptStorageError(where, `checksum mismatch: stored crc32 ${hex32(storedCrc)}, computed ${hex32(actualCrc)}`);
  }
  try {
    return packr.unpack(payload);
  } catch (err) {
    // A valid CRC over undecodable bytes means a writer bug, still corruption to us.
    throw new CorruptStorageError(where, `undecodable payload: ${(err as Error).message}`);
  }
}

function hex32(n: number): string {
  return '0x' + n.toString(16).padStart(8, '0');
}

// --- shape checks on decoded payloads -------------------------------------------

function malformed(where: string, what: string): CorruptStorageError {
  return new CorruptStorageError(where, `malformed value: ${what}`);
}

function tuple(where: string, v: unknown, length: number): unknown[] {
  if (!Array.isArray(v) || v.length !== length) throw malformed(where, `expected an array of ${length} fields`);
  return v;
}

function uint(where: string, field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw malformed(where, `${field} is not a non-negative integer`);
  return v;
}

function str(where: string, field: string, v: unknown): string {
  if (typeof v !== 'string') throw malformed(where, `${field} is not a string`);
  return v;
}

function bytes(where: string, field: string, v: unknown): Uint8Array {
  if (!(v instanceof Uint8Array)) throw malformed(where, `${field} is not binary`);
  // msgpackr hands back a Buffer view; callers (and deepStrictEqual) expect a plain Uint8Array.
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

function strings(where: string, field: string, v: unknown): string[] {
  if (!Array.isArray(v)) throw malformed(where, `${field} is not an array`);
  return v.map((s, i) => str(where, `${field}[${i}]`, s));
}

// --- the value types ---------------------------------------------------------------

export function encodeEntry(e: Entry): Uint8Array {
  return frame(packr.pack([e.term, e.index, e.type, e.data]));
}

export function decodeEntry(where: string, value: Uint8Array): Entry {
  const [term, index, type, data] = tuple(where, unframe(where, value), 4);
  const t = uint(where, 'type', type);
  if (t !== EntryType.Normal && t !== EntryType.ConfChange) throw malformed(where, `unknown entry type ${t}`);
  return { term: uint(where, 'term', term), index: uint(where, 'index', index), type: t, data: bytes(where, 'data', data) };
}

export function encodeHardState(hs: HardState): Uint8Array {
  return frame(packr.pack([hs.term, hs.vote, hs.commit]));
}

export function decodeHardState(where: string, value: Uint8Array): HardState {
  const [term, vote, commit] = tuple(where, unframe(where, value), 3);
  return { term: uint(where, 'term', term), vote: str(where, 'vote', vote), commit: uint(where, 'commit', commit) };
}

export function encodeSnapshot(s: Snapshot): Uint8Array {
  const { index, term, conf } = s.meta;
  return frame(packr.pack([index, term, conf.voters, conf.learners, s.data]));
}

export function decodeSnapshot(where: string, value: Uint8Array): Snapshot {
  const [index, term, voters, learners, data] = tuple(where, unframe(where, value), 5);
  const conf: ConfState = { voters: strings(where, 'voters', voters), learners: strings(where, 'learners', learners) };
  return { meta: { index: uint(where, 'index', index), term: uint(where, 'term', term), conf }, data: bytes(where, 'data', data) };
}

export function encodeFormatVersion(version: number): Uint8Array {
  return frame(packr.pack([version]));
}

export function decodeFormatVersion(where: string, value: Uint8Array): number {
  const [version] = tuple(where, unframe(where, value), 1);
  return uint(where, 'version', version);
}
