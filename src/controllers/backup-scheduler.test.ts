// The backup scheduler's rule for a running backup whose node is gone: failed
// once the leader has not heard from that node for nodeGoneMs, and only then.

import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import type { ApplyOk, Backup, ClusterState, ClusterStateMachine, Command } from '../../fsm/index.js';
import { BackupScheduler } from './backup-scheduler.js';

function running(id: string, node: string): Backup {
  return {
    id,
    kind: 'full',
    parent: null,
    node,
    timeline: 1,
    startLsn: '0/1000000',
    endLsn: null,
    tarBytes: null,
    storedBytes: 0,
    checksum: null,
    prefix: `c/basebackups/${id}/`,
    state: 'running',
    failureReason: null,
    verification: { state: 'unverified', atMs: null, detail: null, kind: null },
    atMs: 0,
    finishedAtMs: null,
  } as Backup;
}

async function runFor(quietMs: Record<string, number | null>, nodeGoneMs: number): Promise<Command[]> {
  const state = { backups: new Map([['b1', running('b1', 'n2')]]), postgres: { primary: null, nodes: new Map() } } as unknown as ClusterState;
  const proposed: Command[] = [];
  const s = new BackupScheduler(
    { state } as unknown as ClusterStateMachine,
    async (cmd) => {
      proposed.push(cmd);
      return { ok: true } as unknown as ApplyOk;
    },
    {
      schedule: { fullEveryMs: 1e9, incrementalEveryMs: null },
      backupsPrefix: 'c/basebackups/',
      scheduled: false,
      nodeContactMs: (n) => quietMs[n] ?? null,
      nodeGoneMs,
    },
  );
  const ac = new AbortController();
  const done = s.run({ signal: ac.signal, log: () => {} });
  // The first pass comes before a full period in office; wake it for a second one.
  await sleep(nodeGoneMs + 20);
  s.poke();
  await sleep(50);
  ac.abort();
  await done;
  return proposed;
}

test('a running backup on a node the leader has not heard from for nodeGoneMs is failed, naming the node', async () => {
  const proposed = await runFor({ n2: 300_000 }, 30);
  assert.equal(proposed.length, 1);
  const cmd = proposed[0] as Extract<Command, { type: 'backup.update' }>;
  assert.equal(cmd.type, 'backup.update');
  assert.equal(cmd.id, 'b1');
  assert.equal((cmd as { state: string }).state, 'failed');
  assert.match((cmd as { reason: string }).reason, /node n2 has not been heard from for 300 s/);
});

test('a running backup on a node heard from recently, or whose contact is unknown, is left running', async () => {
  assert.deepEqual(await runFor({ n2: 10 }, 30), []);
  assert.deepEqual(await runFor({}, 30), []);
});
