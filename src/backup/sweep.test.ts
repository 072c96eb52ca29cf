// sweepBackupObjects on a real fs store: what it deletes, what it keeps, and
// that it compares with the index only after the barrier.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { Backup } from '../../fsm/index.js';
import type { LogLine } from '../log.js';
import { FsObjectStore, ObjectStoreError, type ObjectStore } from '../object-store/index.js';
import { sweepBackupObjects, type SweepOptions } from './sweep.js';

const root = mkdtempSync(join(tmpdir(), 'ogel-sweep-'));
after(() => rmSync(root, { recursive: true, force: true }));
const BB = 'c/basebackups/';
let stores = 0;

function freshStore(): FsObjectStore {
  return new FsObjectStore({ dir: join(root, `s${++stores}`) });
}

function record(id: string, state: Backup['state'], prefix = `${BB}${id}/`): Backup {
  return {
    id,
    kind: 'full',
    parent: null,
    node: 'n1',
    timeline: 1,
    startLsn: '0/1000000',
    endLsn: state === 'complete' ? '0/2000000' : null,
    tarBytes: null,
    storedBytes: 0,
    checksum: null,
    prefix,
    state,
    failureReason: state === 'failed' ? 'connection lost' : null,
    verification: { state: 'unverified', atMs: null, detail: null, kind: null },
    atMs: 0,
    finishedAtMs: state === 'running' ? null : 1,
  };
}

/** A backup's objects: two parts, Postgres's manifest and backup.json (written last). */
async function writeBackup(store: ObjectStore, prefix: string, partBytes = 10): Promise<void> {
  for (const name of ['base.tar.br.00000', 'base.tar.br.00001', 'backup_manifest', 'backup.json'])
    await store.put(`${prefix}${name}`, Buffer.alloc(partBytes, 1));
}

async function keys(store: ObjectStore, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.key);
  return out;
}

function options(store: ObjectStore, index: Map<string, Backup>, over: Partial<SweepOptions> = {}): SweepOptions & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  return { store, basebackupsPrefix: BB, index: () => index, syncState: async () => {}, log: (l) => lines.push(l), lines, ...over };
}

test('deletes orphans and failed backups, keeps complete and running ones, and nothing outside the prefix', async () => {
  const store = freshStore();
  for (const id of ['orphan', 'done', 'run', 'bad']) await writeBackup(store, `${BB}${id}/`);
  // A version-1 record's prefix is one object key; one complete, one orphaned.
  await store.put(`${BB}v1-done.tar`, Buffer.from('v1'));
  await store.put(`${BB}v1-gone.tar`, Buffer.from('v1'));
  await store.put('c/wal/000000010000000000000001', Buffer.from('wal'));
  const index = new Map(
    [record('done', 'complete'), record('run', 'running'), record('bad', 'failed'), record('v1', 'complete', `${BB}v1-done.tar`)].map((b) => [b.id, b]),
  );
  const deleted: string[][] = [];
  const spy: ObjectStore = Object.assign(Object.create(store) as ObjectStore, {
    delete: (k: readonly string[]) => {
      deleted.push([...k]);
      return store.delete(k);
    },
  });
  const o = options(spy, index);
  const r = await sweepBackupObjects(o);
  assert.deepEqual(r, { seenPrefixes: 6, deletedPrefixes: 3, deletedObjects: 9, deletedBytes: 82, stopped: null });
  assert.deepEqual(await keys(store), [
    `${BB}done/backup.json`,
    `${BB}done/backup_manifest`,
    `${BB}done/base.tar.br.00000`,
    `${BB}done/base.tar.br.00001`,
    `${BB}run/backup.json`,
    `${BB}run/backup_manifest`,
    `${BB}run/base.tar.br.00000`,
    `${BB}run/base.tar.br.00001`,
    `${BB}v1-done.tar`,
    'c/wal/000000010000000000000001',
  ]);
  assert.ok(
    deleted.filter((d) => d.length > 1).every((d) => d[0]!.endsWith('/backup.json')),
    'backup.json goes first, so a half-deleted backup is not offered for restore',
  );
  const said = o.lines.filter((l) => l.msg === 'deleted backup objects nothing uses').map((l) => [l['backup'], l['why'], l['objects']]);
  assert.deepEqual(said.sort(), [
    ['bad', 'recorded as failed', 4],
    ['orphan', 'not in the backup index', 4],
    ['v1-gone.tar', 'not in the backup index', 1],
  ]);
  assert.deepEqual(await sweepBackupObjects(options(store, index)), { seenPrefixes: 3, deletedPrefixes: 0, deletedObjects: 0, deletedBytes: 0, stopped: null });
});

