// The ogel CLI, run as a process against a fake admin API (test/helpers/fake-admin-api.ts)
// that answers as docs/admin-api.md says. Each test gets its own fake cluster, so
// tests run concurrently.

import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FakeCluster } from '../../test/helpers/fake-admin-api.js';

const CLI = fileURLToPath(new URL('../main.js', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'ogel-cli-test-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with a clean environment (no OGEL_*), in an empty directory by default. */
function ogel(args: string[], opts: { env?: Record<string, string>; cwd?: string } = {}): Promise<Run> {
  const env: Record<string, string> = { PATH: process.env['PATH'] ?? '', ...opts.env };
  const child = spawn(process.execPath, [CLI, ...args], { cwd: opts.cwd ?? scratch, env, stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.end();
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function withCluster(fn: (c: FakeCluster) => Promise<void>): Promise<void> {
  const c = await FakeCluster.start();
  try {
    await fn(c);
  } finally {
    await c.close();
  }
}

/** A URL where nothing listens: bind an ephemeral port, then free it. */
async function deadUrl(): Promise<string> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

/** A server that accepts connections and never answers. */
async function silentServer(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const s = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('error', () => {});
  });
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const sock of sockets) sock.destroy();
        s.close(() => resolve());
      }),
  };
}

function auth(c: FakeCluster, ...urls: string[]): string[] {
  return ['--api', (urls.length > 0 ? urls : c.urls).join(','), '--token', c.token];
}

