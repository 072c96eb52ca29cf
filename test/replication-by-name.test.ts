// Nodes known only by host names that have no matching reverse DNS (Railway's
// private network): the standbys must still authenticate and stream with quorum
// commit. The scenario (test/scenarios/replication-by-name.ts) needs private
// network and mount namespaces, so it runs as root under `unshare --net --mount`;
// without them this test is skipped with the reason, never passed.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runRootScenario } from './helpers/root-scenario.js';

const SCENARIO_TIMEOUT_MS = 150_000;

test('replication between nodes known by host name only (no matching reverse DNS) works with quorum commit', {
  timeout: SCENARIO_TIMEOUT_MS + 10_000,
}, async (t) => {
  const line = await runRootScenario(t, {
    script: 'dist/test/scenarios/replication-by-name.js',
    namespaces: ['--net', '--mount'],
    tools: { unshare: 'util-linux', ip: 'iproute2', mount: 'util-linux' },
    probe: ['sh', '-c', 'mount --make-rprivate / && mount --bind /etc/hosts /etc/hosts'],
    why: 'network and mount namespaces, a bind mount over /etc/hosts',
    timeoutMs: SCENARIO_TIMEOUT_MS,
  });
  if (line === undefined) return;
  const r = (JSON.parse(line) as { replicationByName: { standbys: { sync_state: string }[] } }).replicationByName;
  assert.deepEqual(
    r.standbys.map((s) => s.sync_state),
    ['quorum', 'quorum'],
  );
});
