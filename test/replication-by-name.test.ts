// Nodes known only by host names that have no matching reverse DNS (Railway's
// private network): the standbys must still authenticate and stream with quorum
// commit. The scenario (test/scenarios/replication-by-name.ts) needs private
// network and mount namespaces, so it runs as root under `unshare --net --mount`;
// without them this test is skipped with the reason, never passed.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { runProcessGroup } from './helpers/process-group.js';

const SCENARIO = resolve('dist/test/scenarios/replication-by-name.js');
const SCENARIO_TIMEOUT_MS = 150_000;

function cannotRun(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network and mount namespaces, a bind mount over /etc/hosts)';
  for (const tool of ['unshare', 'ip', 'mount']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `needs ${tool} (apt-get install -y ${tool === 'ip' ? 'iproute2' : 'util-linux'})`;
  }
  const probe = spawnSync('unshare', ['--net', '--mount', 'sh', '-c', 'mount --make-rprivate / && mount --bind /etc/hosts /etc/hosts'], { encoding: 'utf8', timeout: 10_000 });
  if (probe.status !== 0) return `private network and mount namespaces do not work here: ${(probe.stderr || probe.error?.message || '').trim()}`;
  return undefined;
}

test('replication between nodes known by host name only (no matching reverse DNS) works with quorum commit', { timeout: SCENARIO_TIMEOUT_MS + 10_000 }, async (t) => {
  const why = cannotRun();
  if (why !== undefined) {
    t.skip(why);
    return;
  }
  const { code, stdout, stderr, timedOut } = await runProcessGroup('unshare', ['--net', '--mount', process.execPath, SCENARIO], SCENARIO_TIMEOUT_MS);
  assert.equal(timedOut, false, `the scenario did not finish within ${SCENARIO_TIMEOUT_MS} ms and was killed:\n${stderr.slice(-6_000)}`);
  assert.equal(code, 0, `the scenario failed:\n${stderr.slice(-6_000)}`);
  const line = stdout.trim().split('\n').at(-1) ?? '';
  t.diagnostic(line);
  const r = (JSON.parse(line) as { replicationByName: { standbys: { sync_state: string }[] } }).replicationByName;
  assert.deepEqual(r.standbys.map((s) => s.sync_state), ['quorum', 'quorum']);
});
