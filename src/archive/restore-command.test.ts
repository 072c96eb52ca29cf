// `ogel restore` as a user runs it: the real binary, a config naming an fs
// object store that holds a real backup, and nothing else running. The
// directory it writes starts as Postgres with the backup's data.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import type { PostgresInstance } from '../postgres/instance.js';
import { makeTempPrimary, startCopy } from '../../test/helpers/postgres.js';
import { restoreFixture } from '../../test/helpers/restore-fixture.js';

const OGEL = fileURLToPath(new URL('../main.js', import.meta.url));

function ogel(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [OGEL, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('ogel restore: lists the store, restores latest into a directory Postgres starts on, and explains bad requests', async () => {
  const primary = await makeTempPrimary({ nodeId: 'p1' });
  const { configPath, store, backup } = restoreFixture(primary);
  let restored: PostgresInstance | undefined;
  try {
    await primary.pg.query(`CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g`);
    await backup('b-one');
    const want = (await primary.pg.query(`SELECT count(*)::int AS n, sum(hashtext(v))::text AS h FROM t`)).rows[0];

    const list = ogel(['restore', '--config', configPath, '--list', '--json']);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(
      (JSON.parse(list.stdout) as { backups: { id: string }[] }).backups.map((b) => b.id),
      ['b-one'],
    );

    const missing = ogel(['restore', '--config', configPath, '--backup', 'nope', '--to-dir', path.join(primary.root, 'x')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^ogel restore: no backup 'nope' in fs store at .* \(newest: b-one\)\nhint: 'ogel restore --list' shows them\n$/);
    const usage = ogel(['restore', '--config', configPath, '--backup', 'latest']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--to-dir is required, with --backup or a target/);

    const dir = path.join(primary.root, 'restored');
    const r = ogel(['restore', '--config', configPath, '--backup', 'latest', '--to-dir', dir, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout) as { backup: string; chain: string[] };
    assert.equal(result.backup, 'b-one');
    assert.match(r.stderr, /restored b-one into .* in [\d.]+ s/);
    const auto = fs.readFileSync(path.join(dir, 'postgresql.auto.conf'), 'utf8');
    assert.match(
      auto,
      /synchronous_standby_names = ''\nprimary_conninfo = ''\nprimary_slot_name = ''\nlisten_addresses = 'localhost'\nunix_socket_directories = '/,
      'a standalone copy: no standbys, no upstream, local only',
    );
    restored = await startCopy(dir);
    assert.deepEqual((await restored.query(`SELECT count(*)::int AS n, sum(hashtext(v))::text AS h FROM t`)).rows[0], want);

    const again = ogel(['restore', '--config', configPath, '--backup', 'b-one', '--to-dir', dir]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /restore target .* is not empty/);
    assert.ok(fs.existsSync(path.join(dir, 'PG_VERSION')), 'a refused restore leaves the existing directory alone');
  } finally {
    if (restored?.isRunning()) await restored.stop('immediate', { timeoutMs: 10_000 });
    await store.close();
    await primary.cleanup();
  }
});
