// The peer client against small HTTP servers: a good answer, the bearer token,
// HTTP errors with the node's own message, a malformed answer to a contract
// route, a silent server (the deadline covers the whole exchange), an unknown node.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PeerClient } from './peer-client.js';
import { AgentRpcClient } from './agent-rpc-client.js';

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

test('peer client: answer, token, errors, a malformed answer and the deadline', async () => {
  const seen: { url?: string | undefined; auth?: string | undefined; body?: string } = {};
  let mode: 'good' | 'error' | 'bad' | 'silent' = 'good';
  const s = await serve((req, res) => {
    seen.url = req.url;
    seen.auth = req.headers.authorization;
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      seen.body = body;
      if (mode === 'silent') return; // never answers
      res.writeHead(mode === 'error' ? 503 : 200, { 'content-type': 'application/json' });
      if (mode === 'good') res.end(JSON.stringify({ flushedLsn: '0/5000060', replayedLsn: '0/5000060' }));
      else if (mode === 'error') res.end(JSON.stringify({ error: { code: 'unavailable', message: 'Postgres is not running on n2' } }));
      else res.end(JSON.stringify({ flushedLsn: 42, replayedLsn: '0/1' }));
    });
  });
  const peers = new PeerClient({ token: 'tok', addressOf: (id) => (id === 'n2' ? s.api : undefined) });
  const agents = new AgentRpcClient(peers);
  try {
    assert.equal((await agents.stopReceiver('n2', { generation: 3, renewalSeq: 7 }, 1000)).flushedLsn, '0/5000060');
    assert.equal(seen.url, '/v1/internal/pg/stop-receiver');
    assert.equal(seen.auth, 'Bearer tok');
    assert.deepEqual(JSON.parse(seen.body ?? ''), { generation: 3, renewalSeq: 7 });
    mode = 'error';
    await assert.rejects(agents.stopReceiver('n2', { generation: 3, renewalSeq: 7 }, 1000), /^PeerCallError: n2: HTTP 503: Postgres is not running on n2$/);
    mode = 'bad';
    await assert.rejects(
      agents.stopReceiver('n2', { generation: 3, renewalSeq: 7 }, 1000),
      /^PeerCallError: n2: malformed answer to POST \/v1\/internal\/pg\/stop-receiver: field 'flushedLsn'/,
    );
    mode = 'silent';
    const t0 = performance.now();
    await assert.rejects(
      peers.call('n2', { method: 'GET', path: '/v1/internal/pg/replication', timeoutMs: 150 }),
      /^PeerCallError: n2: no answer within 150 ms$/,
    );
    assert.ok(performance.now() - t0 < 1000, 'gave up at the deadline');
    await assert.rejects(peers.call('n9', { method: 'GET', path: '/', timeoutMs: 150 }), /^PeerCallError: n9: no admin API address known$/);
    await assert.rejects(peers.call('n2', { method: 'GET', path: '/', timeoutMs: 0 }), RangeError);
  } finally {
    await s.close();
  }
});
