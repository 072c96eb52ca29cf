// Reads a restore target from the command line: an ISO 8601 time with any
// offset, an LSN, or a restore point name. Postgres's recovery_target_time
// rejects JavaScript's toISOString() form ('...Z'), so a time is handed to it
// as 'YYYY-MM-DD HH:MM:SS.ffffff+00' (storage-facts.md, section 6).

import { parseLsn } from '../../fsm/index.js';

const ISO_RE = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6}))?)?\s*(Z|z|UTC|[+-]\d{2}(?::?\d{2})?)$/;

export interface ParsedTime {
  /** Milliseconds since the epoch (sub-millisecond digits dropped). */
  atMs: number;
  /** The same instant to the microsecond, in the form recovery_target_time accepts. */
  pgText: string;
}

/** null with a reason when `text` is not an ISO 8601 time with an offset. */
export function parseTargetTime(text: string): ParsedTime | { error: string } {
  const m = ISO_RE.exec(text.trim());
  if (!m) {
    return {
      error: `${JSON.stringify(text)} is not an ISO 8601 time with an offset; write e.g. 2026-12-08T14:02:00Z, 2026-12-08 15:02:00.250+01:00 or 2026-12-08T14:02:00.123456-05`,
    };
  }
  const [y, mo, d, h, mi] = [1, 2, 3, 4, 5].map((i) => Number(m[i]));
  const s = Number(m[6] ?? '0');
  const micros = Number((m[7] ?? '').padEnd(6, '0'));
  const zone = m[8]!;
  let offsetMin = 0;
  if (!/^(Z|z|UTC)$/.test(zone)) {
    const z = /^([+-])(\d{2}):?(\d{2})?$/.exec(zone)!;
    offsetMin = (z[1] === '-' ? -1 : 1) * (Number(z[2]) * 60 + Number(z[3] ?? '0'));
  }
  const local = Date.UTC(y!, mo! - 1, d!, h!, mi!, s);
  const check = new Date(local);
  if (check.getUTCFullYear() !== y || check.getUTCMonth() !== mo! - 1 || check.getUTCDate() !== d || h! > 23 || mi! > 59 || s > 59) {
    return { error: `${JSON.stringify(text)} is not a valid date and time` };
  }
  const utcMs = local - offsetMin * 60_000;
  const u = new Date(utcMs);
  const p2 = (n: number) => String(n).padStart(2, '0');
  const pgText = `${u.getUTCFullYear()}-${p2(u.getUTCMonth() + 1)}-${p2(u.getUTCDate())} ${p2(u.getUTCHours())}:${p2(u.getUTCMinutes())}:${p2(u.getUTCSeconds())}.${String(micros).padStart(6, '0')}+00`;
  return { atMs: utcMs + Math.floor(micros / 1000), pgText };
}

export function parseTargetLsn(text: string): bigint | { error: string } {
  const v = parseLsn(text.trim());
  return v === null ? { error: `${JSON.stringify(text)} is not an LSN; write it as Postgres prints it, e.g. 0/3000148 or 16/B374D848` } : v;
}

/** Restore point names: what pg_create_restore_point takes (under 64 bytes), kept to a safe alphabet for object keys. */
export const RESTORE_POINT_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export function restorePointProblem(name: string): string | null {
  return RESTORE_POINT_RE.test(name)
    ? null
    : `${JSON.stringify(name)} is not a usable restore point name: 1 to 63 characters of letters, digits, '.', '_' and '-', starting with a letter or digit`;
}
