// The CLI's WAL archive views, run as a process against the fake admin API
// (test/helpers/fake-admin-api.ts): the Archive line of `ogel status` (restore
// window and lag, RETRYING, CONFLICT, nothing restorable, the slot alarm), and
// `ogel restore-point create|list` with --json and their errors.

import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { ArchiveSummary } from '../api/contract/index.js';
import { FakeCluster } from '../../test/helpers/fake-admin-api.js';

const CLI = fileURLToPath(new URL('../main.js', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'ogel-cli-archive-test-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

function ogel(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: scratch, env: { PATH: process.env['PATH'] ?? '' }, stdio: ['pipe', 'pipe', 'pipe'] });
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

async function withCluster(fn: (c: FakeCluster, auth: string[]) => Promise<void>): Promise<void> {
  const c = await FakeCluster.start();
  try {
    await fn(c, ['--api', c.urls.join(','), '--token', c.token]);
  } finally {
    await c.close();
  }
}

const FROM = Date.parse('2026-12-08T03:59:00.250Z');
const TO = Date.parse('2026-12-08T04:10:12.900Z');

function archive(o: Partial<ArchiveSummary> = {}, live: Partial<NonNullable<ArchiveSummary['live']>> = {}): ArchiveSummary {
  return {
    timeline: 2,
    window: {
      backup: '20261208-035800-f-1a2b3c',
      timeline: 2,
      fromLsn: '0/5000100',
      fromAtMs: FROM,
      fromAt: new Date(FROM).toISOString(),
      toLsn: '0/9000000',
      toAtMs: TO,
      toAt: new Date(TO).toISOString(),
    },
    reason: null,
    note: null,
    ranges: 2,
    timelineRanges: 1,
    live: {
      node: 'n1',
      state: 'archiving',
      timeline: 2,
      archivedLsn: '0/9000000',
      lagMs: 120,
      lastError: null,
      gaps: 0,
      conflicts: 0,
      uploadedObjects: 40,
      uploadedBytes: 1_048_576,
      slot: { slot: 'ogel_wal_archive', walStatus: 'reserved', safeWalBytes: 1_073_741_824, active: true },
      measuredAtMs: TO,
      ...live,
    },
    liveError: null,
    ...o,
  };
}

const archiveLines = (out: string): string[] => out.split('\n').filter((l) => l.startsWith('Archive:') || l.startsWith('WAL: the archive'));

describe('ogel CLI: the WAL archive', { concurrency: true }, () => {
  test('status: the restore window and the lag; RETRYING and CONFLICT with the error; nothing restorable; the slot alarm', async () => {
    await withCluster(async (c, auth) => {
      c.setPostgresRunning(3);
      const none = await ogel(['status', ...auth]);
      assert.equal(none.code, 0, none.stderr);
      assert.deepEqual(archiveLines(none.stdout), [], 'no line from a daemon without the archive section');

      const cases: [ArchiveSummary, string[]][] = [
        [archive(), ['Archive: restorable 2026-12-08T03:59:00Z .. 2026-12-08T04:10:12Z (timeline 2), lag 120 ms']],
        [
          archive({}, { state: 'retrying', lagMs: null, lastError: 'store unreachable: connect ECONNREFUSED 10.0.0.9:9000' }),
          [
            'Archive: RETRYING on n1 (store unreachable: connect ECONNREFUSED 10.0.0.9:9000); restorable 2026-12-08T03:59:00Z .. 2026-12-08T04:10:12Z (timeline 2)',
          ],
        ],
        [
          archive({}, { state: 'conflict', lastError: 'the store holds different bytes for 000000020000000000000009', conflicts: 1 }),
          [
            'Archive: CONFLICT on n1: archiving stopped (the store holds different bytes for 000000020000000000000009); restorable 2026-12-08T03:59:00Z .. 2026-12-08T04:10:12Z (timeline 2)',
          ],
        ],
        [
          archive({ window: null, reason: 'no backup since the archive started', timelineRanges: 2, note: null }, { gaps: 1 }),
          [
            'Archive: nothing restorable yet (no backup since the archive started), lag 120 ms; 1 GAP on n1 since its daemon started; GAP in the archive: 2 ranges on timeline 2',
          ],
        ],
        [
          archive({ live: null, liveError: 'n1: no answer within 500 ms' }),
          ['Archive: restorable 2026-12-08T03:59:00Z .. 2026-12-08T04:10:12Z (timeline 2), archiver state unknown (n1: no answer within 500 ms)'],
        ],
        [
          archive({}, { slot: { slot: 'ogel_wal_archive', walStatus: 'unreserved', safeWalBytes: 0, active: true }, lagMs: 95_000 }),
          [
            'Archive: restorable 2026-12-08T03:59:00Z .. 2026-12-08T04:10:12Z (timeline 2), lag 95.0 s',
            "WAL: the archive's replication slot on n1 is past max_slot_wal_keep_size: WAL it has not archived is freed at the next checkpoint unless the archive catches up",
          ],
        ],
        [
          archive({}, { slot: { slot: 'ogel_wal_archive', walStatus: 'lost', safeWalBytes: null, active: false } }),
          [
            'Archive: restorable 2026-12-08T03:59:00Z .. 2026-12-08T04:10:12Z (timeline 2), lag 120 ms',
            "WAL: the archive's replication slot on n1 was invalidated (past max_slot_wal_keep_size): WAL it had not archived was freed; the archive has a gap, and a full backup is due",
          ],
        ],
      ];
      for (const [a, want] of cases) {
        c.archive = a;
        const r = await ogel(['status', ...auth]);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(archiveLines(r.stdout), want);
      }
      const j = await ogel(['status', '--json', ...auth]);
      assert.equal(j.code, 0, j.stderr);
      assert.deepEqual((JSON.parse(j.stdout) as { archive: unknown }).archive, c.archive);
    });
  });

  test('restore-point create and list, with --json; a name taken is the API error with its hint', async () => {
    await withCluster(async (c, auth) => {
      const empty = await ogel(['restore-point', 'list', ...auth]);
      assert.equal(empty.code, 0, empty.stderr);
      assert.equal(empty.stdout, "Store: fs store at /srv/ogel (storage.fs.dir)\nNo restore points yet ('ogel restore-point create NAME' makes one).\n");

      const made = await ogel(['restore-point', 'create', 'before-migration-42', ...auth]);
      assert.equal(made.code, 0, made.stderr);
      assert.equal(
        made.stdout,
        'Restore point before-migration-42 created at LSN 0/3000148 on timeline 2, 2026-12-08 04:00:12Z.\n' +
          'Restore to it: ogel restore --config FILE --target-name before-migration-42 --to-dir DIR\n',
      );
      assert.deepEqual(c.requests.at(-1)?.body, { name: 'before-migration-42' });
      const json = await ogel(['restore-point', 'create', 'nightly.2026-12-08', '--json', ...auth]);
      assert.equal(json.code, 0, json.stderr);
      assert.deepEqual(JSON.parse(json.stdout), { restorePoint: c.restorePoints[1] });

      const list = await ogel(['restore-point', 'list', ...auth]);
      assert.equal(list.code, 0, list.stderr);
      const rows = list.stdout.split('\n').filter((l) => l.startsWith('| '));
      assert.deepEqual(rows, [
        '| Name                | Made (UTC)           | LSN       | TL |',
        '| before-migration-42 | 2026-12-08 04:00:12Z | 0/3000148 |  2 |',
        '| nightly.2026-12-08  | 2026-12-08 04:00:13Z | 0/3000248 |  2 |',
      ]);
      const listJson = await ogel(['restore-point', 'list', '--json', ...auth]);
      assert.deepEqual(JSON.parse(listJson.stdout), { store: 'fs store at /srv/ogel (storage.fs.dir)', restorePoints: c.restorePoints });

      const taken = await ogel(['restore-point', 'create', 'before-migration-42', ...auth]);
      assert.equal(taken.code, 1);
      assert.equal(taken.stdout, '');
      assert.match(
        taken.stderr,
        /^ogel: field 'name': restore point "before-migration-42" already exists \(made 2026-12-08T04:00:12\.000Z at LSN 0\/3000148 on timeline 2\)\nhint: pick another name\n$/,
      );
    });
  });

  test('restore-point usage errors name the value and the fix, exit 2, and send nothing', async () => {
    const cases: [string[], RegExp][] = [
      [['restore-point', 'create'], /^ogel: restore-point create: missing NAME\n/],
      [
        ['restore-point', 'create', 'has space'],
        /^ogel: restore-point create: NAME: "has space" is not a usable restore point name: 1 to 63 characters of letters, digits/,
      ],
      [['restore-point', 'create', '-x'], /^ogel: restore-point create: /],
      [['restore-point', 'create', 'a', 'b'], /^ogel: restore-point create: unexpected argument 'b'/],
      [['restore-point', 'list', 'x'], /^ogel: restore-point list: unexpected argument 'x'/],
      [['restore-point', 'drop'], /^ogel: restore-point: unknown command 'ogel restore-point drop' \(commands: create, list\)/],
    ];
    const runs = await Promise.all(cases.map(([args]) => ogel([...args, '--api', 'http://127.0.0.1:9', '--token', 't'])));
    for (const [i, r] of runs.entries()) {
      const [args, re] = cases[i]!;
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stdout, '', args.join(' '));
      assert.match(r.stderr, re, args.join(' '));
    }
    const help = await ogel(['help', 'restore-point', 'create']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Usage: ogel restore-point create NAME/);
    assert.match(help.stdout, /--target-name/);
    assert.match(help.stdout, /Examples:/);
    const group = await ogel(['restore-point', '--help']);
    assert.equal(group.code, 0);
    assert.match(group.stdout, /restore-point create +mark this moment/);
  });
});
