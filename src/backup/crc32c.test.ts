// CRC-32C against published test vectors (RFC 3720 B.4, the iSCSI
// polynomial Postgres uses) and against a bit-at-a-time reference on random
// data split at random points, so the sliced tables and the incremental
// update are both covered.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';

import { Crc32c, crc32c, crc32cHex } from './crc32c.js';

/** The definition, one bit at a time: slow and obviously right. */
function reference(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of data) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

test('crc32c: the check value and the RFC 3720 vectors', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
  assert.equal(crc32c(Buffer.alloc(0)), 0);
  assert.equal(crc32c(Buffer.alloc(32, 0x00)), 0x8a9136aa);
  assert.equal(crc32c(Buffer.alloc(32, 0xff)), 0x62a8ab43);
  assert.equal(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => i))), 0x46dd794e);
  assert.equal(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i))), 0x113fdb5c);
  // An iSCSI SCSI Read (10) command PDU.
  const pdu = Buffer.from(
    '01c00000' + '00000000'.repeat(3) + '14000000' + '00000400' + '00000014' + '00000018' + '28000000' + '00000000' + '02000000' + '00000000',
    'hex',
  );
  assert.equal(pdu.length, 48);
  assert.equal(crc32c(pdu), 0xd9963a56);
});

test('crc32c: the manifest spelling is the value in little-endian byte order', () => {
  assert.equal(crc32cHex(0xe3069283), '839206e3');
  assert.equal(new Crc32c().update(Buffer.from('1234')).update(Buffer.from('56789')).hex(), '839206e3');
});

test('crc32c: equals the bit-at-a-time definition on random data, fed whole or in random pieces', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(300), { maxLength: 6 }), (data, cuts) => {
      const want = reference(data);
      assert.equal(crc32c(data), want);
      const c = new Crc32c();
      let at = 0;
      for (const cut of [...cuts].sort((a, b) => a - b)) {
        const to = Math.min(cut, data.length);
        c.update(data.subarray(at, to));
        at = to;
      }
      c.update(data.subarray(at));
      assert.equal(c.value(), want);
    }),
    { numRuns: 500 },
  );
});
