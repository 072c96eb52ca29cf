// LeaderProposer's forwarding: a proposal sent to a leader that stops answering
// is abandoned as soon as Raft names another leader, instead of waiting out its
// timeout (what queued behind it waited too).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { LeaderProposer } from './proposer.js';
import type { RaftNode } from '../../raft/index.js';
import type { ApplyResult } from '../../fsm/index.js';
import { PeerClient } from './peer-client.js';
import { setTimeout as sleep } from 'node:timers/promises';

test('a proposal forwarded to a leader that went silent is abandoned when the leader changes', async () => {
  const received: string[] = [];
  // The old leader: takes the request and never answers (a paused daemon).
  const server = http.createServer((req) => received.push(req.url ?? ''));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const api = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  let leader = 'n2';
  const raft = Object.assign(new EventEmitter(), { isLeader: () => false, leaderId: () => leader });
  const peers = new PeerClient({ token: 't', addressOf: (id) => (id === 'n2' ? api : undefined) });
  const proposer = new LeaderProposer(raft as unknown as RaftNode<ApplyResult>, peers);
  try {
    const t0 = performance.now();
    const p = proposer.propose(
      { v: 1, type: 'pg.report', atMs: 1, node: 'n1', role: 'primary', timeline: 2, lsn: { received: '0/0', flushed: '0/0', replayed: '0/0' } },
      10_000,
    );
    const outcome = p.then(
      () => 'answered',
      (e: Error) => e.message,
    );
    while (received.length === 0) await sleep(5);
    // A leader event that does not change the leader keeps it waiting.
    raft.emit('leader', { leader: 'n2', term: 3, role: 'follower' });
    leader = 'n1';
    raft.emit('leader', { leader: 'n1', term: 4, role: 'follower' });
    assert.match(await outcome, /pg\.report through n2: abandoned, n2 is not the leader any more \(the outcome is unknown\)/);
    assert.ok(performance.now() - t0 < 5_000, 'abandoned at once, not after the 10 s timeout');
    assert.deepEqual(received, ['/v1/internal/commands']);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('a forwarded proposal whose answer is not a state-machine result is an error naming the leader, not a cast', async () => {
  const server = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"hello":1}'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const api = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const raft = Object.assign(new EventEmitter(), { isLeader: () => false, leaderId: () => 'n2' });
  const proposer = new LeaderProposer(raft as unknown as RaftNode<ApplyResult>, new PeerClient({ token: 't', addressOf: () => api }));
  try {
    await assert.rejects(
      proposer.propose(
        { v: 1, type: 'pg.report', atMs: 1, node: 'n1', role: 'primary', timeline: 2, lsn: { received: '0/0', flushed: '0/0', replayed: '0/0' } },
        2_000,
      ),
      /proposing pg\.report through n2: the answer is not a state-machine result: \{"hello":1\}/,
    );
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});
