// The longest write gap's timeline (harness/gap-timeline.ts) on a hand-made
// run: the faults in place, the daemons' failover steps placed on the run's
// clock (with a lead-in before the gap, nothing after it), the clients' errors
// by kind, and the first acknowledged write per proxy node after the gap.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { describeGap, gapTimeline, readNodeLog } from '../harness/gap-timeline.js';
import type { Op } from '../history/index.js';
import type { FaultRecord } from '../nemesis/scheduler.js';

const WALL0 = Date.parse('2026-12-08T02:00:00.000Z');
const at = (ms: number) => new Date(WALL0 + ms).toISOString();

test('the gap: faults in place, failover steps on the run clock, client errors by kind, first ack per node', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ogel-gap-'));
  try {
    const lines = [
      `==== harness: started n1 pid 1 at ${at(0)}`,
      JSON.stringify({ time: at(500), node: 'n1', level: 'info', msg: 'leadership changed', leader: 'n1', component: 'raft' }),
      JSON.stringify({ time: at(9_000), node: 'n1', level: 'info', msg: 'leadership changed', leader: null, role: 'pre-candidate' }),
      JSON.stringify({ time: at(10_200), node: 'n2', level: 'info', msg: 'promoted: postgres is the primary of generation 2' }),
      JSON.stringify({ time: at(10_300), node: 'n2', level: 'info', msg: 'health report sent' }),
      JSON.stringify({ time: at(13_000), node: 'n2', level: 'info', msg: 'lease valid: postgres writable again' }),
      'not json',
    ];
    writeFileSync(join(dir, 'n1.log'), `${lines.join('\n')}\n`);
    const logs = readNodeLog(join(dir, 'n1.log'), 'n1');
    assert.equal(logs.length, 5, 'the JSON lines with a time and a message');
    const history: Op[] = [
      { process: 0, type: 'invoke', f: 'add', timeMs: 9_900, node: 'n1' },
      { process: 0, type: 'ok', f: 'add', timeMs: 10_000, node: 'n1' },
      { process: 1, type: 'invoke', f: 'add', timeMs: 10_050, node: 'n3' },
      { process: 1, type: 'info', f: 'add', timeMs: 10_400, node: 'n3', error: '08006 the connection to the primary n1 (generation 1) was lost' },
      { process: 1, type: 'invoke', f: 'add', timeMs: 10_500, node: 'n3' },
      { process: 1, type: 'info', f: 'add', timeMs: 11_000, node: 'n3', error: '08006 the connection to the primary n1 (generation 1) was lost' },
      { process: 2, type: 'fail', f: 'add', timeMs: 11_500, node: 'n2', error: '57P03 no writable primary: waited 1000 ms' },
      { process: 3, type: 'ok', f: 'read', timeMs: 12_000, node: 'n2' },
      { process: 1, type: 'ok', f: 'add', timeMs: 13_100, node: 'n3' },
      { process: 2, type: 'ok', f: 'add', timeMs: 13_200, node: 'n2' },
    ];
    const faults: FaultRecord[] = [
      { name: 'partition-primary', outcome: 'injected', startMs: 8_000, endMs: 12_500, detail: { isolated: 'n1' }, healed: null },
      { name: 'partition-primary', outcome: 'injected', startMs: 1_000, endMs: 3_000, detail: { isolated: 'n2' }, healed: null },
      { name: 'pause-daemon', outcome: 'skipped', startMs: 9_000, endMs: null, detail: null, healed: null },
    ];
    const t = gapTimeline({ fromMs: 10_000, toMs: 13_100, history, writeFs: new Set(['add']), faults, logs, wallAtZeroMs: WALL0 });
    assert.equal(t.gapMs, 3_100);
    assert.deepEqual(
      t.faults.map((f) => [f.name, f.startMs, f.endMs]),
      [['partition-primary', 8_000, 12_500]],
      'only injected faults that overlap the gap',
    );
    assert.deepEqual(
      t.steps.map((s) => [s.atMs, s.node, s.msg]),
      [
        [9_000, 'n1', 'leadership changed'],
        [10_200, 'n2', 'promoted: postgres is the primary of generation 2'],
        [13_000, 'n2', 'lease valid: postgres writable again'],
      ],
      'failover steps from 3 s before the gap to its end; the rest left out',
    );
    assert.deepEqual(t.clientErrors, [
      { error: '08006 the connection to the primary n1 (generation 1) was lost', count: 2, firstMs: 10_400 },
      { error: '57P03 no writable primary: waited N ms', count: 1, firstMs: 11_500 },
    ]);
    assert.deepEqual(t.firstAckByNode, { n3: 13_100, n2: 13_200 });
    const text = describeGap(t).join('\n');
    assert.match(text, /^longest write gap: 3100 ms, from 10000 to 13100 ms of the run$/m);
    assert.match(text, /^ {2}\+200 ms n2: promoted/m);
    assert.match(text, /^ {2}-1000 ms n1: leadership changed \{"leader":null,"role":"pre-candidate"\}$/m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
