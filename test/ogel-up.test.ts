// Acceptance of the local quick start: `ogel up` (what `npm start` runs) brings up
// three daemons with three Postgres nodes and prints a connection string that
// psql accepts; Ctrl-C (SIGINT) stops every process it started.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CLI } from './helpers/daemons.js';
import { freeBasePort } from './helpers/ports.js';

test('ogel up prints a Postgres URL that psql accepts, takes a backup into its directory with no configuration, and Ctrl-C stops everything', {
  timeout: 360_000,
}, async (t) => {
  if (spawnSync('psql', ['--version']).status !== 0) {
    t.skip('psql is not installed (Debian: postgresql-client); .ci/run installs it');
    return;
  }
  const dir = await mkdtemp(join(tmpdir(), 'ogel-up-'));
  await chmod(dir, 0o711); // the Postgres OS user must reach the data directories
  const base = await freeBasePort();
  const up = spawn(process.execPath, [CLI, 'up', '--dir', join(dir, 'state'), '--base-port', String(base), '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  up.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  up.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => up.on('exit', (code) => resolve(code)));
  try {
    const out = await new Promise<{ postgres: string | null; apis: string[] }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`ogel up printed no status within 150 s; stderr:\n${stderr.slice(-3000)}`)), 150_000);
      const check = () => {
        const end = stdout.lastIndexOf('}');
        if (end < 0) return;
        try {
          const parsed = JSON.parse(stdout.slice(0, end + 1)) as { postgres: string | null; apis: string[] };
          clearTimeout(timer);
          resolve(parsed);
        } catch {
          /* not complete yet */
        }
      };
      up.stdout!.on('data', check);
      void exited.then((code) => reject(new Error(`ogel up exited with ${code}; stderr:\n${stderr.slice(-3000)}`)));
    });
    assert.ok(out.postgres, `a Postgres URL: ${stdout.slice(0, 2000)}`);
    const psql = spawnSync(
      'psql',
      [out.postgres, '-XAtc', "SELECT 'psql ok', count(*) FROM pg_stat_replication WHERE state = 'streaming' AND application_name <> 'ogel-wal-archive'"],
      {
        encoding: 'utf8',
        timeout: 30_000,
      },
    );
    assert.equal(psql.status, 0, psql.stderr);
    assert.equal(psql.stdout.trim(), 'psql ok|2');
    t.diagnostic(`ogel up: ${out.postgres.replace(/:[^:@/]+@/, ':***@')}`);

    // No configuration: the leader's schedule takes the first backup into the state
    // directory a minute after it took office, and ogel status shows it, verified.
    const env = { ...process.env, OGEL_STATE_FILE: join(dir, 'state', 'cluster.json') };
    const deadline = Date.now() + 150_000;
    let line = '';
    while (!/Backups: newest \S+ \(full, .*verified\)/.test(line)) {
      if (Date.now() > deadline) assert.fail(`no verified backup within 150 s; last status line: ${line}`);
      await new Promise((r) => setTimeout(r, 2_000));
      const st = spawnSync(process.execPath, [CLI, 'status'], { encoding: 'utf8', env, timeout: 20_000 });
      line = st.stdout.split('\n').find((l) => l.startsWith('Backups:')) ?? `(exit ${st.status}) ${st.stderr}`;
      assert.doesNotMatch(line, /FAILED|not usable/, line);
    }
    const list = spawnSync(process.execPath, [CLI, 'backup', 'list', '--json'], { encoding: 'utf8', env, timeout: 20_000 });
    const store = (JSON.parse(list.stdout) as { store: string }).store;
    assert.ok(store.includes(join(dir, 'state')), `the store is in ogel up's directory: ${store}`);
  } finally {
    up.kill('SIGINT');
    const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 30_000))]);
    if (code === 'timeout') up.kill('SIGKILL');
    assert.equal(code, 0, `ogel up exits cleanly on Ctrl-C; stderr:\n${stderr.slice(-2000)}`);
    const left = spawnSync('pgrep', ['-af', join(dir, 'state')], { encoding: 'utf8' }).stdout.trim();
    assert.equal(left, '', 'no process of this cluster is left');
    await rm(dir, { recursive: true, force: true });
  }
});
