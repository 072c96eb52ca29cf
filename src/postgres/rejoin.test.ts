import assert from 'node:assert/strict';
import { test } from 'node:test';
import { divergence, parseTimelineHistory, RejoinError, type UpstreamTimeline } from './rejoin.js';

const HISTORY = '1\t0/3000148\tno recovery target specified\n\n2\t0/5000000\tno recovery target specified\n';

test('parseTimelineHistory reads the switch points, skipping blanks and comments', () => {
  assert.deepEqual(parseTimelineHistory(`# comment\n${HISTORY}`), [
    { timeline: 1, switchpoint: '0/3000148' },
    { timeline: 2, switchpoint: '0/5000000' },
  ]);
  assert.deepEqual(parseTimelineHistory(''), []);
});

test('parseTimelineHistory refuses garbage and histories that go backwards', () => {
  assert.throws(() => parseTimelineHistory('x\ty\n'), RejoinError);
  assert.throws(() => parseTimelineHistory('2\t0/5\n1\t0/6\n'), /goes backwards/);
  assert.throws(() => parseTimelineHistory('1\t0/6\n2\t0/5\n'), /goes backwards/);
});

test("divergence: Postgres's rule (switchpoint < end of local WAL means diverged)", () => {
  const up: UpstreamTimeline = { systemId: '7', timeline: 3, history: parseTimelineHistory(HISTORY) };
  // Same timeline: a standby behind or at the primary streams.
  assert.deepEqual(divergence({ systemId: '7', timeline: 3, endLsn: '0/9000000' }, up), { diverged: false });
  // Ended exactly at the fork (a clean shutdown that the new primary received): follows.
  assert.deepEqual(divergence({ systemId: '7', timeline: 1, endLsn: '0/3000148' }, up), { diverged: false });
  assert.deepEqual(divergence({ systemId: '7', timeline: 2, endLsn: '0/4000000' }, up), { diverged: false });
  // One byte past the fork: WAL the primary never had.
  const past = divergence({ systemId: '7', timeline: 1, endLsn: '0/3000149' }, up);
  assert.equal(past.diverged, true);
  assert.match(past.diverged ? past.reason : '', /past 0\/3000148 where the primary's timeline 2 forked off/);
  // Not in the history, newer than the primary, another system.
  assert.equal(divergence({ systemId: '7', timeline: 4, endLsn: '0/1' }, up).diverged, true);
  assert.equal(divergence({ systemId: '7', timeline: 5, endLsn: '0/1' }, { ...up, timeline: 6 }).diverged, true);
  assert.match(JSON.stringify(divergence({ systemId: '8', timeline: 3, endLsn: '0/1' }, up)), /another database system/);
});
