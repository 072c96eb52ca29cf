// The framer: the same messages whatever the chunking; limits refused from the
// header alone; views into the chunk when a message is whole in it.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Framer } from './framer.js';
import { checkFrontendMessage, parseStartupPacket } from './frontend.js';

function msg(type: string, body: Buffer): Buffer {
  const h = Buffer.alloc(5);
  h.write(type, 0, 'latin1');
  h.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([h, body]);
}

function frames(f: Framer, chunks: Buffer[]): string[] {
  const out: string[] = [];
  for (const c of chunks) {
    f.feed(c);
    while (f.next()) out.push(f.buf.subarray(f.start, f.end).toString('hex'));
  }
  return out;
}

describe('framer', () => {
  it('yields the same messages however the stream is split', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom('Q', 'd', 'S'), fc.uint8Array({ maxLength: 50 })), { maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (ms, cuts) => {
          const all = Buffer.concat(ms.map(([t, b]) => msg(t, Buffer.from(b))));
          const points = [...new Set(cuts.map((c) => c % (all.length + 1)))].sort((a, b) => a - b);
          const chunks: Buffer[] = [];
          let prev = 0;
          for (const p of [...points, all.length]) {
            chunks.push(all.subarray(prev, p));
            prev = p;
          }
          assert.deepEqual(
            frames(new Framer(1000), chunks),
            ms.map(([t, b]) => msg(t, Buffer.from(b)).toString('hex')),
          );
        },
      ),
    );
  });

  it('a whole message in a chunk is a view into it, not a copy', () => {
    const f = new Framer(1000);
    const chunk = Buffer.concat([msg('Q', Buffer.from('SELECT 1\0')), msg('S', Buffer.alloc(0))]);
    f.feed(chunk);
    assert.ok(f.next());
    assert.equal(f.buf, chunk);
    assert.ok(f.next());
    assert.equal(f.start, 14);
  });

  it('refuses a length over the limit or under 4 from the header alone', () => {
    const f = new Framer(100);
    f.feed(Buffer.from([0x51, 0x7f, 0xff, 0xff, 0xff]));
    assert.equal(f.next(), false);
    assert.match(f.error!, /exceeds the limit of 100 bytes/);
    const g = new Framer(100);
    g.feed(Buffer.from([0x51, 0, 0, 0, 3]));
    assert.equal(g.next(), false);
    assert.match(g.error!, /invalid length 3/);
  });

  it('a volatile chunk (a reused read buffer): split messages are kept as copies, whatever is read next', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom('D', 'C', 'Z'), fc.uint8Array({ maxLength: 60 })), { minLength: 1, maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (ms, cuts) => {
          const all = Buffer.concat(ms.map(([t, b]) => msg(t, Buffer.from(b))));
          const points = [...new Set(cuts.map((c) => c % (all.length + 1)))].sort((a, b) => a - b);
          const f = new Framer(1 << 20);
          const reused = Buffer.alloc(all.length);
          const out: string[] = [];
          let from = 0;
          for (const to of [...points, all.length]) {
            if (to <= from) continue;
            all.copy(reused, 0, from, to);
            f.feed(reused.subarray(0, to - from), true);
            while (f.next()) out.push(f.buf.subarray(f.start, f.end).toString('hex'));
            reused.fill(0xee); // the next read overwrites the buffer
            from = to;
          }
          assert.deepEqual(
            out,
            ms.map(([t, b]) => msg(t, Buffer.from(b)).toString('hex')),
          );
        },
      ),
    );
  });

  it('frontend checks: well-formed messages pass, malformed ones are named', () => {
    const q = msg('Q', Buffer.from('SELECT 1\0'));
    assert.equal(checkFrontendMessage(0x51, q, 0, q.length), null);
    const bad = msg('Q', Buffer.from('SELECT 1\0x'));
    assert.match(checkFrontendMessage(0x51, bad, 0, bad.length)!, /Query/);
    const unknown = msg('z', Buffer.alloc(0));
    assert.match(checkFrontendMessage(0x7a, unknown, 0, unknown.length)!, /invalid frontend message type 'z'/);
    const startup = Buffer.from('000000120003000075736572006170700000', 'hex');
    startup.writeInt32BE(startup.length, 0);
    const p = parseStartupPacket(startup, 0, startup.length);
    assert.equal(p.kind, 'startup');
  });
});
