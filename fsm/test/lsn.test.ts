import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compareLsn, formatLsn, lsnDiffBytes, normalizeLsn, parseLsn } from '../lsn.js';

test('LSNs: pg_lsn text form, normalized, compared as 64-bit positions', () => {
  assert.equal(parseLsn('0/3000148'), 0x3000148n);
  assert.equal(parseLsn('16/B374D848'), (0x16n << 32n) | 0xb374d848n);
  assert.equal(normalizeLsn('00000000/0300014a'), '0/300014A');
  assert.equal(normalizeLsn('FFFFFFFF/FFFFFFFF'), 'FFFFFFFF/FFFFFFFF');
  for (const bad of ['', '0', '0/', '/0', '0/123456789', 'g/0', '0/0/0', ' 0/0', '-1/0']) assert.equal(parseLsn(bad), null, bad);
  // String order is wrong; compareLsn is right.
  assert.ok('0/A' > '0/10');
  assert.equal(compareLsn('0/A', '0/10'), -1);
  assert.equal(compareLsn('1/0', '0/FFFFFFFF'), 1);
  assert.equal(compareLsn('0/5', '0/5'), 0);
  assert.equal(lsnDiffBytes('1/0', '0/FFFFFFFF'), 1n);
  assert.throws(() => compareLsn('x', '0/0'), TypeError);
  assert.throws(() => formatLsn(1n << 64n), RangeError);
});

test('LSNs: format/parse round trip beyond 2^53, and order agrees with bigint order', () => {
  const pos = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
  fc.assert(
    fc.property(pos, pos, (a, b) => {
      assert.equal(parseLsn(formatLsn(a)), a);
      assert.equal(compareLsn(formatLsn(a), formatLsn(b)), a < b ? -1 : a > b ? 1 : 0);
    }),
    { numRuns: 300 },
  );
});
