// A full local disk during `ogel restore`: the real binary restores a real
// backup into a directory on a filesystem too small for it (an 8 MB tmpfs,
// mounted only in the child's private mount namespace, so nothing of it shows
// outside). It must fail with exit code 1 and one line naming the target and
// saying the disk is full, no stack trace, and leave the target empty (checked
// inside the namespace: the tmpfs goes away with it). A retry into a directory
// with room then succeeds and Postgres starts on it with the backup's data.
// Mounting needs root; without it, or without unshare/mount, the test is
// skipped with the reason, never passed.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import type { PostgresInstance } from '../src/postgres/instance.js';
import { makeTempPrimary, makeTempRoot, startCopy } from './helpers/postgres.js';
import { runProcessGroup } from './helpers/process-group.js';
import { restoreFixture } from './helpers/restore-fixture.js';

const OGEL = fileURLToPath(new URL('../src/main.js', import.meta.url));
const TMPFS_SIZE = '8m';
const DIGEST = 'SELECT count(*)::int AS n, sum(hashtext(v))::text AS h FROM t';
/** The line the namespace's script prints after the restore: what is left in the target. */
const LEFT_MARK = 'LEFT IN TARGET:';

/** Why the test cannot run here, or undefined when it can. */
function cannotRun(): string | undefined {
  const why = 'a private mount namespace with a small tmpfs as the full disk';
  if (process.getuid?.() !== 0) return `needs root (${why})`;
  for (const [tool, pkg] of Object.entries({ unshare: 'util-linux', mount: 'util-linux' })) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `needs ${tool} (apt-get install -y ${pkg})`;
  }
  const dir = makeTempRoot('ogel-enospc-probe-');
  try {
    const probe = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs -o size=1m tmpfs "$1"', 'probe', dir], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    if (probe.status !== 0) return `mount -t tmpfs does not work under unshare --mount here (${why}): ${(probe.stderr || probe.error?.message || '').trim()}`;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return undefined;
}

test('ogel restore onto a full disk fails in one line naming the target, leaves it empty, and a retry with room succeeds', {
  timeout: 240_000,
}, async (t) => {
  const why = cannotRun();
  if (why !== undefined) {
    t.skip(why);
    return;
  }
  const primary = await makeTempPrimary({ nodeId: 'p1' });
  const { configPath, store, backup } = restoreFixture(primary);
  let restored: PostgresInstance | undefined;
  try {
    // ~30 MB of table: the data directory is several times the 8 MB tmpfs.
    await primary.pg.query(`CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 400000) g`);
    const want = (await primary.pg.query(DIGEST)).rows[0];
    const b = await backup('b-big');
    t.diagnostic(`backup ${b.id}: ${(b.tarBytes / 1e6).toFixed(1)} MB tar, ${(b.storedBytes / 1e6).toFixed(1)} MB stored`);
    assert.ok(b.tarBytes > 3 * 8 * 1024 * 1024, `the backup (${b.tarBytes} bytes) is much bigger than the tmpfs`);

    // The full disk: an 8 MB tmpfs over the target, in the child's mount namespace only.
    const target = path.join(primary.root, 'small-disk');
    fs.mkdirSync(target);
    const script = [
      'set -u',
      `mount -t tmpfs -o size=${TMPFS_SIZE} tmpfs "$1" || exit 97`,
      'shift',
      'target="$1"; shift',
      '"$@"',
      'rc=$?',
      `printf '\\n${LEFT_MARK}%s\\n' "$(ls -A "$target" | tr '\\n' ' ')"`,
      `printf 'USED KB:%s\\n' "$(df -k --output=used "$target" | tail -n 1 | tr -d ' ')"`,
      'exit $rc',
    ].join('\n');
    const full = await runProcessGroup(
      'unshare',
      [
        '--mount',
        '--propagation',
        'private',
        'sh',
        '-c',
        script,
        'restore-on-full-disk',
        target,
        target,
        process.execPath,
        OGEL,
        'restore',
        '--config',
        configPath,
        '--backup',
        'latest',
        '--to-dir',
        target,
        '--json',
      ],
      120_000,
    );
    assert.equal(full.timedOut, false, `the restore onto the full disk did not finish and was killed:\n${full.stderr.slice(-4000)}`);
    assert.notEqual(full.code, 97, `could not mount the tmpfs: ${full.stderr}`);
    const errorLines = full.stderr
      .split(/[\r\n]+/)
      .map((l) => l.trim())
      .filter((l) => l.startsWith('ogel'));
    t.diagnostic(`stderr: ${JSON.stringify(full.stderr.slice(-1000))}`);
    assert.equal(full.code, 1, `exit code 1 on a full disk:\n${full.stderr}`);
    assert.equal(errorLines.length, 1, `one error line:\n${full.stderr}`);
    const line = errorLines[0]!;
    assert.ok(line.includes(target), `the error names the target directory ${target}: ${line}`);
    assert.match(line, /ENOSPC|no space left/i, 'the error says the disk is full');
    assert.doesNotMatch(full.stderr, /internal error|\n\s+at [^\n]*[(:/]|OGEL_DEBUG/, `no stack trace and no "internal error":\n${full.stderr}`);
    assert.equal(full.stdout.trim().startsWith('{'), false, 'no JSON result on failure');
    const left = /^LEFT IN TARGET:(.*)$/m.exec(full.stdout);
    assert.ok(left, `the namespace's script reported what is left in the target:\n${full.stdout}`);
    assert.equal(left[1]!.trim(), '', 'the failed restore leaves the target empty');
    const used = /^USED KB:(\d+)$/m.exec(full.stdout);
    t.diagnostic(`after the failure: target empty, ${used?.[1] ?? '?'} KB used on the tmpfs`);
    assert.deepEqual(fs.readdirSync(target), [], 'nothing was written outside the tmpfs');

    // A retry into a directory with room succeeds, and Postgres starts on it.
    const roomy = path.join(primary.root, 'roomy');
    const retry = await runProcessGroup(
      process.execPath,
      [OGEL, 'restore', '--config', configPath, '--backup', 'latest', '--to-dir', roomy, '--json'],
      120_000,
    );
    assert.equal(retry.timedOut, false, `the retry did not finish and was killed:\n${retry.stderr.slice(-4000)}`);
    assert.equal(retry.code, 0, retry.stderr);
    assert.equal((JSON.parse(retry.stdout) as { backup: string }).backup, 'b-big');
    for (const f of ['PG_VERSION', 'backup_label']) assert.ok(fs.existsSync(path.join(roomy, f)), `${f} restored`);
    restored = await startCopy(roomy);
    assert.deepEqual((await restored.query(DIGEST)).rows[0], want, "the retry holds the data at the backup's end");
  } finally {
    if (restored?.isRunning()) await restored.stop('immediate', { timeoutMs: 10_000 });
    await store.close();
    await primary.cleanup();
  }
});
