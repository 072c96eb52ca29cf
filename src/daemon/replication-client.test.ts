// fetchReplication against small HTTP servers: a good answer, the bearer token,
// HTTP errors with the API's message, a malformed body, and a silent server
// (the deadline covers the whole exchange).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fetchReplication, REPLICATION_ROUTE } from './replication-client.js';

async function serve(handler: http.RequestListener): Promise<{ api: string; close(): Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const api = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    api,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const GOOD = { node: 'n1', primary: true, currentLsn: '0/5000060', standbys: [], slots: [], measuredAtMs: 1 };

test('fetchReplication: answer, token, errors and the deadline', async () => {
  const seen: { url?: string | undefined; auth?: string | undefined } = {};
  let mode: 'good' | 'error' | 'bad' | 'silent' = 'good';
  const s = await serve((req, res) => {
    seen.url = req.url;
    seen.auth = req.headers.authorization;
    if (mode === 'silent') return; // never answers
    res.writeHead(mode === 'error' ? 503 : 200, { 'content-type': 'application/json' });
    if (mode === 'good') res.end(JSON.stringify(GOOD));
    else if (mode === 'error') res.end(JSON.stringify({ error: { code: 'unavailable', message: 'Postgres is not running on n1' } }));
    else res.end(JSON.stringify({ ...GOOD, currentLsn: 42 }));
  });
  try {
    assert.deepEqual(await fetchReplication({ api: s.api, token: 'tok', timeoutMs: 1000 }), GOOD);
    assert.equal(seen.url, REPLICATION_ROUTE);
    assert.equal(seen.auth, 'Bearer tok');
    mode = 'error';
    await assert.rejects(fetchReplication({ api: s.api, token: 'tok', timeoutMs: 1000 }), /^PeerCallError: HTTP 503: Postgres is not running on n1$/);
    mode = 'bad';
    await assert.rejects(fetchReplication({ api: s.api, token: 'tok', timeoutMs: 1000 }), /malformed replication answer: currentLsn/);
    mode = 'silent';
    const t0 = performance.now();
    await assert.rejects(fetchReplication({ api: s.api, token: 'tok', timeoutMs: 150 }), /^PeerCallError: no answer within 150 ms$/);
    assert.ok(performance.now() - t0 < 1000, 'gave up at the deadline');
  } finally {
    await s.close();
  }
  await assert.rejects(fetchReplication({ api: s.api, token: 'tok', timeoutMs: 0 }), RangeError);
});
