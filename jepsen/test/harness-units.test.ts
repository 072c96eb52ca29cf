// Unit tests of the harness's pure parts: the seeded fault plan, the command
// line, the report. (The harness against a real cluster: harness-smoke.test.ts.)

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { COMBINED_CELLS, matrixCells, matrixTable, parseCli } from '../cli.js';
import { writeAvailability } from '../history/index.js';
import { renderReport } from '../harness/report.js';
import type { Summary } from '../harness/runner.js';
import { NEMESIS_NAMES, parseNemeses } from '../nemesis/index.js';
import { DEFAULT_SCHEDULE, planFaults, type FaultRecord, type PlannedFault } from '../nemesis/scheduler.js';
import { accountFaults, faultsVerdict } from '../nemesis/accounting.js';

describe('fault plan', () => {
  it('is a pure function of the seed', () => {
    const a = planFaults(42, ['partition-primary', 'kill-daemon'], 60_000);
    const b = planFaults(42, ['partition-primary', 'kill-daemon'], 60_000);
    const c = planFaults(43, ['partition-primary', 'kill-daemon'], 60_000);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
  });

  it('gives every nemesis a turn before any gets a second, one fault at a time, all healed by the end', () => {
    for (let seed = 0; seed < 200; seed++) {
      const names = [...NEMESIS_NAMES];
      const plan = planFaults(seed, names, 300_000);
      const first = plan.slice(0, names.length).map((p) => p.name);
      assert.deepEqual([...first].sort(), [...names].sort(), `seed ${seed}: the first cycle covers every nemesis`);
      let end = 0;
      for (const p of plan) {
        assert.ok(p.atMs >= end + DEFAULT_SCHEDULE.quietMinMs, `seed ${seed}: a quiet gap before each fault`);
        assert.ok(p.durationMs >= 1 && p.durationMs <= DEFAULT_SCHEDULE.faultMaxMs);
        end = p.atMs + p.durationMs;
        assert.ok(end <= 300_000, `seed ${seed}: healed before the end`);
      }
    }
  });

  it('the smoke run (50 s, two nemeses) plans each at least once', () => {
    for (let seed = 0; seed < 100; seed++) {
      const names = new Set(planFaults(seed, ['partition-primary', 'kill-daemon'], 50_000).map((p) => p.name));
      assert.equal(names.size, 2, `seed ${seed}`);
    }
  });

  it('no nemesis, no faults', () => {
    assert.deepEqual(planFaults(1, [], 60_000), []);
  });
});

