// Disaster recovery: a new cluster whose first primary is restored from a lost
// cluster's object store instead of initdb (config `restoreFrom`,
// docs/disaster-recovery.md). The bootstrap primary's agent calls this with an
// empty directory; the other nodes then clone it as they would clone a new
// primary, and backups and the archive start under the new cluster's own
// prefix: the lost cluster's objects are read, never written.
//
// The copy is replayed to the target (the latest archived by default) and
// promoted onto a new timeline (pitr.ts); then the restore's standalone
// settings come out again (ogel writes this cluster's own), and the roles
// ogel uses get this cluster's passwords (they are derived from its secret,
// which need not be the lost cluster's).

import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { adminPassword, replicationPassword } from '../auth/passwords.js';
import { clusterPrefix } from '../backup/layout.js';
import { undoStandalone } from '../backup/restore.js';
import { ConfigError, loadConfig, objectStoreDir, type Config } from '../config/index.js';
import type { Logger } from '../log.js';
import { openObjectStore } from '../object-store/index.js';
import type { PgBinaries } from '../postgres/binaries.js';
import type { OsUser } from '../postgres/os-user.js';
import { quoteIdent, quoteLiteral } from '../postgres/query.js';
import { REPLICATION_ROLE, writeReplicationPassword } from '../postgres/settings.js';
import { readArchiveView, readTargetArgs } from './pitr-command.js';
import { describeWindow, planRestore, type PitrTarget } from './pitr-plan.js';
import { runPitr } from './pitr.js';
import { readRestorePoint } from './restore-points.js';

export class BootstrapRestoreError extends Error {
  override name = 'BootstrapRestoreError';
}

/** Where a config's objects live, to tell whether two clusters would share a prefix. */
function storeIdentity(c: Config): string {
  const where = c.storage.backend === 'fs' ? `fs:${objectStoreDir(c)}` : `s3:${c.storage.s3.endpoint ?? ''}/${c.storage.s3.bucket}/${c.storage.s3.prefix}`;
  return `${where}/${clusterPrefix(c)}`;
}

export async function restoreForBootstrap(o: { config: Config; dir: string; user: OsUser; binaries: PgBinaries; log: Logger }): Promise<void> {
  const from = o.config.restoreFrom;
  if (from === undefined) throw new TypeError('restoreForBootstrap: the config has no restoreFrom');
  let lost: Config;
  try {
    lost = loadConfig(from.config);
  } catch (e) {
    if (e instanceof ConfigError) throw new BootstrapRestoreError(`restoreFrom.config: ${from.config}: ${e.message}`);
    throw e;
  }
  if (storeIdentity(lost) === storeIdentity(o.config)) {
    throw new BootstrapRestoreError(
      `restoreFrom.config names this cluster's own object store and name (${storeIdentity(o.config)}): the new cluster would write over the lost one's objects; give the new cluster another cluster.name or store`,
    );
  }
  const args = readTargetArgs({
    'target-time': from.targetTime,
    'target-lsn': from.targetLsn,
    'target-name': from.targetName,
    latest: !from.targetTime && !from.targetLsn && !from.targetName,
  });
  if ('error' in args) throw new BootstrapRestoreError(`restoreFrom: ${args.error.replace(/--target-/g, 'target')}`);
  const store = openObjectStore(lost);
  try {
    const prefix = clusterPrefix(lost);
    const view = await readArchiveView(store, prefix);
    let target: PitrTarget;
    if (args.target.kind === 'name') {
      const rp = await readRestorePoint(store, prefix, args.target.name);
      if (rp === null)
        throw new BootstrapRestoreError(`restoreFrom.targetName: no restore point ${JSON.stringify(args.target.name)} is recorded in ${store.description}`);
      target = { kind: 'name', name: rp.name, lsn: rp.lsn, timeline: rp.timeline };
    } else {
      target = args.target;
    }
    const planned = planRestore({ ...view, target, nowMs: Date.now() });
    if (!planned.ok) throw new BootstrapRestoreError(`restoreFrom: ${planned.reason}`);
    o.log({
      level: 'info',
      msg: 'disaster recovery: restoring the first primary from the lost cluster',
      store: store.description,
      cluster: lost.cluster.name,
      window: describeWindow(planned.plan.window),
    });
    const result = await runPitr({
      store,
      catalog: view.catalog,
      plan: planned.plan,
      targetDir: o.dir,
      user: o.user,
      binaries: o.binaries,
      logger: o.log,
      afterPromote: async (client) => {
        await client.query(`ALTER ROLE ${quoteIdent(REPLICATION_ROLE)} WITH PASSWORD ${quoteLiteral(replicationPassword(o.config))}`);
        await client.query(`ALTER ROLE postgres WITH PASSWORD ${quoteLiteral(adminPassword(o.config))}`);
      },
    });
    await undoStandalone(o.dir);
    // The lost cluster's password file (its standbys read it): this cluster's own.
    await rm(join(o.dir, 'ogel_replication.password'), { force: true });
    writeReplicationPassword(o.dir, replicationPassword(o.config), process.getuid?.() === 0 ? o.user : undefined);
    o.log({
      level: 'info',
      msg: 'disaster recovery: the first primary is restored',
      backup: result.backup,
      stoppedAt: result.stoppedAt,
      lastCommitAt: result.lastCommitAt,
      timeline: result.newTimeline,
      lsn: result.lsn,
      walBytes: result.walBytes,
      durationMs: result.durationMs,
      phasesMs: result.phasesMs,
    });
  } finally {
    await store.close();
  }
}