describe('ogel CLI', { concurrency: true }, () => {
  test('--version, help, and no arguments', async () => {
    const v = await ogel(['--version']);
    assert.equal(v.code, 0);
    assert.match(v.stdout, /^\d+\.\d+\.\d+\n$/);
    const h = await ogel(['help', 'tenants', 'create']);
    assert.equal(h.code, 0);
    assert.match(h.stdout, /Usage: ogel tenants create NAME/);
    assert.match(h.stdout, /--max-connections N/);
    assert.match(h.stdout, /Examples:/);
    const h2 = await ogel(['status', '-h']);
    assert.equal(h2.code, 0);
    assert.match(h2.stdout, /--json/);
    assert.match(h2.stdout, /--timeout-ms N/);
    const none = await ogel([]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /Usage: ogel <command>/);
  });

  test('status renders the table: columns, leader, placeholders', async () => {
    await withCluster(async (c) => {
      const r = await ogel(['status', ...auth(c)]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, '');
      const lines = r.stdout.trimEnd().split('\n');
      assert.match(lines[0] ?? '', /^Cluster: ogel\s+Leader: n1\s+Term: 4\s+\(answered by n1\)$/);
      assert.equal(lines[1], 'Primary: none   Generation: 0   Lease: none');
      assert.ok(!r.stdout.includes('PAUSED'));
      assert.ok(!r.stdout.includes('BLOCKED'));
      const header = lines.find((l) => l.startsWith('| Member'));
      assert.equal(header, '| Member | Raft role | Term | Lag (entries) | Last contact | Postgres role | TL | Replication | Lag (bytes) | Lag (time) |');
      const row = (id: string): string[] =>
        (lines.find((l) => l.startsWith(`| ${id} `)) ?? '')
          .split('|')
          .slice(1, -1)
          .map((s) => s.trim());
      assert.deepEqual(row('n1'), ['n1', 'leader', '4', '0', '-', '-', '-', '-', '-', '-']);
      assert.deepEqual(row('n2'), ['n2', 'follower', '4', '1', '10 ms', '-', '-', '-', '-', '-']);
      assert.deepEqual(row('n3'), ['n3', 'follower', '4', '2', '20 ms', '-', '-', '-', '-', '-']);
      // Every table line has the same width (aligned).
      const tableLines = lines.filter((l) => l.startsWith('|') || l.startsWith('+'));
      assert.equal(new Set(tableLines.map((l) => l.length)).size, 1);
    });
  });

  test('status shows PAUSED, why failover is BLOCKED, and postgres roles from an older daemon', async () => {
    await withCluster(async (c) => {
      c.maintenance = { paused: true, reason: 'kernel upgrade' };
      // Only the fields a daemon without live replication figures sends.
      c.postgres = {
        generation: 7,
        primary: 'n1',
        lease: { holder: 'n1', generation: 7, durationMs: 2000 },
        nodes: { n1: { role: 'primary' }, n2: { role: 'standby' }, n3: { role: 'fenced' } },
        failoverBlocked: { reason: 'n1 and n3 are unreachable; the latest commit may exist only on n3', atMs: 1763700000000 },
      };
      const r = await ogel(['status', ...auth(c)]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^Primary: n1 {3}Generation: 7 {3}Lease: n1 \(2000 ms\) {3}PAUSED \(kernel upgrade\)$/m);
      assert.match(r.stdout, /^Automatic failover BLOCKED: n1 and n3 are unreachable; the latest commit may exist only on n3$/m);
      assert.match(r.stdout, /^\| n1 +\| leader +\| +4 \| +0 \| +- \| primary +\| +- \| - +\| +- \| +- \|$/m);
      assert.match(r.stdout, /^\| n3 .*\| fenced +\| +- \| - +\| +- \| +- \|$/m);
      // Paused without a reason, and not blocked.
      c.maintenance = { paused: true, reason: null };
      c.postgres = { ...c.postgres, failoverBlocked: null };
      const p = await ogel(['status', ...auth(c)]);
      assert.match(p.stdout, /^Primary: n1 {3}Generation: 7 {3}Lease: n1 \(2000 ms\) {3}PAUSED$/m);
      assert.ok(!p.stdout.includes('BLOCKED'));
    });
  });

  test('status shows timeline, replication state, lag in bytes and time, and the lease time left', async () => {
    await withCluster(async (c) => {
      c.setPostgresRunning(3);
      const r = await ogel(['status', ...auth(c)]);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trimEnd().split('\n');
      assert.equal(lines[1], 'Primary: n1   Generation: 3   Lease: n1, 2350 ms left of 3000 ms');
      const row = (id: string): string[] =>
        (lines.find((l) => l.startsWith(`| ${id} `)) ?? '')
          .split('|')
          .slice(1, -1)
          .map((s) => s.trim());
      assert.deepEqual(row('n1').slice(5), ['primary', '2', '-', '-', '-']);
      assert.deepEqual(row('n2').slice(5), ['standby', '2', 'streaming, quorum', '128.1 KiB', '42 ms']);
      // replay_lag is null while the primary is idle: no time, and no lag in bytes either.
      assert.deepEqual(row('n3').slice(5), ['standby', '2', 'streaming, quorum', '0 B', '-']);
      assert.ok(!r.stdout.includes('~'), 'live figures carry no mark');
      const tableLines = lines.filter((l) => l.startsWith('|') || l.startsWith('+'));
      assert.equal(new Set(tableLines.map((l) => l.length)).size, 1);

      // The primary's daemon did not answer: lag from the reported LSNs, marked, and why.
      const n3 = c.postgres.nodes['n3']!;
      c.postgres = {
        ...c.postgres,
        lease: { holder: 'n1', generation: 3, durationMs: 3000, renewalSeq: 41, remainingMs: -420 },
        nodes: {
          ...c.postgres.nodes,
          n2: {
            ...c.postgres.nodes['n2']!,
            role: 'primary',
            replication: { source: 'reported', state: null, syncState: null, lagBytes: 3 * 1024 * 1024, lagSeconds: null },
          },
          n3: { ...n3, replication: { source: 'reported', state: 'disconnected', syncState: null, lagBytes: 512, lagSeconds: null } },
        },
        replication: { source: 'reported', from: 'n1', currentLsn: null, measuredAtMs: null, error: 'n1: no answer within 500 ms' },
      };
      const f = await ogel(['status', ...auth(c)]);
      assert.equal(f.code, 0, f.stderr);
      const flines = f.stdout.trimEnd().split('\n');
      assert.equal(flines[1], 'Primary: n1   Generation: 3   Lease: n1, overdue by 420 ms');
      const frow = (id: string): string[] =>
        (flines.find((l) => l.startsWith(`| ${id} `)) ?? '')
          .split('|')
          .slice(1, -1)
          .map((s) => s.trim());
      assert.deepEqual(frow('n2').slice(5), ['standby (wanted: primary)', '2', '-', '~3.0 MiB', '-']);
      assert.deepEqual(frow('n3').slice(5), ['standby', '2', 'disconnected', '~512 B', '-']);
      assert.equal(flines.at(-1), '~ lag from the LSNs the nodes report (up to about a second old); live figures unavailable: n1: no answer within 500 ms');

      // --json is the API's answer, new fields included.
      const j = await ogel(['status', '--json', ...auth(c)]);
      const body = JSON.parse(j.stdout) as { postgres: { replication: { error: string }; lease: { remainingMs: number } } };
      assert.equal(body.postgres.replication.error, 'n1: no answer within 500 ms');
      assert.equal(body.postgres.lease.remainingMs, -420);
    });
  });

  test('status --json prints exactly the API JSON and nothing else', async () => {
    await withCluster(async (c) => {
      const r = await ogel(['status', '--json', ...auth(c, c.urls[1] ?? '')]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, '');
      assert.deepEqual(JSON.parse(r.stdout), c.statusBody('n2', false));
      assert.equal(r.stdout, JSON.stringify(c.statusBody('n2', false), null, 2) + '\n');
      const stale = await ogel(['status', '--stale', '--json', ...auth(c)]);
      assert.equal((JSON.parse(stale.stdout) as { stale: boolean }).stale, true);
      assert.ok(c.requests.some((q) => q.url === '/v1/status?stale=true'));
    });
  });

  test('an answer that breaks the contract is a one-line error naming the field, not a crash', async () => {
    await withCluster(async (c) => {
      // A daemon that sends the generation as a string (broken, or not an ogel API).
      c.postgres = { ...c.postgres, generation: 'three' as unknown as number };
      const r = await ogel(['status', ...auth(c)]);
      assert.notEqual(r.code, 0);
      const first = r.stderr.split('\n')[0] ?? '';
      assert.match(first, /unexpected answer for GET \/v1\/status: field 'postgres\.generation': expected number, got "three"$/);
      assert.doesNotMatch(r.stderr, /TypeError|at .*\.js:\d+/);
    });
  });

  test('transfer-leadership prints the move and its duration', async () => {
    await withCluster(async (c) => {
      const r = await ogel(['transfer-leadership', '--to', 'n3', ...auth(c)]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'leadership moved n1 -> n3 in 41 ms\n');
      assert.equal(c.leader, 'n3');
      const j = await ogel(['transfer-leadership', '--json', ...auth(c)]);
      assert.equal(j.code, 0, j.stderr);
      assert.deepEqual(JSON.parse(j.stdout), { from: 'n3', to: 'n1', durationMs: 41 });
      const posted = c.requests.filter((q) => q.url === '/v1/leadership/transfer').map((q) => q.body);
      assert.deepEqual(posted, [{ to: 'n3' }, {}]);
    });
  });

  test('endpoint failover: the first URL is dead, the second answers', async () => {
    await withCluster(async (c) => {
      const dead = await deadUrl();
      const r = await ogel(['status', ...auth(c, dead, c.urls[1] ?? '')]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /answered by n2/);
      // Writes fail over on connection errors too (nothing was sent).
      const w = await ogel(['transfer-leadership', '--to', 'n2', ...auth(c, dead, c.urls[2] ?? '')]);
      assert.equal(w.code, 0, w.stderr);
      assert.equal(w.stdout, 'leadership moved n1 -> n2 in 41 ms\n');
    });
  });

  test('failover on timeouts for reads; a write with an unknown outcome is not repeated', async () => {
    await withCluster(async (c) => {
      const silent = await silentServer();
      try {
        const r = await ogel(['status', '--timeout-ms', '1000', ...auth(c, silent.url, c.urls[2] ?? '')]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /answered by n3/);
        const w = await ogel(['transfer-leadership', '--to', 'n3', '--timeout-ms', '1000', ...auth(c, silent.url, c.urls[2] ?? '')]);
        assert.equal(w.code, 1);
        assert.equal(
          w.stderr.split('\n')[0],
          `ogel: ${silent.url}: timed out after 1000 ms after the request was sent; the outcome is unknown (it may still take effect)`,
        );
        assert.match(w.stderr, /^hint: check with 'ogel status' before retrying$/m);
        assert.equal(c.requests.filter((q) => q.url === '/v1/leadership/transfer').length, 0);
      } finally {
        await silent.close();
      }
    });
  });

  test('503 no_leader moves on to the next node, even for writes', async () => {
    await withCluster(async (c) => {
      c.node('n1').noLeader = true;
      const r = await ogel(['transfer-leadership', '--to', 'n2', ...auth(c)]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'leadership moved n1 -> n2 in 41 ms\n');
      // Alone, the node's 503 is reported with its hint.
      const only = await ogel(['status', ...auth(c, c.urls[0] ?? '')]);
      assert.equal(only.code, 1);
      assert.equal(only.stderr, 'ogel: n1 sees no Raft leader\nhint: try another node, or use ?stale=true for a local read\n');
    });
  });

  test('no endpoint reachable: names each failure and suggests ogel up', async () => {
    const a = await deadUrl();
    const b = await deadUrl();
    const r = await ogel(['status', '--api', `${a},${b}`]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.equal(
      r.stderr,
      `ogel: no admin API reachable: ${a} (connection refused), ${b} (connection refused); is the cluster running? start it with 'ogel up'\n`,
    );
  });

  test('401: wrong token and missing token', async () => {
    await withCluster(async (c) => {
      const wrong = await ogel(['status', '--api', c.urls[0] ?? '', '--token', 'nope']);
      assert.equal(wrong.code, 1);
      assert.equal(wrong.stderr, 'ogel: the API rejected the token (401); pass --token or set OGEL_TOKEN\n');
      const missing = await ogel(['tenants', 'list', '--api', c.urls[0] ?? '']);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /^ogel: the API rejected the token \(401\); pass --token or set OGEL_TOKEN\nhint: no token was found/);
      // A 4xx is final: the other endpoints were not tried.
      const all = await ogel(['status', '--api', c.urls.join(','), '--token', 'nope']);
      assert.equal(all.code, 1);
      assert.deepEqual(new Set(c.requests.filter((q) => q.authorization === 'Bearer nope').map((q) => q.node)), new Set(['n1']));
    });
  });

  test('API errors print the message and the hint', async () => {
    await withCluster(async (c) => {
      const r = await ogel(['transfer-leadership', '--to', 'n9', ...auth(c)]);
      assert.equal(r.code, 1);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr, `ogel: field 'to': expected a node id, got "n9"\nhint: known nodes: n1, n2, n3\n`);
      const created = await ogel(['tenants', 'create', 'acme', ...auth(c)]);
      assert.equal(created.code, 0, created.stderr);
      const taken = await ogel(['tenants', 'create', 'acme', ...auth(c)]);
      assert.equal(taken.code, 1);
      assert.equal(taken.stderr, "ogel: tenant name 'acme' is taken\nhint: pick another name\n");
      const gone = await ogel(['members', 'remove', 'n7', ...auth(c)]);
      assert.equal(gone.code, 1);
      assert.equal(gone.stderr, 'ogel: no member n7\nhint: known nodes: n1, n2, n3\n');
    });
  });

  test('usage errors exit 2 with a clear message and print nothing on stdout', async () => {
    const cases: [string[], RegExp][] = [
      [['stauts'], /^ogel: unknown command 'stauts'; did you mean 'status'\?\n/],
      [['tenants', 'frobnicate'], /^ogel: tenants: unknown command 'ogel tenants frobnicate' \(commands: create, list, get, delete, set-limits\)\n/],
      [['tenants', 'set-limits', 'acme'], /^ogel: tenants set-limits: nothing to change: give --pool-size, --pool-mode, --max-connections or --rate-limit\n/],
      [
        ['tenants', 'set-limits', 'acme', '--pool-mode', 'statement'],
        /^ogel: tenants set-limits: --pool-mode: expected session, transaction or default, got "statement"\n/,
      ],
      [['tenants', 'set-limits', 'acme', '--pool-size', '0'], /^ogel: tenants set-limits: --pool-size: expected a whole number from 1 to 10000, got '0'\n/],
      [['tenants', 'set-limits', 'acme', '--pool-size', 'big'], /^ogel: tenants set-limits: --pool-size: expected a whole number from 1 to 10000, got 'big'\n/],
      [['tenants', 'set-limits', 'acme', '--rate-limit', '0'], /^ogel: tenants set-limits: --rate-limit: expected a whole number from 1 to 1000000, got '0'\n/],
      [['tenants', 'set-limits', '--pool-size', '3'], /^ogel: tenants set-limits: missing NAME\n/],
      [['tenants', 'create', 'acme', '--pool-size', '-1'], /^ogel: tenants create: --pool-size/],
      [['status', '--verbose'], /^ogel: status: unknown flag '--verbose'\nhint: run 'ogel status --help' for usage\n$/],
      [
        ['tenants', 'create', 'acme', '--max-connections', 'abc'],
        /^ogel: tenants create: --max-connections: expected a whole number from 1 to 10000, got 'abc'\n/,
      ],
      [['status', '--timeout-ms', '-5'], /^ogel: status: --timeout-ms needs a value/],
      [['status', '--timeout-ms', '0'], /^ogel: status: --timeout-ms: expected a whole number from 1 to 3600000, got '0'\n/],
      [['transfer-leadership', '--to'], /^ogel: transfer-leadership: --to needs a value \(--to NODE\)/],
      [['tenants', 'create'], /^ogel: tenants create: missing NAME\n/],
      [['status', 'extra'], /^ogel: status: unexpected argument 'extra': 'ogel status' takes no arguments\n/],
      [['members', 'add', '--id', 'n4', '--raft', 'nowhere'], /^ogel: members add: --raft: expected HOST:PORT, got 'nowhere'\n/],
      [['status', '--api', 'ftp://x'], /^ogel: status: --api: 'ftp:\/\/x' must be an http:\/\/ or https:\/\/ URL\n/],
      [['--json', 'status'], /^ogel: unknown flag '--json' before the command/],
      [
        ['switchover', '--scheduled', '2026-11-21 10:00'],
        /^ogel: switchover: --scheduled "2026-11-21 10:00": it is not an ISO 8601 date and time; expected ISO 8601 with a time zone, e\.g\. 2026-11-21T10:00:00Z/,
      ],
      [
        ['switchover', '--scheduled', '2026-11-21T10:00:00'],
        /^ogel: switchover: --scheduled "2026-11-21T10:00:00": it has no time zone \(add Z for UTC, or an offset like \+01:00\)/,
      ],
      [['switchover', '--scheduled', '2026-02-30T10:00:00Z'], /^ogel: switchover: --scheduled "2026-02-30T10:00:00Z": there is no such date or time/],
      [['switchover', '--scheduled', 'now'], /^ogel: switchover: --scheduled "now": it is not an ISO 8601 date and time/],
      [['switchover', '--scheduled'], /^ogel: switchover: --scheduled needs a value \(--scheduled TIME\)/],
      [['switchover', '--cancel', '--to', 'n2'], /^ogel: switchover: --cancel takes neither --to nor --scheduled/],
      [['switchover', '--cancel', '--scheduled', '2026-11-21T10:00:00Z'], /^ogel: switchover: --cancel takes neither --to nor --scheduled/],
    ];
    const runs = await Promise.all(cases.map(([args]) => ogel(args)));
    for (const [i, r] of runs.entries()) {
      const [args, re] = cases[i]!;
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stdout, '', args.join(' '));
      assert.match(r.stderr, re, args.join(' '));
      assert.ok(!/\n\s+at /.test(r.stderr), `no stack trace for ${args.join(' ')}`);
    }
  });

  test('switchover --scheduled records it and answers at once; status shows it; --cancel removes it', async () => {
    await withCluster(async (c) => {
      c.setPostgresRunning(3);
      const atMs = Math.ceil((Date.now() + 3_600_000) / 1000) * 1000;
      const iso = new Date(atMs).toISOString().replace('.000Z', 'Z');
      const r = await ogel(['switchover', '--to', 'n2', '--scheduled', iso, ...auth(c)]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^switchover scheduled to n2 at ${iso} \\(in (59m \\d+s|1h)\\); cancel it with: ogel switchover --cancel\n$`));
      const posted = c.requests.filter((q) => q.url === '/v1/switchover' && q.method === 'POST').map((q) => q.body);
      assert.deepEqual(posted, [{ to: 'n2', scheduledAt: iso }], 'the time is sent as typed; the daemon checks it against its clock');

      const st = await ogel(['status', ...auth(c)]);
      assert.equal(st.code, 0, st.stderr);
      assert.match(st.stdout, new RegExp(`^Switchover scheduled: to n2 at ${iso} \\(in (59m \\d+s|1h)\\)$`, 'm'));
      const again = await ogel(['switchover', '--scheduled', iso, ...auth(c)]);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /already scheduled.*cancel it first/);

      const cancel = await ogel(['switchover', '--cancel', '--json', ...auth(c)]);
      assert.equal(cancel.code, 0, cancel.stderr);
      assert.deepEqual(JSON.parse(cancel.stdout), { cancelled: true });
      assert.ok(!(await ogel(['status', ...auth(c)])).stdout.includes('Switchover scheduled'));
      const none = await ogel(['switchover', '--cancel', ...auth(c)]);
      assert.equal(none.code, 0, none.stderr);
      assert.equal(none.stdout, 'no switchover was scheduled; nothing to cancel\n');

      // --json, no target; and the daemon's range checks, with the field and the value.
      const j = await ogel(['switchover', '--scheduled', iso, '--json', ...auth(c)]);
      assert.equal(j.code, 0, j.stderr);
      assert.deepEqual(JSON.parse(j.stdout), { scheduled: { to: null, at: new Date(atMs).toISOString(), notBeforeMs: atMs } });
      const st2 = await ogel(['status', ...auth(c)]);
      assert.match(st2.stdout, /^Switchover scheduled: to the most caught-up standby at /m);
      await ogel(['switchover', '--cancel', ...auth(c)]);
      const past = await ogel(['switchover', '--scheduled', '2020-01-01T00:00:00Z', ...auth(c)]);
      assert.equal(past.code, 1);
      assert.match(
        past.stderr,
        /^ogel: field 'scheduledAt': "2020-01-01T00:00:00Z" is \d+d( \d+h)? in the past \(now is .*\); for a switchover now, leave out scheduledAt\n/,
      );
      const far = await ogel(['switchover', '--scheduled', new Date(Date.now() + 40 * 86_400_000).toISOString(), ...auth(c)]);
      assert.equal(far.code, 1);
      assert.match(far.stderr, /field 'scheduledAt': ".*" is (39d 23h|40d) ahead; at most 30 days ahead is accepted/);
      const self = await ogel(['switchover', '--to', 'n1', '--scheduled', iso, ...auth(c)]);
      assert.equal(self.code, 1);
      assert.match(self.stderr, /field 'to': n1 is already the primary/);
    });
  });

  test('tenants delete refuses without --yes when stdin is not a TTY', async () => {
    await withCluster(async (c) => {
      assert.equal((await ogel(['tenants', 'create', 'acme', ...auth(c)])).code, 0);
      const r = await ogel(['tenants', 'delete', 'acme', ...auth(c)]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /^ogel: tenants delete: refusing to delete tenant 'acme' without confirmation: stdin is not a terminal; pass --yes\n/);
      assert.ok(c.tenants.has('acme'));
      assert.equal(c.requests.filter((q) => q.method === 'DELETE').length, 0);
      const y = await ogel(['tenants', 'delete', 'acme', '--yes', ...auth(c)]);
      assert.equal(y.code, 0, y.stderr);
      assert.equal(y.stdout, 'Deleted tenant acme\n');
      assert.ok(!c.tenants.has('acme'));
    });
  });

  test('tenants create, list and get; --json is the API answer', async () => {
    await withCluster(async (c) => {
      const r = await ogel(['tenants', 'create', 'acme', '--max-connections', '5', ...auth(c)]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stdout,
        /^Created tenant acme \(database acme, role acme\)\nPassword: generated-secret .*\nURL: postgresql:\/\/acme:generated-secret@127\.0\.0\.1:6432\/acme\n$/,
      );
      assert.deepEqual(c.requests.find((q) => q.method === 'POST')?.body, { name: 'acme', limits: { maxConnections: 5 } });
      const j = await ogel(['tenants', 'create', 'beta', '--password', 'pw', '--json', ...auth(c)]);
      assert.equal((JSON.parse(j.stdout) as { tenant: { name: string } }).tenant.name, 'beta');
      const list = await ogel(['tenants', 'list', ...auth(c)]);
      assert.equal(list.code, 0, list.stderr);
      assert.match(
        list.stdout,
        /^\| Name +\| Database +\| Role +\| State +\| Max connections \| Pool size +\| Pool mode +\| Placement \| Created \(UTC\) +\|$/m,
      );
      assert.match(list.stdout, /^\| acme +\| acme +\| acme +\| active +\| +5 \| default \(20\) \| default +\| - +\| 2025-11-21 04:40:00Z \|$/m);
      const lj = await ogel(['tenants', 'list', '--json', ...auth(c)]);
      assert.deepEqual(JSON.parse(lj.stdout), { tenants: [...c.tenants.values()] });
      const missing = await ogel(['tenants', 'get', 'nope', ...auth(c)]);
      assert.equal(missing.code, 1);
      assert.equal(missing.stderr, "ogel: no tenant named 'nope'\nhint: list tenants with 'ogel tenants list'\n");
    });
  });

  test('tenants set-limits: PATCH with only the limits given; list and get show the pool size; create --pool-size', async () => {
    await withCluster(async (c) => {
      assert.equal((await ogel(['tenants', 'create', 'acme', '--max-connections', '5', ...auth(c)])).code, 0);
      const set = await ogel(['tenants', 'set-limits', 'acme', '--pool-size', '3', ...auth(c)]);
      assert.equal(set.code, 0, set.stderr);
      assert.equal(set.stdout, 'Set limits of tenant acme: pool size 3, pool mode default, max connections 5, rate limit 0/s\n');
      const patches = () => c.requests.filter((q) => q.method === 'PATCH');
      assert.deepEqual(
        patches().map((q) => [q.url, q.body]),
        [['/v1/tenants/acme', { limits: { poolSize: 3 } }]],
      );
      const get = await ogel(['tenants', 'get', 'acme', ...auth(c)]);
      assert.match(get.stdout, /^\| acme +\| acme +\| acme +\| active +\| +5 \| +3 \| default +\| - +\| 2025-11-21 04:40:00Z \|$/m);

      const back = await ogel([
        'tenants',
        'set-limits',
        'acme',
        '--pool-size',
        'default',
        '--max-connections',
        '8',
        '--rate-limit',
        '100',
        '--json',
        ...auth(c),
      ]);
      assert.equal(back.code, 0, back.stderr);
      assert.deepEqual(patches()[1]?.body, { limits: { poolSize: null, maxConnections: 8, rateLimitPerSec: 100 } });
      assert.deepEqual(JSON.parse(back.stdout), { tenant: c.tenants.get('acme') });
      assert.match((await ogel(['tenants', 'list', ...auth(c)])).stdout, /^\| acme +\| acme +\| acme +\| active +\| +8 \| default \(20\) \|/m);

      const created = await ogel(['tenants', 'create', 'beta', '--pool-size', '7', ...auth(c)]);
      assert.equal(created.code, 0, created.stderr);
      assert.match(created.stdout, /^Created tenant beta \(database beta, role beta\)\nPool size: 7\nPassword: generated-secret/);
      assert.deepEqual(patches()[2]?.body, { limits: { poolSize: 7 } }, 'created, then its limits set');
      assert.equal(c.tenants.get('beta')?.limits.poolSize, 7);

      const missing = await ogel(['tenants', 'set-limits', 'nope', '--pool-size', '2', ...auth(c)]);
      assert.equal(missing.code, 1);
      assert.equal(missing.stderr, "ogel: no tenant named 'nope'\nhint: list tenants with 'ogel tenants list'\n");
    });
  });

  test('help for tenants set-limits names every flag and shows examples', async () => {
    const h = await ogel(['tenants', 'set-limits', '--help']);
    assert.equal(h.code, 0);
    assert.match(
      h.stdout,
      /Usage: ogel tenants set-limits NAME \[--pool-size N\|default\] \[--pool-mode MODE\|default\] \[--max-connections N\] \[--rate-limit N\]/,
    );
    assert.match(h.stdout, /--pool-size N\|default/);
    assert.match(h.stdout, /none is cut/);
    assert.match(h.stdout, /Examples:\n(.|\n)*ogel tenants set-limits acme --pool-size default/);
    assert.match((await ogel(['help', 'tenants', 'create'])).stdout, /--pool-size N/);
  });

  test('members list, add and remove; history; config show', async () => {
    await withCluster(async (c) => {
      const add = await ogel([
        'members',
        'add',
        '--id',
        'n4',
        '--raft',
        '127.0.0.1:7004',
        '--api',
        '127.0.0.1:8004',
        '--proxy',
        '127.0.0.1:6435',
        '--postgres',
        '127.0.0.1:5436',
        '--endpoint',
        c.urls[1] ?? '',
        '--token',
        c.token,
      ]);
      assert.equal(add.code, 0, add.stderr);
      assert.equal(add.stdout, 'added member n4 (voter)\n');
      const list = await ogel(['members', 'list', ...auth(c)]);
      assert.match(
        list.stdout,
        /^\| n4 +\| follower +\| yes +\| 127\.0\.0\.1:7004 \| 127\.0\.0\.1:8004 +\| 127\.0\.0\.1:6435 \| 127\.0\.0\.1:5436 \| yes +\|$/m,
      );
      const rm = await ogel(['members', 'remove', 'n4', ...auth(c)]);
      assert.equal(rm.stdout, 'removed member n4\n');
      const pl = await ogel(['pools', ...auth(c)]);
      assert.equal(pl.code, 0, pl.stderr);
      assert.match(pl.stdout, /^Proxy of n\d \(127\.0\.0\.1:6432\), transaction mode, default pool size 20\nClients: 7 of 1000 \(acme 7\)\n/);
      assert.match(pl.stdout, /^\| acme +\| acme +\| n1 \(primary\) \| +3 \| +5 \| +5 \| +0 \| +0 \| +2 \| +13 \| +1042 \|$/m);
      assert.match(pl.stdout, /held for a primary 3, hold timeouts 0, run again 1, failed in flight 2, cancels 0, auth failures 1, refused by a limit 0\n$/);
      const plj = await ogel(['pools', '--json', ...auth(c)]);
      assert.equal((JSON.parse(plj.stdout) as { pools: unknown[] }).pools.length, 1);
      const h = await ogel(['history', ...auth(c)]);
      assert.match(h.stdout, /^\| +1 \| n1 +\| bootstrap \| 0\/3000148 \| 2025-11-21 04:40:00Z \|$/m);
      const cfg = await ogel(['config', 'show', ...auth(c)]);
      assert.equal(cfg.code, 0, cfg.stderr);
      assert.equal((JSON.parse(cfg.stdout) as { api: { token: string } }).api.token, '<redacted>');
    });
  });

  test('pause --wait polls every node until each reports the flag; resume --wait', async () => {
    await withCluster(async (c) => {
      c.node('n3').applyDelayMs = 300;
      const start = Date.now();
      // Only n1 is given: the other nodes are found through the members' API addresses.
      const r = await ogel(['pause', '--reason', 'upgrade', '--wait', ...auth(c, c.urls[0] ?? '')]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(Date.now() - start >= 300, 'waited for n3');
      assert.match(r.stdout, /^Maintenance mode: on \(upgrade\)\nAll 3 nodes \(n1, n2, n3\) report maintenance mode on \(waited \d+ ms\)\n$/);
      assert.ok(c.requests.some((q) => q.node === 'n3' && q.url === '/v1/status?stale=true'));
      const j = await ogel(['resume', '--wait', '--json', ...auth(c)]);
      assert.equal(j.code, 0, j.stderr);
      assert.deepEqual(JSON.parse(j.stdout), { paused: false });
      assert.equal(c.node('n3').maintenance.paused, false);
      // A node that never applies it: the wait ends with a clear error.
      c.node('n3').applyDelayMs = 0;
      c.node('n2').applyDelayMs = 60_000;
      const t = await ogel(['pause', '--wait', '--timeout-ms', '1000', ...auth(c)]);
      assert.equal(t.code, 1);
      assert.match(t.stderr, /^ogel: timed out after 1000 ms waiting for every node to report maintenance mode on: n2 \(still reports off\)\n/);
    });
  });

  test('discovery: OGEL_API and OGEL_TOKEN; flags win over the environment', async () => {
    await withCluster(async (c) => {
      const dead = await deadUrl();
      const env = { OGEL_API: `${dead},${c.urls[2] ?? ''}`, OGEL_TOKEN: c.token };
      const r = await ogel(['status'], { env });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /answered by n3/);
      const f = await ogel(['status', '--api', c.urls[1] ?? ''], { env });
      assert.match(f.stdout, /answered by n2/);
      const t = await ogel(['status', '--token', 'wrong'], { env });
      assert.equal(t.code, 1);
      assert.match(t.stderr, /rejected the token \(401\)/);
    });
  });

  test('discovery: ./.ogel/cluster.json and OGEL_STATE_FILE', async () => {
    await withCluster(async (c) => {
      const dir = mkdtempSync(join(scratch, 'state-'));
      mkdirSync(join(dir, '.ogel'));
      writeFileSync(join(dir, '.ogel', 'cluster.json'), JSON.stringify({ apis: [c.urls[1]], token: c.token }));
      const r = await ogel(['status'], { cwd: dir });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /answered by n2/);
      const other = join(dir, 'elsewhere.json');
      writeFileSync(other, JSON.stringify({ apis: [c.urls[2]], token: c.token }));
      const e = await ogel(['status'], { env: { OGEL_STATE_FILE: other } });
      assert.equal(e.code, 0, e.stderr);
      assert.match(e.stdout, /answered by n3/);
      // The state file's token goes only to the state file's own endpoints.
      const foreign = await ogel(['status', '--api', c.urls[0] ?? ''], { cwd: dir });
      assert.equal(foreign.code, 1);
      assert.ok(c.requests.some((q) => q.node === 'n1' && q.authorization === undefined));
      const bad = join(dir, 'bad.json');
      writeFileSync(bad, '{"apis": "nope"}');
      const b = await ogel(['status'], { env: { OGEL_STATE_FILE: bad } });
      assert.equal(b.code, 1);
      assert.equal(b.stderr, `ogel: state file ${bad}: field 'apis' must be a list of URLs\n`);
      const none = await ogel(['status'], { cwd: mkdtempSync(join(scratch, 'empty-')) });
      assert.equal(none.code, 1);
      assert.match(none.stderr, /^ogel: no admin API address: none given with --api or OGEL_API, and no local cluster state file\nhint: .*'ogel up'/);
    });
  });
});

describe('ogel CLI: tenants pool mode', () => {
  test('set-limits --pool-mode session|default and create --pool-mode: PATCH with poolMode; list shows it', async () => {
    await withCluster(async (c) => {
      assert.equal((await ogel(['tenants', 'create', 'acme', ...auth(c)])).code, 0);
      const patches = () => c.requests.filter((q) => q.method === 'PATCH');
      const mode = await ogel(['tenants', 'set-limits', 'acme', '--pool-mode', 'session', ...auth(c)]);
      assert.equal(mode.code, 0, mode.stderr);
      assert.deepEqual(patches()[0]?.body, { limits: { poolMode: 'session' } });
      assert.match(mode.stdout, /pool mode session/);
      assert.match((await ogel(['tenants', 'get', 'acme', ...auth(c)])).stdout, /^\| acme .*\| session +\| - +\|/m);
      const back = await ogel(['tenants', 'set-limits', 'acme', '--pool-mode', 'default', ...auth(c)]);
      assert.equal(back.code, 0, back.stderr);
      assert.deepEqual(patches()[1]?.body, { limits: { poolMode: null } });
      const gamma = await ogel(['tenants', 'create', 'gamma', '--pool-mode', 'session', ...auth(c)]);
      assert.equal(gamma.code, 0, gamma.stderr);
      assert.match(gamma.stdout, /\nPool mode: session\n/);
      assert.deepEqual(patches()[2]?.body, { limits: { poolMode: 'session' } });
    });
  });
});
