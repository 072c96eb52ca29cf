// I3 under a partition: an old primary whose daemon is cut off from the other two
// stops accepting writes before the new primary is promoted. The scenario
// (test/scenarios/partition-primary.ts) needs a private network namespace and
// iptables, so it runs as root under `unshare --net`; without them this test is
// skipped with the reason, never passed.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { runProcessGroup } from './helpers/process-group.js';
import { resolve } from 'node:path';
import { test } from 'node:test';

const SCENARIO = resolve('dist/test/scenarios/partition-primary.js');
/** The scenario takes about 15 s; past this it is stuck and killed. */
const SCENARIO_TIMEOUT_MS = 120_000;

/** Why the scenario cannot run here, or undefined when it can. */
function cannotRun(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (a network namespace and iptables rules)';
  for (const tool of ['unshare', 'iptables', 'ip']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `needs ${tool} (apt-get install -y ${tool === 'ip' ? 'iproute2' : tool === 'unshare' ? 'util-linux' : tool})`;
  }
  const probe = spawnSync('unshare', ['--net', 'iptables', '-S', 'INPUT'], { encoding: 'utf8', timeout: 10_000 });
  if (probe.status !== 0) return `iptables does not work in a private network namespace here: ${(probe.stderr || probe.error?.message || '').trim()}`;
  return undefined;
}

test('partition: the old primary stops accepting writes before the new primary is promoted (I3)', { timeout: SCENARIO_TIMEOUT_MS + 10_000 }, async (t) => {
  const why = cannotRun();
  if (why !== undefined) {
    t.skip(why);
    return;
  }
  const { code, stdout, stderr, timedOut } = await runProcessGroup('unshare', ['--net', process.execPath, SCENARIO], SCENARIO_TIMEOUT_MS);
  assert.equal(timedOut, false, `the scenario did not finish within ${SCENARIO_TIMEOUT_MS} ms and was killed:\n${stderr.slice(-6_000)}`);
  assert.equal(code, 0, `the scenario failed:\n${stderr.slice(-6_000)}`);
  const line = stdout.trim().split('\n').at(-1) ?? '';
  const figures = (JSON.parse(line) as { partitionPrimary: { i3GapMs: number; lastOldWriteAcceptedMs: number; promotionCommittedAfterMs: number } }).partitionPrimary;
  t.diagnostic(line);
  assert.ok(figures.lastOldWriteAcceptedMs < figures.promotionCommittedAfterMs && figures.i3GapMs > 0, line);
});