describe('faults planned vs injected', () => {
  const planned = (name: PlannedFault['name'], atMs: number): PlannedFault => ({ name, atMs, durationMs: 4_000, seed: atMs });
  const record = (name: FaultRecord['name'], outcome: FaultRecord['outcome'], startMs: number): FaultRecord => ({
    name,
    outcome,
    startMs,
    endMs: outcome === 'injected' ? startMs + 4_000 : startMs,
    detail: null,
    healed: null,
    ...(outcome === 'start-failed' ? { error: 'start: no route' } : {}),
  });
  const plan = [planned('kill-daemon', 3_000), planned('partition-primary', 10_000), planned('kill-daemon', 17_000)];

  it('a run whose planned faults all happened passes, with the counts per nemesis', () => {
    const a = accountFaults(['kill-daemon', 'partition-primary'], plan, [
      record('kill-daemon', 'injected', 3_000),
      record('partition-primary', 'injected', 10_000),
      record('kill-daemon', 'injected', 17_000),
    ]);
    assert.deepEqual(a.byNemesis['kill-daemon'], { planned: 2, injected: 2, skipped: 0, startFailed: 0, notAttempted: 0 });
    assert.equal(a.planned, 3);
    assert.equal(a.injected, 3);
    assert.deepEqual(faultsVerdict(a), { valid: true });
  });

  it('a skipped fault, a failed start or a fault never attempted makes the run not valid (faults-not-injected)', () => {
    const a = accountFaults(['kill-daemon', 'partition-primary'], plan, [
      record('kill-daemon', 'skipped', 3_000),
      record('partition-primary', 'start-failed', 10_000),
    ]);
    assert.deepEqual(a.byNemesis['kill-daemon'], { planned: 2, injected: 0, skipped: 1, startFailed: 0, notAttempted: 1 });
    assert.deepEqual(a.byNemesis['partition-primary'], { planned: 1, injected: 0, skipped: 0, startFailed: 1, notAttempted: 0 });
    const v = faultsVerdict(a);
    assert.equal(v.valid, 'unknown');
    assert.ok(v.anomaly !== undefined);
    assert.equal(v.anomaly.type, 'faults-not-injected');
    assert.equal(v.anomaly.injected, 0);
    assert.equal(v.anomaly.planned, 3);
    assert.match(
      v.anomaly.message,
      /0 of 3 planned faults were injected: kill-daemon 0\/2 \(1 skipped, 1 never attempted\), partition-primary 0\/1 \(1 failed to start\)/,
    );
    // one of three missing is enough
    const b = accountFaults(['kill-daemon', 'partition-primary'], plan, [
      record('kill-daemon', 'injected', 3_000),
      record('partition-primary', 'injected', 10_000),
      record('kill-daemon', 'skipped', 17_000),
    ]);
    assert.equal(faultsVerdict(b).valid, 'unknown');
  });

  it('a nemesis of the run with no fault planned (a run too short) is not valid either; no nemesis, no fault is', () => {
    const a = accountFaults(['kill-daemon', 'wipe-node'], [planned('kill-daemon', 3_000)], [record('kill-daemon', 'injected', 3_000)]);
    assert.deepEqual(a.byNemesis['wipe-node'], { planned: 0, injected: 0, skipped: 0, startFailed: 0, notAttempted: 0 });
    const v = faultsVerdict(a);
    assert.equal(v.valid, 'unknown');
    assert.match(v.anomaly!.message, /wipe-node 0\/0 \(none planned: the run is too short\)/);
    assert.deepEqual(faultsVerdict(accountFaults([], [], [])), { valid: true });
  });
});

