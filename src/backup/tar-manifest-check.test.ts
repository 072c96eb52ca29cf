// The tar-against-backup_manifest check on hand-made archives: a matching one
// passes however its bytes are split; a flipped byte, a wrong size, a missing
// and an extra file are named; pg_wal is left out; a pax long name is checked
// by its path; a damaged header and an archive cut inside an entry are errors.
// (A real backup is checked in pg-manifest-check.test.ts.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { manifestFor } from '../../test/helpers/pg-manifest.js';
import { parsePgManifest } from './pg-manifest-check.js';
import { TarCheckFormatError, TarManifestCheck } from './tar-manifest-check.js';

/** One ustar header block for a regular file (type '0'), a directory ('5') or a pax record ('x'). */
function header(name: string, size: number, type: '0' | '5' | 'x'): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write('0000600\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  h.write('00000000000\0', 136);
  h.write(type, 156);
  h.write('ustar\x0000', 257, 'latin1');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}

function pad(data: Buffer): Buffer {
  return Buffer.concat([data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}

function tarOf(files: Record<string, Buffer>, opts: { paxNames?: boolean; end?: boolean } = {}): Buffer {
  const blocks: Buffer[] = [header('base/', 0, '5')];
  for (const [name, data] of Object.entries(files)) {
    if (opts.paxNames === true) {
      const rec = `path=${name}\n`;
      let len = rec.length + 3;
      if (`${len} ${rec}`.length !== len) len = `${len} ${rec}`.length;
      const pax = Buffer.from(`${len} ${rec}`);
      blocks.push(header('PaxHeader', pax.length, 'x'), pad(pax), header('placeholder-name', data.length, '0'), pad(data));
    } else blocks.push(header(name, data.length, '0'), pad(data));
  }
  if (opts.end !== false) blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

const FILES: Record<string, Buffer> = {
  PG_VERSION: Buffer.from('17\n'),
  'base/1/1259': Buffer.alloc(3 * 8192 + 17, 7),
  'base/5/16384': Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 31) & 0xff)),
  'global/1262': Buffer.alloc(0),
};
const MANIFEST = parsePgManifest(manifestFor(FILES), 'test manifest');

function check(tar: Buffer, chunkBytes = tar.length): ReturnType<TarManifestCheck['finish']> {
  const c = new TarManifestCheck(MANIFEST);
  for (let off = 0; off < tar.length; off += chunkBytes) c.write(tar.subarray(off, off + chunkBytes));
  return c.finish();
}

test('a matching archive passes, split anywhere; pg_wal is left out; pax paths are read', () => {
  const tar = tarOf({ ...FILES, 'pg_wal/000000010000000000000002': Buffer.alloc(1000, 1) });
  for (const chunk of [tar.length, 1, 7, 511, 512, 513, 4096]) {
    const r = check(tar, chunk);
    assert.deepEqual(r.problems, [], `chunks of ${chunk}`);
    assert.equal(r.files, 4);
    assert.equal(r.checksummedBytes, 3 * 8192 + 17 + 300_000 + 3);
  }
  assert.deepEqual(check(tarOf(FILES, { paxNames: true }), 100).problems, []);
  assert.deepEqual(check(tarOf(FILES, { end: false })).problems, [], 'the end-of-archive blocks are optional');
});

test('a flipped byte, a wrong size, a missing and an extra file are named', () => {
  const flipped = Buffer.from(FILES['base/5/16384']!);
  flipped[1234] = flipped[1234]! ^ 1;
  const { PG_VERSION: _gone, ...rest } = FILES;
  const r = check(tarOf({ ...rest, 'base/5/16384': flipped, 'base/1/1259': Buffer.alloc(10), stray: Buffer.from('x') }), 1000);
  assert.deepEqual(r.problems.map((p) => [p.kind, p.path]).sort(), [
    ['checksum', 'base/5/16384'],
    ['extra', 'stray'],
    ['missing', 'PG_VERSION'],
    ['size', 'base/1/1259'],
  ]);
  assert.match(r.problems.find((p) => p.kind === 'checksum')!.detail, /^"base\/5\/16384" has CRC32C checksum [0-9a-f]{8}, the manifest says [0-9a-f]{8}$/);
});

test('a damaged header and an archive cut inside an entry are errors, not verdicts on files', () => {
  const tar = tarOf(FILES);
  const damaged = Buffer.from(tar);
  damaged[512 + 3] = damaged[512 + 3]! ^ 1; // the second header's name
  assert.throws(
    () => check(damaged),
    (e: Error) => e instanceof TarCheckFormatError && /wrong checksum/.test(e.message),
  );
  assert.throws(
    () => check(tar.subarray(0, 512 * 3 + 100)),
    (e: Error) => e instanceof TarCheckFormatError && /ended inside an entry/.test(e.message),
  );
});