test('the index is compared only after the barrier: a record committed before the listing but applied here late is kept', async () => {
  const store = freshStore();
  // Another node recorded 'late' and wrote its objects; this node has not applied the record yet.
  await writeBackup(store, `${BB}late/`);
  await writeBackup(store, `${BB}gone/`);
  const index = new Map<string, Backup>();
  const events: string[] = [];
  const watched: ObjectStore = Object.assign(Object.create(store) as ObjectStore, {
    list: (p: string) => {
      events.push(`list ${p}`);
      return store.list(p);
    },
  });
  const o = options(watched, index, {
    index: () => {
      events.push('index');
      return index;
    },
    syncState: async () => {
      events.push('sync');
      // Between the listing and the barrier: the late record is applied, and
      // a new backup is recorded and writes its first object.
      index.set('late', record('late', 'complete'));
      index.set('new', record('new', 'running'));
      await store.put(`${BB}new/base.tar.br.00000`, Buffer.from('part'));
    },
  });
  const r = await sweepBackupObjects(o);
  assert.equal(events[0], `list ${BB}`);
  assert.equal(events[1], 'sync', 'the barrier comes after the listing');
  assert.ok(
    events.slice(2).every((e) => e === 'index' || e === `list ${BB}gone/`),
    events.join(', '),
  );
  assert.equal(r.deletedPrefixes, 1);
  assert.deepEqual(
    (await keys(store)).filter((k) => !k.startsWith(`${BB}late/`)),
    [`${BB}new/base.tar.br.00000`],
  );
  assert.equal((await keys(store, `${BB}late/`)).length, 4);

  // Without the barrier the same listing would have deleted 'late': this is what it prevents.
  const early = new Map<string, Backup>();
  await sweepBackupObjects(options(store, early, { syncState: async () => {} }));
  assert.deepEqual(await keys(store, `${BB}late/`), []);
});

test('an unreachable store or index is a warning and a result, never a throw', async () => {
  const store = freshStore();
  await writeBackup(store, `${BB}orphan/`);
  const down: ObjectStore = Object.assign(Object.create(store) as ObjectStore, {
    // biome-ignore lint/correctness/useYield: fails before the first key, as an unreachable endpoint does
    list: async function* () {
      throw new ObjectStoreError('unreachable', 'connect ECONNREFUSED 127.0.0.1:9000 (storage.s3.endpoint)');
    },
  });
  const o = options(down, new Map());
  const r = await sweepBackupObjects(o);
  assert.equal(r.stopped?.reason, 'store-unavailable');
  assert.match(r.stopped?.detail ?? '', /could not list c\/basebackups\/ in the fs store at .*: connect ECONNREFUSED/);
  assert.equal(o.lines.at(-1)?.level, 'warn');

  const noLeader = options(store, new Map(), {
    syncState: () => Promise.reject(new Error('no leader')),
  });
  const n = await sweepBackupObjects(noLeader);
  assert.deepEqual(n.stopped, { reason: 'index-unavailable', detail: 'could not catch up with the backup index: no leader' });
  assert.equal((await keys(store)).length, 4, 'nothing deleted without the barrier');

  let calls = 0;
  const flaky: ObjectStore = Object.assign(Object.create(store) as ObjectStore, {
    delete: () => Promise.reject(new ObjectStoreError('access-denied', `delete refused (${++calls})`)),
  });
  const f = await sweepBackupObjects(options(flaky, new Map()));
  assert.equal(f.stopped?.reason, 'store-unavailable');
  assert.equal(f.deletedPrefixes, 0);

  const ac = new AbortController();
  ac.abort();
  const a = await sweepBackupObjects(options(store, new Map(), { signal: ac.signal }));
  assert.equal(a.stopped?.reason, 'aborted');
  assert.equal((await keys(store)).length, 4);
});
