// The store link of store-down and store-slow (harness/store-link.ts), against
// an echo server on loopback: open passes bytes, down resets open and new
// connections, slow holds each request back and caps uploads, and healing
// sends at once what a slow link still held.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { StoreLink } from '../harness/store-link.js';

/** Sends `data` and resolves with the echo once `data.length` bytes came back (or the error). */
function roundTrip(port: number, data: Buffer, socket?: net.Socket): Promise<{ echo: Buffer; ms: number } | Error> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const s = socket ?? net.connect(port, '127.0.0.1');
    const got: Buffer[] = [];
    let n = 0;
    const onData = (b: Buffer) => {
      got.push(b);
      n += b.length;
      if (n >= data.length) {
        s.off('data', onData);
        if (socket === undefined) s.end();
        resolve({ echo: Buffer.concat(got), ms: performance.now() - t0 });
      }
    };
    s.on('data', onData);
    s.once('error', (e) => resolve(e));
    s.once('close', () => {
      if (n < data.length) resolve(new Error('closed'));
    });
    s.write(data);
  });
}

describe('store link', () => {
  let echo: net.Server;
  let link: StoreLink;

  before(async () => {
    echo = net.createServer((s) => {
      s.on('error', () => {});
      s.pipe(s);
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
    link = await StoreLink.start((echo.address() as net.AddressInfo).port);
  });
  after(async () => {
    await link.close();
    await new Promise<void>((r) => echo.close(() => r()));
  });

  it('passes bytes both ways while open', async () => {
    const r = await roundTrip(link.port, Buffer.from('hello'));
    assert.ok(!(r instanceof Error), String(r));
    assert.equal(r.echo.toString(), 'hello');
    assert.equal(link.endpoint, `http://127.0.0.1:${link.port}`);
  });

  it('down: cuts open connections and resets new ones until opened again', async () => {
    const s = net.connect(link.port, '127.0.0.1');
    s.on('error', () => {});
    const ok = await roundTrip(link.port, Buffer.from('a'), s);
    assert.ok(!(ok instanceof Error));
    const resetBefore = link.counts.reset;
    const closed = new Promise<void>((r) => s.once('close', () => r()));
    assert.ok(link.down() >= 1, 'the open connection is cut');
    await closed;
    const refused = await roundTrip(link.port, Buffer.from('b'));
    assert.ok(refused instanceof Error, 'a new connection is reset');
    assert.ok(link.counts.reset - resetBefore >= 2, `${link.counts.reset - resetBefore} resets`);
    link.open();
    const back = await roundTrip(link.port, Buffer.from('c'));
    assert.ok(!(back instanceof Error), String(back));
  });

  it('slow: each request waits the delay; a bandwidth cap paces uploads; open sends what was held at once', async () => {
    link.slow(300, null);
    const r = await roundTrip(link.port, Buffer.from('slow'));
    assert.ok(!(r instanceof Error));
    assert.ok(r.ms >= 290, `took ${r.ms} ms`);
    link.slow(0, 64 * 1024);
    const capped = await roundTrip(link.port, Buffer.alloc(32 * 1024, 1));
    assert.ok(!(capped instanceof Error));
    assert.ok(capped.ms >= 400, `32 KiB at 64 KiB/s took ${capped.ms} ms`);
    // 256 KiB at 16 KiB/s would take 16 s: healing after 200 ms sends the rest at once.
    link.slow(100, 16 * 1024);
    const held = roundTrip(link.port, Buffer.alloc(256 * 1024, 2));
    setTimeout(() => link.open(), 200);
    const healed = await held;
    assert.ok(!(healed instanceof Error));
    assert.equal(healed.echo.length, 256 * 1024);
    assert.ok(healed.ms < 3_000, `took ${healed.ms} ms after the heal`);
    assert.ok(link.counts.delayedChunks > 0 && link.counts.delayedBytes >= 256 * 1024);
  });
});
