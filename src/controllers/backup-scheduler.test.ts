// The backup scheduler's rule for a running backup whose node is gone: failed
// once the leader has not heard from that node for nodeGoneMs, and only then.

import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import type { ApplyOk, Backup, ClusterState, ClusterStateMachine, Command } from '../../fsm/index.js';
import { fsmBackup, runningBackup } from '../../test/helpers/backup-fixture.js';
import { BackupScheduler } from './backup-scheduler.js';

async function runFor(
  quietMs: Record<string, number | null>,
  nodeGoneMs: number,
  backups: Backup[] = [runningBackup('b1', 'n2')],
  graceMs = 1e9,
): Promise<Command[]> {
  const state = {
    backups: new Map(backups.map((b) => [b.id, b])),
    computes: new Map(),
    postgres: { primary: null, nodes: new Map() },
  } as unknown as ClusterState;
  const proposed: Command[] = [];
  const s = new BackupScheduler(
    { state } as unknown as ClusterStateMachine,
    async (cmd) => {
      proposed.push(cmd);
      // Applied, as the state machine would.
      const index = state.backups as Map<string, Backup>;
      if (cmd.type === 'backup.delete') index.delete(cmd.id);
      if (cmd.type === 'backup.update' && cmd.state === 'failed') index.set(cmd.id, { ...index.get(cmd.id)!, state: 'failed' });
      return { ok: true } as unknown as ApplyOk;
    },
    {
      schedule: { fullEveryMs: 1e9, incrementalEveryMs: null },
      backupsPrefix: 'c/basebackups/',
      scheduled: false,
      nodeContactMs: (n) => quietMs[n] ?? null,
      nodeGoneMs,
      graceMs,
      retention: { daily: 1, weekly: 0, monthly: 0, failed: 1 },
      onPass: () => passes++,
    },
  );
  let passes = 0;
  const ac = new AbortController();
  const started = performance.now();
  const done = s.run({ signal: ac.signal, log: () => {} });
  // The first pass comes before a full period in office: wake it until two
  // passes have run after the period (both rules are judged then).
  const periodMs = Math.min(nodeGoneMs, graceMs);
  let passesAfter = -1;
  while (passesAfter < 0 || passes < passesAfter + 2) {
    if (passesAfter < 0 && performance.now() - started > periodMs) passesAfter = passes;
    if (performance.now() - started > 10_000) throw new Error(`the scheduler ran ${passes} passes in 10 s`);
    s.poke();
    await sleep(5);
  }
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

test('after the grace period the leader retires what the retention policy does not keep, a child before its parent', async () => {
  const DAY = 86_400_000;
  const done = (id: string, day: number, parent: string | null = null): Backup => fsmBackup(id, { parent, atMs: day * DAY, finishedAtMs: day * DAY + 1 });
  // daily: 1 keeps the newest (f3); f1 and its incremental i1 go, i1 first.
  const proposed = await runFor({}, 1e9, [done('f1', 1), done('i1', 2, 'f1'), done('f3', 3)], 0);
  assert.deepEqual(
    proposed.map((c) => [c.type, (c as { id: string }).id]),
    [
      ['backup.delete', 'i1'],
      ['backup.delete', 'f1'],
    ],
  );
});
