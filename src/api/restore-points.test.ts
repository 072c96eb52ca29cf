// POST and GET /v1/restore-points through the API server, with the daemon's
// restore point logic (src/daemon/restore-points-api.ts) on a real fs object
// store and a fake primary: what is made and recorded, and that a bad name, a
// name already recorded or no writable primary is refused with the field, the
// value and the fix.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { C, clusterOf3, run } from '../../fsm/test/helpers.js';
import type { ClusterState } from '../../fsm/index.js';
import { readRestorePoint } from '../archive/restore-points.js';
import { FsObjectStore } from '../object-store/index.js';
import { createRestorePoint, listRestorePointsView, type RestorePointDeps } from '../daemon/restore-points-api.js';
import type { PrimaryTarget } from '../controllers/tenant-provisioner.js';
import { ApiServer, type ApiBackend } from './server.js';

const TOKEN = 'test-token';
const T0 = 1_765_166_412_345;

function writable(): ClusterState {
  return run([C.pgReport({ node: 'n1', role: 'primary', timeline: 2 }), C.renew()], clusterOf3());
}

describe('/v1/restore-points', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ogel-restore-points-'));
  const store = new FsObjectStore({ dir });
  const made: { target: PrimaryTarget; name: string }[] = [];
  let state = writable();
  let makeError: Error | undefined;
  const deps: RestorePointDeps = {
    state: () => state,
    store,
    storeDescription: store.description,
    clusterPrefix: 'test/',
    make: async (target, name) => {
      made.push({ target, name });
      if (makeError) throw makeError;
      const lsn = `0/${(0x3000148 + made.length * 0x100).toString(16).toUpperCase()}`;
      return { lsn, walfile: '000000020000000000000003', atMs: T0 + made.length };
    },
  };
  const impl: Partial<ApiBackend> = {
    nodeId: 'n1',
    isLeader: () => true,
    leaderApiUrl: () => undefined,
    countRequest: () => {},
    createRestorePoint: (name) => createRestorePoint(deps, name),
    listRestorePoints: () => listRestorePointsView(deps),
  };
  const backend = new Proxy(impl, {
    get(target, key: string) {
      if (key in target) return target[key as keyof ApiBackend];
      throw new Error(`unexpected backend call: ${key}`);
    },
  }) as ApiBackend;
  let api: ApiServer;
  let base = '';

  before(async () => {
    api = new ApiServer({ host: '127.0.0.1', port: 0, token: TOKEN, forwardTimeoutMs: 1_000, backend, log: () => {} });
    base = `http://127.0.0.1:${await api.listen()}`;
  });
  after(async () => {
    await api.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  type Answer = { status: number; body: Record<string, unknown> & { error?: { code: string; message: string; hint?: string } } };
  async function call(method: 'GET' | 'POST', body?: unknown): Promise<Answer> {
    const res = await fetch(`${base}/v1/restore-points`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: (await res.json()) as never };
  }

  test('create: made on the writable primary, recorded in the store with the timeline of its WAL file; list shows it', async () => {
    made.length = 0;
    const r = await call('POST', { name: 'before-migration-42' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body['restorePoint'], {
      name: 'before-migration-42',
      lsn: '0/3000248',
      timeline: 2,
      atMs: T0 + 1,
      at: new Date(T0 + 1).toISOString(),
    });
    assert.deepEqual(made, [{ target: { node: 'n1', generation: 1, host: '10.0.0.1', port: 5432 }, name: 'before-migration-42' }]);
    const stored = await readRestorePoint(store, 'test/', 'before-migration-42');
    assert.deepEqual(stored, { name: 'before-migration-42', lsn: 0x3000248n, timeline: 2, atMs: T0 + 1 });
    assert.equal((await call('POST', { name: 'nightly.2026-12-08' })).status, 200);
    const list = await call('GET');
    assert.equal(list.status, 200);
    assert.equal(list.body['store'], store.description);
    assert.deepEqual(
      (list.body['restorePoints'] as { name: string }[]).map((p) => p.name),
      ['before-migration-42', 'nightly.2026-12-08'],
    );
  });

  test('a name already recorded: 409 naming it and where it is, and nothing is made on the primary', async () => {
    await call('POST', { name: 'dup' });
    made.length = 0;
    const r = await call('POST', { name: 'dup' });
    assert.equal(r.status, 409);
    assert.equal(r.body.error?.code, 'conflict');
    assert.match(r.body.error?.message ?? '', /^field 'name': restore point "dup" already exists \(made .*Z at LSN 0\/[0-9A-F]+ on timeline 2\)$/);
    assert.match(r.body.error?.hint ?? '', /pick another name.*ogel restore-point list/);
    assert.deepEqual(made, []);
  });

  test('bad bodies: 400 naming the field and the value, with the fix; nothing is made', async () => {
    made.length = 0;
    const cases: [unknown, RegExp][] = [
      [{ name: 'has space' }, /^field 'name': "has space" is not a usable restore point name: 1 to 63 characters/],
      [{ name: '-x' }, /^field 'name': "-x" is not a usable restore point name/],
      [{ name: '' }, /^field 'name': "" is not a usable restore point name/],
      [{ name: 'a'.repeat(64) }, /^field 'name': "a{64}" is not a usable restore point name/],
      [{ name: 'a/b' }, /^field 'name': "a\/b" is not a usable/],
      [{ name: 5 }, /^field 'name': expected a string, got 5$/],
      [{}, /^field 'name' is required$/],
      [{ name: 'ok', at: 'now' }, /^unknown field 'at'$/],
    ];
    for (const [body, message] of cases) {
      const r = await call('POST', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.body.error?.code, 'invalid_body');
      assert.match(r.body.error?.message ?? '', message, JSON.stringify(body));
      assert.ok((r.body.error?.hint ?? '').length > 0, `a hint for ${JSON.stringify(body)}`);
    }
    assert.deepEqual(made, []);
  });

  test('no writable primary: 503 saying why; a primary in recovery: 409', async () => {
    state = clusterOf3(); // n1 is primary but has not reported or renewed its lease
    try {
      const r = await call('POST', { name: 'no-primary' });
      assert.equal(r.status, 503);
      assert.match(r.body.error?.message ?? '', /^cannot make a restore point now: primary n1 has not reported itself primary yet$/);
      assert.match(r.body.error?.hint ?? '', /ogel status/);
    } finally {
      state = writable();
    }
    makeError = Object.assign(new Error('recovery is in progress'), { code: '55000' });
    try {
      const r = await call('POST', { name: 'in-recovery' });
      assert.equal(r.status, 409);
      assert.match(r.body.error?.message ?? '', /^n1's Postgres is in recovery, not the primary: recovery is in progress$/);
    } finally {
      makeError = undefined;
    }
    assert.equal(await readRestorePoint(store, 'test/', 'in-recovery'), null, 'nothing recorded');
  });
});
