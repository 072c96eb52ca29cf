// What only the fs backend has: its on-disk layout and crash leftovers.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { FsObjectStore, ObjectStoreError } from './index.js';

const root = mkdtempSync(join(tmpdir(), 'ogel-fs-only-'));
after(() => rmSync(root, { recursive: true, force: true }));

test('crash leftovers (an unreferenced blob, a temp record) are invisible, and sweepOrphans removes only old ones', async () => {
  const store = new FsObjectStore({ dir: join(root, 'a') });
  await store.put('kept', Buffer.from('kept'));
  // What a crash between writing the blob and the commit rename leaves behind.
  mkdirSync(join(store.dir, 'blobs', 'ff'), { recursive: true });
  writeFileSync(join(store.dir, 'blobs', 'ff', 'ffffffff-0000-4000-8000-000000000000'), 'half');
  writeFileSync(join(store.dir, 'tmp', 'ffffffff-0000-4000-8000-000000000000.json'), '{"version":1');
  const listed: string[] = [];
  for await (const e of store.list('')) listed.push(e.key);
  assert.deepEqual(listed, ['kept']);
  assert.equal(await store.sweepOrphans({ olderThanMs: 60_000 }), 0, 'young leftovers may belong to a put in progress');
  assert.equal(await store.sweepOrphans({ olderThanMs: 0, nowMs: Date.now() + 1000 }), 2);
  assert.equal((await store.head('kept'))?.bytes, 4);
  assert.deepEqual(readdirSync(join(store.dir, 'tmp')), []);
});

test("an object and a 'folder' of the same name clash with a clear conflict", async () => {
  const store = new FsObjectStore({ dir: join(root, 'b') });
  await store.put('a', Buffer.from('x'));
  await assert.rejects(store.put('a/b', Buffer.from('y')), (e: unknown) => e instanceof ObjectStoreError && e.code === 'conflict' && /"a\/b"/.test(e.message));
  assert.equal(await store.head('a/b'), null);
});

test('check() names storage.fs.dir when its parent is missing', async () => {
  const store = new FsObjectStore({ dir: join(root, 'missing-parent', 'objects') });
  await assert.rejects(
    store.check(),
    (e: unknown) => e instanceof ObjectStoreError && e.code === 'no-such-bucket' && /storage\.fs\.dir .*fix:/.test(e.message),
  );
});

test('delete removes emptied folders, so the name is free for an object again', async () => {
  const store = new FsObjectStore({ dir: join(root, 'c') });
  await store.put('d/e/f', Buffer.from('x'));
  await store.delete(['d/e/f']);
  await store.put('d', Buffer.from('now an object'));
  assert.equal((await store.head('d'))?.bytes, 13);
});
