// For `ogel restore` tests: a cluster.yml whose fs store is a folder of a temp
// primary's root, the store itself, and backups of that primary taken into it
// (the library's takeBackup, as a daemon's worker would).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { clusterPrefix } from '../../src/backup/layout.js';
import type { BackupManifest } from '../../src/backup/manifest.js';
import { takeBackup } from '../../src/backup/take-backup.js';
import { configToYaml, localClusterConfig } from '../../src/config/index.js';
import { FsObjectStore } from '../../src/object-store/index.js';
import { readReplicationPassword, REPLICATION_ROLE } from '../../src/postgres/settings.js';
import type { TempPrimary } from './postgres.js';

export interface RestoreFixture {
  configPath: string;
  store: FsObjectStore;
  /** A full backup of the primary, as node n1, under this id. */
  backup(id: string): Promise<BackupManifest>;
}

export function restoreFixture(primary: TempPrimary): RestoreFixture {
  const storeDir = path.join(primary.root, 'objects');
  const config = localClusterConfig({ dataDir: path.join(primary.root, 'cluster'), secret: 's'.repeat(32), token: 't'.repeat(32) });
  config.storage.fs.dir = storeDir;
  const configPath = path.join(primary.root, 'cluster.yml');
  fs.writeFileSync(configPath, configToYaml(config));
  const store = new FsObjectStore({ dir: storeDir });
  const conn = { host: '127.0.0.1', port: primary.port, user: REPLICATION_ROLE, password: readReplicationPassword(primary.dataDir) };
  return {
    configPath,
    store,
    backup: (id) => takeBackup({ store, clusterPrefix: clusterPrefix(config), cluster: config.cluster.name, id, conn, node: 'n1', sourceRole: 'primary' }),
  };
}
