// Postgres log sequence numbers (LSNs).
//
// An LSN is a 64-bit byte position in the WAL, so it can exceed 2^53 and must not
// live in a JS number. The FSM stores it as a string in pg_lsn's own text form: two
// uppercase hex numbers without leading zeros, 'HI/LO' (e.g. '0/3000148',
// '16/B374D848'), exactly what `pg_current_wal_lsn()::text` prints. One value has
// one spelling (normalizeLsn), so encodings stay canonical. Compare with
// compareLsn, never with < on the strings ('0/A' > '0/10' as strings).

/** An LSN in canonical pg_lsn text form: 'HI/LO', uppercase hex, no leading zeros. */
export type Lsn = string;

export const LSN_ZERO: Lsn = '0/0';
export const LSN_MAX = (1n << 64n) - 1n;

const LSN_RE = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

/** The LSN's byte position, or null if `text` is not an LSN (Postgres accepts 1..8 hex digits per half). */
export function parseLsn(text: string): bigint | null {
  const m = LSN_RE.exec(text);
  if (!m) return null;
  return (BigInt('0x' + m[1]!) << 32n) | BigInt('0x' + m[2]!);
}

/** Canonical text for a byte position in 0..2^64-1. */
export function formatLsn(position: bigint): Lsn {
  if (position < 0n || position > LSN_MAX) throw new RangeError(`formatLsn: ${position} is outside 0..2^64-1`);
  return `${(position >> 32n).toString(16).toUpperCase()}/${(position & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** Canonical spelling of an LSN in any accepted spelling ('0/0300014a' -> '0/300014A'), or null. */
export function normalizeLsn(text: string): Lsn | null {
  const p = parseLsn(text);
  return p === null ? null : formatLsn(p);
}

function position(lsn: Lsn): bigint {
  const p = parseLsn(lsn);
  if (p === null) throw new TypeError(`not an LSN: ${JSON.stringify(lsn)}`);
  return p;
}

/** -1, 0 or 1 as a is before, equal to or after b. Throws TypeError on a non-LSN (a programmer error). */
export function compareLsn(a: Lsn, b: Lsn): -1 | 0 | 1 {
  const pa = position(a);
  const pb = position(b);
  return pa < pb ? -1 : pa > pb ? 1 : 0;
}

/** Bytes of WAL from `from` to `to` (negative when `to` is before `from`); e.g. replication lag. */
export function lsnDiffBytes(to: Lsn, from: Lsn): bigint {
  return position(to) - position(from);
}

export function maxLsn(a: Lsn, b: Lsn): Lsn {
  return compareLsn(a, b) >= 0 ? a : b;
}