describe('command line', () => {
  it('parses the documented form', () => {
    const c = parseCli(['--workload', 'set', '--nemesis', 'partition-primary,kill-daemon', '--time', '30', '--seed', '7', '--json']);
    assert.ok(c !== 'help');
    assert.equal(c.run.workload, 'set');
    assert.deepEqual(c.run.nemeses, ['partition-primary', 'kill-daemon']);
    assert.equal(c.run.timeS, 30);
    assert.equal(c.run.seed, 7);
    assert.equal(c.json, true);
  });

  it('refuses unknown workloads and nemeses, naming the valid ones', () => {
    assert.throws(() => parseCli(['--workload', 'queue']), /expected one of register, set, bank/);
    assert.throws(() => parseCli(['--workload', 'set', '--nemesis', 'partition-primary,flood']), /unknown nemesis "flood"; known: .*slow-link/);
    assert.throws(() => parseCli(['--workload', 'set', '--time', '0']), /--time/);
    assert.throws(() => parseCli(['--workload', 'set', '--fault-ms', '9-3']), /--fault-ms/);
    assert.throws(() => parseCli(['--workload', 'set', '--unsafe', 'no-fsync']), /--unsafe: unknown switch "no-fsync"; known: keep-wal-receivers, no-fence/);
  });

  it('the matrix: every cell with N seeds (S, S+1, ...); the combined cells run their nemeses together with short quiet gaps', () => {
    const cells = matrixCells({ workloads: ['set', 'bank'], nemeses: ['kill-host', 'pause-daemon'], combined: true, seed: 7, seeds: 3 });
    assert.equal(cells.length, 2 * (2 + COMBINED_CELLS.length) * 3);
    assert.deepEqual(
      cells.slice(0, 4).map((c) => [c.workload, c.nemeses.join('+'), c.seed]),
      [
        ['set', 'kill-host', 7],
        ['set', 'kill-host', 8],
        ['set', 'kill-host', 9],
        ['set', 'pause-daemon', 7],
      ],
    );
    const combined = cells.filter((c) => c.nemeses.length > 1);
    assert.equal(combined.length, 2 * COMBINED_CELLS.length * 3);
    for (const c of combined) assert.deepEqual(c.extra, ['--quiet-ms', '500-1500']);
    for (const c of COMBINED_CELLS) for (const n of c.nemeses) assert.ok((NEMESIS_NAMES as readonly string[]).includes(n), n);
    assert.equal(matrixCells({ workloads: ['set'], nemeses: ['kill-host'], combined: false, seed: 1, seeds: 1 }).length, 1, 'narrowed: no combined cells');
    const c = parseCli(['--all', '--seeds', '3', '--seed', '5']);
    assert.ok(c !== 'help' && c.seeds === 3 && c.run.seed === 5);
    assert.throws(() => parseCli(['--workload', 'set', '--seeds', '3']), /use it with --all/);
    assert.throws(() => parseCli(['--all', '--seeds', '0']), /--seeds: expected an integer in \[1, 100\]/);
  });

  it('prints the matrix as a Markdown table, one row per run', () => {
    const t = matrixTable([
      {
        workload: 'set',
        nemesis: 'kill-host',
        seed: 1,
        valid: true,
        ops: 4012,
        anomalies: 0,
        faults: 7,
        faults_planned: 7,
        recovery_ms: 2315,
        write_unavailable_ms: 1480,
        archive: { valid: true, store: 'fs', caught_up_ms: 412, timeline: 1, spans: 1, archived_to: '0/5A3B2C8', flush_lsn: '0/5A3B2C8' },
        dir: '/x',
      },
      {
        workload: 'set',
        nemesis: 'wipe-node',
        valid: 'unknown',
        ops: 3000,
        anomalies: 1,
        faults: 5,
        faults_planned: 7,
        recovery_ms: 900,
        write_unavailable_ms: 1200,
        archive: { valid: false, store: 's3', caught_up_ms: null, timeline: 3, spans: 2, archived_to: '0/4000000', flush_lsn: '0/5A3B2C8' },
        dir: '/y',
      },
      {
        workload: 'bank',
        nemesis: 'slow-link',
        valid: 'unknown',
        ops: undefined,
        anomalies: undefined,
        faults: undefined,
        faults_planned: undefined,
        recovery_ms: null,
        write_unavailable_ms: null,
        dir: undefined,
        error: 'no JSON from the run (exit 1)',
      },
    ]).split('\n');
    assert.equal(
      t[0],
      '| workload | nemesis | seed | valid | ops | anomalies | faults (injected/planned) | longest write unavailability (ms) | recovery (ms) | WAL archive |',
    );
    assert.equal(t[2], '| set | kill-host | 1 | true | 4012 | 0 | 7/7 | 1480 | 2315 | caught up in 412 ms (1 span to 0/5A3B2C8) |');
    assert.equal(t[3], '| set | wipe-node | - | unknown | 3000 | 1 | 5/7 | 1200 | 900 | GAP, BEHIND: 0/4000000 of 0/5A3B2C8 (2 spans) |');
    assert.equal(t[4], '| bank | slow-link | - | unknown (no JSON from the run (exit 1)) | - | - | - | - | - | - |');
  });

  it('passes unsafe switches to the run (none by default)', () => {
    const safe = parseCli(['--workload', 'set']);
    const unsafe = parseCli(['--workload', 'set', '--unsafe', 'keep-wal-receivers,no-fence']);
    assert.ok(safe !== 'help' && unsafe !== 'help');
    assert.deepEqual(safe.run.unsafe, []);
    assert.deepEqual(unsafe.run.unsafe, ['keep-wal-receivers', 'no-fence']);
  });

  it('knows every nemesis the issue names', () => {
    const issue =
      'partition-halves, partition-leader, partition-primary, partition-ring, partition-oneway, kill-daemon, kill-postgres, kill-host, pause-daemon, clock-skew, transfer-storm, slow-link, store-down, store-slow';
    assert.deepEqual(parseNemeses(issue.replace(/ /g, '')), issue.split(', '));
  });

  it('without root: one line saying so, exit 2', (t) => {
    // As root, run the CLI as an unprivileged user (when the machine lets us).
    const cli = resolve('dist/jepsen/cli.js');
    const asNobody = process.getuid?.() === 0;
    if (asNobody && spawnSync('sh', ['-c', 'command -v setpriv']).status !== 0) return t.skip('needs setpriv to drop root');
    const r = asNobody
      ? spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, cli, '--workload', 'set'], { encoding: 'utf8' })
      : spawnSync(process.execPath, [cli, '--workload', 'set'], { encoding: 'utf8' });
    if (asNobody && /EACCES|Cannot find module/.test(r.stderr)) return t.skip(`the unprivileged user cannot read ${cli}`);
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /needs root/);
  });
});

