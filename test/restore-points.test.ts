// Restore points and the archive's status through real daemons: three nodes
// with the default object store, a full backup, then `ogel restore-point create`
// sent to a follower (forwarded to the leader, made on the primary, recorded in
// the store); a second one by the same name refused; status showing the restore
// window reaching past the point and the primary archiving; the archive metrics
// on the primary and on a standby. (Restoring to a point: test/pitr.test.ts.)

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RestorePoint, Status } from '../src/api/contract/index.js';
import { adminPassword } from '../src/auth/passwords.js';
import { loadConfig } from '../src/config/index.js';
import { parseLsn } from '../fsm/index.js';
import { DaemonCluster } from './helpers/daemons.js';
import { waitHealthy } from './helpers/pg-health.js';

describe('restore points and the archive status through the daemons', () => {
  let c: DaemonCluster;
  let password: string;

  before(async () => {
    c = await DaemonCluster.create(['n1', 'n2', 'n3']);
    password = adminPassword(loadConfig(c.configPath));
    await c.startAll();
  });
  after(async () => c?.destroy());

  it('makes a restore point on the primary from any node, refuses its name twice, and status and metrics show the window', async () => {
    const view = await waitHealthy(c, password, 'a primary and two streaming standbys', 120_000);
    const primary = view.primary!;
    const made = await c.cli(['backup', 'create', '--full', '--wait', '--wait-timeout-s', '180', '--json']);
    assert.equal(made.code, 0, made.stderr);

    const leader = await c.waitForLeader();
    const follower = [...c.nodes.keys()].find((id) => id !== leader)!;
    const viaFollower = { OGEL_API: c.apiUrl(follower) };
    const r = await c.cli(['restore-point', 'create', 'after-the-backup', '--json'], viaFollower);
    assert.equal(r.code, 0, r.stderr);
    const rp = (JSON.parse(r.stdout) as { restorePoint: RestorePoint }).restorePoint;
    assert.equal(rp.name, 'after-the-backup');
    assert.equal(rp.timeline, 1);
    assert.ok(parseLsn(rp.lsn) !== null, rp.lsn);
    assert.ok(Math.abs(rp.atMs - Date.now()) < 60_000, 'the primary clock, now');

    const again = await c.cli(['restore-point', 'create', 'after-the-backup'], viaFollower);
    assert.equal(again.code, 1);
    assert.match(
      again.stderr,
      /^ogel: field 'name': restore point "after-the-backup" already exists \(made .* at LSN .* on timeline 1\)\nhint: pick another name/,
    );
    const list = await c.cli(['restore-point', 'list', '--json']);
    assert.deepEqual((JSON.parse(list.stdout) as { restorePoints: RestorePoint[] }).restorePoints, [rp]);

    // The archive streams the restore point's record within about a second: the window reaches past it.
    let status: Status | undefined;
    await c.waitFor(
      async () => {
        const s = await c.cli(['status', '--json']);
        status = JSON.parse(s.stdout) as Status;
        const w = status.archive?.window;
        return w != null && parseLsn(w.toLsn)! > parseLsn(rp.lsn)! && status.archive?.live?.state === 'archiving';
      },
      'the restore window past the restore point, and the primary archiving',
      30_000,
    );
    const a = status!.archive!;
    assert.equal(a.timeline, 1);
    assert.equal(a.timelineRanges, 1, 'no gap');
    assert.ok(a.window!.fromAtMs <= rp.atMs, JSON.stringify(a.window));
    assert.equal(a.live!.node, primary);
    assert.equal(a.live!.slot?.slot, 'ogel_wal_archive');
    assert.notEqual(a.live!.slot?.walStatus, 'lost');
    const human = await c.cli(['status']);
    assert.match(human.stdout, /^Archive: restorable \S+Z \.\. \S+Z \(timeline 1\), lag \d/m);

    const metrics = async (id: string) => (await c.get(id, '/metrics')).body as string;
    const onPrimary = await metrics(primary);
    assert.match(onPrimary, /^ogel_archive_lag_seconds\{timeline="1"\} \d/m);
    assert.match(onPrimary, /^ogel_archive_slot_unreserved\{slot="ogel_wal_archive"\} 0$/m);
    assert.match(onPrimary, /^ogel_archive_uploaded_bytes_total [1-9]/m);
    const standby = [...c.nodes.keys()].find((id) => id !== primary)!;
    const onStandby = await metrics(standby);
    assert.match(onStandby, /^ogel_archive_restore_window_newest_timestamp_seconds\{timeline="1"\} \d/m);
    assert.doesNotMatch(onStandby, /^ogel_archive_lag_seconds\{/m, 'a standby does not archive');
  });
});
