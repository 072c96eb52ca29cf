// The backup worker against a server that takes the connection and never
// answers: the stall watchdog aborts the backup and records it as failed with
// the reason, instead of holding the one-at-a-time schedule forever.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { ApplyOk, Backup, ClusterState, Command } from '../../fsm/index.js';
import { FsObjectStore } from '../object-store/index.js';
import { runningBackup } from '../../test/helpers/backup-fixture.js';
import { BackupWorker } from './worker.js';

async function silentServer(t: { after: (fn: () => Promise<void>) => void }): Promise<number> {
  const sockets = new Set<net.Socket>();
  const silent = net.createServer((s) => sockets.add(s)); // accepts, never answers
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  t.after(async () => {
    for (const s of sockets) s.destroy();
    silent.close();
  });
  return (silent.address() as net.AddressInfo).port;
}

/** A worker on node n1 against a server that never answers, with a store in a temp dir removed after the test. */
async function silentWorker(
  t: { after: (fn: () => Promise<void>) => void },
  o: { state: () => ReadonlyMap<string, Backup>; propose: (cmd: Command) => Promise<ApplyOk>; stallTimeoutMs: number },
): Promise<BackupWorker> {
  const port = await silentServer(t);
  const dir = await mkdtemp(join(tmpdir(), 'ogel-worker-'));
  const store = new FsObjectStore({ dir });
  t.after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  return new BackupWorker({
    nodeId: 'n1',
    cluster: 'c',
    clusterPrefix: 'c/',
    state: () => ({ backups: o.state() }) as unknown as ClusterState,
    propose: o.propose,
    store,
    conn: () => ({ host: '127.0.0.1', port, user: 'replicator', password: 'x' }),
    role: () => 'standby',
    syncState: async () => {},
    log: () => {},
    stallTimeoutMs: o.stallTimeoutMs,
  });
}

test('a failure the leader could not take is proposed again on the next poke, not forgotten with the record left running', async (t) => {
  let backups = new Map<string, Backup>();
  const attempts: Command[] = [];
  let landed: () => void = () => {};
  const done = new Promise<void>((r) => (landed = r));
  const worker = await silentWorker(t, {
    state: () => backups,
    propose: async (cmd) => {
      attempts.push(cmd);
      if (attempts.length === 1) throw new Error('no leader answered within 5000 ms');
      backups = new Map(); // applied: the record is no longer running
      landed();
      return { ok: true } as unknown as ApplyOk;
    },
    stallTimeoutMs: 200,
  });
  await worker.begin();
  backups = new Map([['b1', runningBackup('b1', 'n1')]]);
  worker.poke();
  // What applied commands or the periodic poll do: look again, until the failure lands.
  const poking = setInterval(() => worker.poke(), 10);
  await done.finally(() => clearInterval(poking));
  await worker.stop();
  assert.equal(attempts.length, 2);
  assert.deepEqual(attempts[1], attempts[0], 'the same failure, proposed again (the backup was not run again)');
});

test('a backup that streams nothing for stallTimeoutMs is aborted and recorded as failed, saying so', async (t) => {
  const b = runningBackup('b1', 'n1');
  let backups = new Map<string, Backup>();
  const proposed: Command[] = [];
  let failed: (cmd: Command) => void = () => {};
  const failedCmd = new Promise<Command>((r) => (failed = r));
  const worker = await silentWorker(t, {
    state: () => backups,
    propose: async (cmd) => {
      proposed.push(cmd);
      if (cmd.type === 'backup.update') failed(cmd);
      return { ok: true } as unknown as ApplyOk;
    },
    stallTimeoutMs: 300,
  });
  await worker.begin();
  const t0 = performance.now();
  backups = new Map([['b1', b]]);
  worker.poke();
  const cmd = (await failedCmd) as { state: string; reason: string };
  const tookMs = performance.now() - t0;
  await worker.stop();
  assert.equal(cmd.state, 'failed');
  assert.match(cmd.reason, /no progress for \d+ s/);
  assert.ok(tookMs < 10_000, `failed after ${Math.round(tookMs)} ms; the connect timeout (30 s) must not be what ended it`);
});
