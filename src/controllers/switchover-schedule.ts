// `ogel switchover --scheduled TIME`: the time format and the bounds shared by the
// admin API (which checks a request against its own clock), the CLI (which checks
// only the format, so two machines' clocks never disagree about one request) and
// the failover controller (which runs the switchover when the leader's clock
// reaches it). Pure: the caller passes the clock.
//
// The instant is wall-clock time, compared on whichever node leads when it comes:
// clock skew between the nodes shifts it by that skew. That is fine for a
// maintenance window (unlike a lease, I5, where it would risk two writers).

/** A requested time this far in the past is still taken (the request took a moment to arrive). */
export const SCHEDULE_PAST_TOLERANCE_MS = 5_000;
/** Further ahead than this is surely a typo (a wrong year); Patroni has no bound, we prefer to ask. */
export const SCHEDULE_AHEAD_MAX_MS = 30 * 24 * 3_600_000;
/**
 * A controller that first sees a schedule more than this past its time (no leader,
 * or the whole cluster down, through the window) drops it with a warning instead
 * of switching over: the operator's maintenance window has passed.
 */
export const SCHEDULE_LATE_MAX_MS = 5 * 60_000;

export const SCHEDULED_AT_HINT = 'ISO 8601 with a time zone, e.g. 2026-11-21T10:00:00Z or 2026-11-21T11:00:00+01:00';

// Strict on purpose: Date.parse also takes "2026-02-30" (rolled over to March 2)
// and zone-less times (read in the parsing machine's zone, which differs between
// the operator's laptop and the daemon).
const ISO_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|([+-])(\d{2}):(\d{2}))$/;

/** Milliseconds since the epoch of an ISO 8601 instant with a time zone; a string saying what is wrong otherwise. */
export function parseIsoInstant(text: string): number | { error: string } {
  const m = ISO_RE.exec(text);
  if (m === null) {
    const why = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(text)
      ? 'it has no time zone (add Z for UTC, or an offset like +01:00)'
      : 'it is not an ISO 8601 date and time';
    return { error: `${JSON.stringify(text)}: ${why}` };
  }
  const [year, month, day, hour, minute] = [m[1], m[2], m[3], m[4], m[5]].map(Number) as [number, number, number, number, number];
  const second = m[6] === undefined ? 0 : Number(m[6]);
  const ms = m[7] === undefined ? 0 : Math.floor(Number(`0.${m[7]}`) * 1000);
  const daysInMonth = month >= 1 && month <= 12 ? new Date(Date.UTC(year, month, 0)).getUTCDate() : 0;
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 59) {
    return { error: `${JSON.stringify(text)}: there is no such date or time` };
  }
  let offsetMin = 0;
  if (m[8] !== 'Z') {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return { error: `${JSON.stringify(text)}: the offset ${m[8]} is not a time zone offset` };
    offsetMin = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  // Date.UTC maps years 0-99 to 1900-1999; the regex allows them, so set the year explicitly.
  const d = new Date(Date.UTC(2000, month - 1, day, hour, minute, second, ms));
  d.setUTCFullYear(year);
  return d.getTime() - offsetMin * 60_000;
}

export type ScheduleCheck = { ok: true; notBeforeMs: number } | { ok: false; message: string };

/** The API's check of a requested switchover time against its own clock. */
export function checkScheduledAt(text: string, nowMs: number): ScheduleCheck {
  const at = parseIsoInstant(text);
  if (typeof at !== 'number') return { ok: false, message: `${at.error}; expected ${SCHEDULED_AT_HINT}` };
  if (at < nowMs - SCHEDULE_PAST_TOLERANCE_MS) {
    return {
      ok: false,
      message: `${JSON.stringify(text)} is ${describeDurationMs(nowMs - at)} in the past (now is ${new Date(nowMs).toISOString()}); for a switchover now, leave out scheduledAt`,
    };
  }
  if (at > nowMs + SCHEDULE_AHEAD_MAX_MS) {
    return {
      ok: false,
      message: `${JSON.stringify(text)} is ${describeDurationMs(at - nowMs)} ahead; at most ${SCHEDULE_AHEAD_MAX_MS / 86_400_000} days ahead is accepted`,
    };
  }
  return { ok: true, notBeforeMs: at };
}

/** '45s', '5m 3s', '2h 5m', '3d 4h': the two largest units, for messages and `ogel status`. */
export function describeDurationMs(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const units: [string, number][] = [
    ['d', Math.floor(s / 86_400)],
    ['h', Math.floor(s / 3_600) % 24],
    ['m', Math.floor(s / 60) % 60],
    ['s', s % 60],
  ];
  const first = units.findIndex(([, n]) => n > 0);
  if (first === -1) return '0s';
  return units
    .slice(first, first + 2)
    .filter(([, n], i) => i === 0 || n > 0)
    .map(([u, n]) => `${n}${u}`)
    .join(' ');
}
