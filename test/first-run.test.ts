// The quick start as a new user runs it: a copy of this repository in a
// mode-0700 directory (what `mktemp -d` gives, and what /root is), `npm start`,
// a write through the proxy, then SIGTERM to the `npm start` process, as a
// supervisor, a CI step or `kill` sends it. As root this is the case where the
// unprivileged Postgres user can reach neither the binaries nor the data under
// the checkout; as another user it still proves the start and the stop.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import { isRoot } from '../src/postgres/os-user.js';
import { RUNTIME_DIR_ENV } from '../src/postgres/runtime-dir.js';
import { freeBasePort } from './helpers/ports.js';
import { setTimeout as sleep } from 'node:timers/promises';

const REPO = resolve('.');
/** tsc of the whole tree, three daemons, initdb and two base backups, on 2 busy cores. */
const READY_TIMEOUT_MS = 240_000;
const STOP_TIMEOUT_MS = 60_000;

/** The files a clone would have, as they are in the working tree (uncommitted changes included). */
function copyCheckout(to: string): void {
  const files = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: REPO, encoding: 'utf8' });
  assert.equal(files.status, 0, `git ls-files: ${files.stderr}`);
  for (const f of files.stdout.split('\0').filter(Boolean)) {
    const src = join(REPO, f);
    if (!lstatSync(src, { throwIfNoEntry: false })?.isFile()) continue; // deleted in the tree, or a link
    mkdirSync(dirname(join(to, f)), { recursive: true });
    copyFileSync(src, join(to, f));
    chmodSync(join(to, f), statSync(src).mode & 0o777);
  }
  // `npm install` would fetch these from the registry; the installed tree is the same and keeps the test offline.
  cpSync(join(REPO, 'node_modules'), join(to, 'node_modules'), { recursive: true, verbatimSymlinks: true });
}

/** PIDs of live processes whose command line mentions any of `needles`. */
function processesMentioning(needles: readonly string[]): { pid: number; args: string }[] {
  const out: { pid: number; args: string }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    let args: string;
    try {
      args = readFileSync(`/proc/${name}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
    } catch {
      continue; // gone meanwhile
    }
    if (needles.some((n) => args.includes(n))) out.push({ pid: Number(name), args });
  }
  return out;
}

async function waitForNone(needles: readonly string[], timeoutMs: number): Promise<{ pid: number; args: string }[]> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const left = processesMentioning(needles);
    if (left.length === 0 || performance.now() > deadline) return left;
    await sleep(100);
  }
}

test('npm start from a mode-0700 directory takes a write through the proxy, and SIGTERM to npm stops every process', {
  timeout: READY_TIMEOUT_MS + STOP_TIMEOUT_MS + 60_000,
}, async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'ogel-first-run-'));
  assert.equal(statSync(home).mode & 0o777, 0o700, 'mkdtemp gives a mode-0700 directory, like /root');
  // The binaries' copy and the relocated data land here, not in /var/lib/ogel, so the test leaves nothing behind.
  const runtime = mkdtempSync(join(tmpdir(), 'ogel-first-run-runtime-'));
  chmodSync(runtime, 0o755);
  const repo = join(home, 'repo');
  const needles = [home, runtime];
  copyCheckout(repo);
  t.diagnostic(isRoot() ? 'as root: Postgres runs as ogel-postgres, which cannot enter the checkout' : 'not root: Postgres runs as this user');

  const base = await freeBasePort();
  const npm = spawn('npm', ['start', '--', '--base-port', String(base)], {
    cwd: repo,
    env: { ...process.env, [RUNTIME_DIR_ENV]: runtime },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group: killed whole if the test fails
  });
  let stdout = '';
  let stderr = '';
  npm.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  npm.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => npm.on('exit', (code, signal) => r({ code, signal })));
  try {
    const url = await new Promise<string>((resolveUrl, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`npm start was not ready within ${READY_TIMEOUT_MS / 1000} s; stderr:\n${stderr.slice(-3000)}`)),
        READY_TIMEOUT_MS,
      );
      const check = () => {
        const m = /^Postgres:\s+(postgresql:\/\/\S+)/m.exec(stdout);
        if (m && stdout.includes('Press Ctrl-C')) {
          clearTimeout(timer);
          resolveUrl(m[1]!);
        }
      };
      npm.stdout!.on('data', check);
      void exited.then((e) => reject(new Error(`npm start exited (${e.code ?? e.signal}) before it was ready; stderr:\n${stderr.slice(-3000)}`)));
    });
    if (isRoot()) assert.match(stderr, /cannot enter .* \(mode 0700\), so the data directories are in /, 'ogel up says where the data went and why');

    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query('CREATE TABLE first_run (id int PRIMARY KEY, note text)');
      await client.query("INSERT INTO first_run VALUES (1, 'written through the proxy')");
      const r = await client.query<{ note: string }>('SELECT note FROM first_run WHERE id = 1');
      assert.equal(r.rows[0]?.note, 'written through the proxy');
    } finally {
      await client.end();
    }
    assert.ok(
      processesMentioning([runtime]).some((p) => / -D /.test(p.args)),
      'Postgres runs from the data directories under the runtime root',
    );

    // The signal goes to the npm process alone, not to its process group.
    process.kill(npm.pid!, 'SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const end = await Promise.race([exited, new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), STOP_TIMEOUT_MS)))]);
    clearTimeout(timer);
    assert.notEqual(end, 'timeout', `npm start did not exit within ${STOP_TIMEOUT_MS / 1000} s of SIGTERM; stderr:\n${stderr.slice(-2000)}`);
    assert.match(stderr, /stopping the cluster/);
    const left = await waitForNone(needles, 10_000);
    assert.deepEqual(left, [], 'no daemon or Postgres process is left');
  } finally {
    if (npm.exitCode === null && npm.signalCode === null) {
      try {
        process.kill(-npm.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    for (const p of processesMentioning(needles)) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    rmSync(home, { recursive: true, force: true });
    rmSync(runtime, { recursive: true, force: true });
  }
});
