// I3 under a partition: an old primary whose daemon is cut off from the other two
// stops accepting writes before the new primary is promoted. The scenario
// (test/scenarios/partition-primary.ts) needs a private network namespace and
// iptables, so it runs as root under `unshare --net`; without them this test is
// skipped with the reason, never passed.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runRootScenario } from './helpers/root-scenario.js';

/** The scenario takes about 15 s; past this it is stuck and killed. */
const SCENARIO_TIMEOUT_MS = 120_000;

test('partition: the old primary stops accepting writes before the new primary is promoted (I3)', { timeout: SCENARIO_TIMEOUT_MS + 10_000 }, async (t) => {
  const line = await runRootScenario(t, {
    script: 'dist/test/scenarios/partition-primary.js',
    namespaces: ['--net'],
    tools: { unshare: 'util-linux', iptables: 'iptables', ip: 'iproute2' },
    probe: ['iptables', '-S', 'INPUT'],
    why: 'a network namespace and iptables rules',
    timeoutMs: SCENARIO_TIMEOUT_MS,
  });
  if (line === undefined) return;
  const figures = (JSON.parse(line) as { partitionPrimary: { i3GapMs: number; lastOldWriteAcceptedMs: number; promotionCommittedAfterMs: number } })
    .partitionPrimary;
  assert.ok(figures.lastOldWriteAcceptedMs < figures.promotionCommittedAfterMs && figures.i3GapMs > 0, line);
});
