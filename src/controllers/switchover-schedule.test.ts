// The scheduled-switchover time: strict ISO 8601 with a time zone, the API's
// bounds against its clock, and the durations status prints.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SCHEDULE_AHEAD_MAX_MS, SCHEDULE_PAST_TOLERANCE_MS, checkScheduledAt, describeDurationMs, parseIsoInstant } from './switchover-schedule.js';

test('parseIsoInstant: UTC, offsets and fractions; refuses zone-less, impossible and loose forms', () => {
  const at = Date.UTC(2026, 10, 21, 10);
  assert.equal(parseIsoInstant('2026-11-21T10:00:00Z'), at);
  assert.equal(parseIsoInstant('2026-11-21T10:00Z'), at);
  assert.equal(parseIsoInstant('2026-11-21T11:00:00+01:00'), at);
  assert.equal(parseIsoInstant('2026-11-21T05:30:00-04:30'), at);
  assert.equal(parseIsoInstant('2026-11-21T10:00:00.250Z'), at + 250);
  assert.equal(parseIsoInstant('2026-11-21T10:00:00.123456789Z'), at + 123);
  assert.equal(parseIsoInstant('2028-02-29T00:00:00Z'), Date.UTC(2028, 1, 29), 'a leap day');
  const bad: [string, RegExp][] = [
    ['2026-11-21T10:00:00', /no time zone/],
    ['2026-11-21T10:00', /no time zone/],
    ['2026-11-21 10:00:00Z', /not an ISO 8601 date and time/],
    ['2026-11-21', /not an ISO 8601/],
    ['now', /not an ISO 8601/],
    ['1795255200000', /not an ISO 8601/],
    ['2026-11-21t10:00:00z', /not an ISO 8601/],
    ['2026-02-30T10:00:00Z', /no such date or time/],
    ['2027-02-29T10:00:00Z', /no such date or time/],
    ['2026-13-01T10:00:00Z', /no such date or time/],
    ['2026-11-21T24:00:00Z', /no such date or time/],
    ['2026-11-21T10:60:00Z', /no such date or time/],
    ['2026-11-21T10:00:60Z', /no such date or time/],
    ['2026-11-21T10:00:00+25:00', /offset \+25:00 is not a time zone offset/],
  ];
  for (const [text, re] of bad) {
    const r = parseIsoInstant(text);
    assert.ok(typeof r !== 'number', `${text} should be refused`);
    assert.match(r.error, re, text);
    assert.ok(r.error.startsWith(JSON.stringify(text)), 'the message names the value');
  }
});

test('checkScheduledAt: a few seconds of the past are fine, more is refused, and so is more than 30 days ahead', () => {
  const now = Date.UTC(2026, 10, 21, 9, 55);
  assert.deepEqual(checkScheduledAt('2026-11-21T10:00:00Z', now), { ok: true, notBeforeMs: Date.UTC(2026, 10, 21, 10) });
  const justPast = new Date(now - SCHEDULE_PAST_TOLERANCE_MS + 1000).toISOString();
  assert.equal(checkScheduledAt(justPast, now).ok, true);
  const past = checkScheduledAt('2026-11-21T09:50:00Z', now);
  assert.ok(!past.ok);
  assert.match(past.message, /^"2026-11-21T09:50:00Z" is 5m in the past \(now is 2026-11-21T09:55:00\.000Z\); for a switchover now, leave out scheduledAt$/);
  const far = checkScheduledAt(new Date(now + SCHEDULE_AHEAD_MAX_MS + 60_000).toISOString(), now);
  assert.ok(!far.ok);
  assert.match(far.message, /is 30d ahead; at most 30 days ahead is accepted/);
  assert.equal(checkScheduledAt(new Date(now + SCHEDULE_AHEAD_MAX_MS).toISOString(), now).ok, true);
  const zoneless = checkScheduledAt('2026-11-21T10:00:00', now);
  assert.ok(!zoneless.ok);
  assert.match(zoneless.message, /no time zone.*expected ISO 8601 with a time zone, e\.g\. 2026-11-21T10:00:00Z/);
});

test('describeDurationMs: the two largest units', () => {
  assert.equal(describeDurationMs(0), '0s');
  assert.equal(describeDurationMs(999), '0s');
  assert.equal(describeDurationMs(45_000), '45s');
  assert.equal(describeDurationMs(303_000), '5m 3s');
  assert.equal(describeDurationMs(300_000), '5m');
  assert.equal(describeDurationMs(7_500_000), '2h 5m');
  assert.equal(describeDurationMs(3 * 86_400_000 + 4 * 3_600_000 + 59_000), '3d 4h');
  assert.equal(describeDurationMs(86_400_000 + 30_000), '1d', 'a zero second unit is left out');
  assert.equal(describeDurationMs(-5), '0s');
});
