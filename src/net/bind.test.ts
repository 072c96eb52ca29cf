// The daemons' HTTP calls to each other leave from the node's own address, so a
// partition by address (iptables) cuts them like it cuts Raft. Runs without root:
// all of 127.0.0.0/8 is on lo.

import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { localAddressFor, peerDispatcher } from './bind.js';

describe('localAddressFor', () => {
  test('the host of an IP literal address', () => {
    assert.equal(localAddressFor('127.0.0.11:7101'), '127.0.0.11');
    assert.equal(localAddressFor('[::1]:7101'), '::1');
  });

  test('undefined for a wildcard or a host name: the kernel chooses', () => {
    for (const a of ['0.0.0.0:7101', '[::]:7101', 'localhost:7101', 'n1.internal:7101']) assert.equal(localAddressFor(a), undefined, a);
  });

  test('listenHost wins over the advertised host', () => {
    assert.equal(localAddressFor('203.0.113.7:7101', '10.0.0.5'), '10.0.0.5');
    assert.equal(localAddressFor('203.0.113.7:7101', '0.0.0.0'), undefined);
    assert.equal(localAddressFor('203.0.113.7:7101', '::'), undefined);
  });

  test('a malformed address is a programmer error (config validation refuses it earlier)', () => {
    assert.throws(() => localAddressFor('127.0.0.11'), /not HOST:PORT/);
  });
});

describe('peerDispatcher', () => {
  let server: http.Server;
  let port = 0;
  before(async () => {
    server = http.createServer((req, res) => res.end(req.socket.remoteAddress));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  async function sourceSeen(origin: string, localAddress: string | undefined): Promise<string> {
    const dispatcher = peerDispatcher(localAddress);
    try {
      const r = await request(`${origin}/`, { dispatcher, headersTimeout: 5_000, bodyTimeout: 5_000 });
      return await r.body.text();
    } finally {
      await dispatcher.close();
    }
  }

  test('requests leave from the bound address', async () => {
    assert.equal(await sourceSeen(`http://127.0.0.1:${port}`, '127.0.0.5'), '127.0.0.5');
  });

  test('a host name origin is resolved in the bound family and bound too', async () => {
    assert.equal(await sourceSeen(`http://localhost:${port}`, '127.0.0.6'), '127.0.0.6');
  });

  test('unbound: the kernel picks 127.0.0.1 for any loopback destination', async () => {
    assert.equal(await sourceSeen(`http://127.0.0.1:${port}`, undefined), '127.0.0.1');
  });
});