describe('report', () => {
  it('renders a self-contained page with every operation and fault', () => {
    const summary: Summary = {
      valid: true,
      workload: 'set',
      nemesis: ['kill-daemon'],
      seed: 1,
      ops: 2,
      ok: 1,
      fail: 0,
      info: 1,
      faults: 1,
      faults_planned: 1,
      anomalies: [],
      recovery_ms: 12,
      write_unavailable_ms: 895,
      archive: null,
      dir: '/tmp/x',
    };
    const html = renderReport({
      summary,
      concurrency: 2,
      runMs: 1_000,
      events: [
        { process: 0, type: 'invoke', f: 'add', value: 1, timeMs: 1, node: 'n1' },
        { process: 1, type: 'invoke', f: 'add', value: 2, timeMs: 2, node: 'n2' },
        { process: 0, type: 'ok', f: 'add', timeMs: 5, node: 'n1', generation: 1 },
        { process: 1, type: 'info', f: 'add', timeMs: 900, error: 'no answer <within> 5000 ms' },
      ],
      faults: [
        { name: 'kill-daemon', outcome: 'injected', startMs: 100, endMs: 700, detail: { node: 'n1' }, healed: { restartMs: 500 } },
        { name: 'kill-daemon', outcome: 'skipped', startMs: 800, endMs: 800, detail: null, healed: null },
      ],
    });
    assert.match(html, /^<!doctype html>/);
    assert.equal((html.match(/<rect x="[0-9.]+" y="\d+" width="[0-9.]+" height="10" fill="#/g) ?? []).length, 2, 'one bar per operation');
    assert.match(html, /kill-daemon/);
    assert.match(html, /1 of 1 planned faults injected/);
    assert.equal((html.match(/fill-opacity="0.13"/g) ?? []).length, 2, 'only the injected fault is drawn (timeline and latency plot)');
    assert.match(html, /<td>skipped<\/td>/, 'the skipped one is listed');
    assert.match(html, /no answer &lt;within&gt; 5000 ms/, 'escaped');
    assert.doesNotMatch(html, /<script/);
  });
});

describe('write availability', () => {
  const W = new Set(['add']);
  it('is the longest stretch between write acknowledgements, from the first write invoked to the last', () => {
    const a = writeAvailability(
      [
        { process: 0, type: 'invoke', f: 'add', value: 1, timeMs: 10 },
        { process: 0, type: 'ok', f: 'add', timeMs: 12 },
        { process: 1, type: 'invoke', f: 'read', timeMs: 13 },
        { process: 0, type: 'invoke', f: 'add', value: 2, timeMs: 20 },
        { process: 1, type: 'ok', f: 'read', value: [1], timeMs: 500 },
        { process: 0, type: 'info', f: 'add', timeMs: 1020, error: 'timeout' },
        { process: 2, type: 'invoke', f: 'add', value: 3, timeMs: 1021 },
        { process: 2, type: 'ok', f: 'add', timeMs: 1400 },
        { process: 2, type: 'invoke', f: 'add', value: 4, timeMs: 1401 },
        { process: 2, type: 'fail', f: 'add', timeMs: 1402 },
        { process: 2, type: 'invoke', f: 'add', value: 5, timeMs: 1900 },
      ],
      W,
    );
    assert.deepEqual(a, { longestGapMs: 1388, fromMs: 12, toMs: 1400 });
  });
  it('counts a run with writes and no acknowledgement as unavailable throughout, and none without writes', () => {
    assert.equal(
      writeAvailability(
        [
          { process: 0, type: 'invoke', f: 'add', value: 1, timeMs: 5 },
          { process: 0, type: 'info', f: 'add', timeMs: 80 },
          { process: 1, type: 'invoke', f: 'add', value: 2, timeMs: 90 },
        ],
        W,
      ).longestGapMs,
      85,
    );
    assert.equal(writeAvailability([{ process: 0, type: 'invoke', f: 'read', timeMs: 5 }], W).longestGapMs, null);
  });
});
