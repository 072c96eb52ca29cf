// Takes one backup into the object store: BASE_BACKUP from a node's Postgres
// (a streaming standby by default; the caller chooses), streamed through the
// part uploader, then Postgres's backup_manifest, then backup.json last. On any
// failure every object written under the backup's prefix is deleted, so a
// failed backup leaves nothing a restore could mistake for a backup (and a
// crash before the cleanup leaves objects without backup.json, which listings
// ignore and the sweep removes).

import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { ObjectStore } from '../object-store/index.js';
import { streamBaseBackup, type ReplicationConn } from '../postgres/basebackup.js';
import { BACKUP_MANIFEST_FORMAT, BACKUP_MANIFEST_NAME, backupPrefix, PG_MANIFEST_NAME, type BackupManifest } from './manifest.js';
import { partSuffix, PartUploader, type Compression } from './part-uploader.js';
import { readObject } from './store-io.js';

export interface TakeBackupInput {
  store: ObjectStore;
  /** Key prefix of the cluster in the store, ending in '/' (e.g. 'clusters/local/'). */
  clusterPrefix: string;
  cluster: string;
  id: string;
  /** For an incremental backup: the backup it is taken against (its backup_manifest is uploaded first). */
  parent?: BackupManifest | undefined;
  conn: ReplicationConn | pg.ClientConfig;
  node: string;
  sourceRole: 'primary' | 'standby';
  compression?: Compression;
  partBytes?: number;
  onProgress?: (tarBytes: number, totalBytes?: number) => void;
  signal?: AbortSignal;
  /** The clock, injectable for tests. */
  nowMs?: () => number;
}

export async function takeBackup(i: TakeBackupInput): Promise<BackupManifest> {
  const now = i.nowMs ?? Date.now;
  const startedAtMs = now();
  const prefix = backupPrefix(i.clusterPrefix, i.id);
  const compression = i.compression ?? 'brotli';
  const uploader = new PartUploader({ store: i.store, keyPrefix: prefix + partSuffix(compression), compression, partBytes: i.partBytes });
  try {
    const parentManifest = i.parent === undefined ? undefined : await readObject(i.store, i.parent.pgManifest);
    const out = await streamBaseBackup(i.conn, uploader, {
      label: `ogel backup ${i.id}`,
      wal: true,
      parentManifest,
      onProgress: i.onProgress,
      signal: i.signal,
    });
    const pgManifestKey = prefix + PG_MANIFEST_NAME;
    const pgManifestSha = createHash('sha256').update(out.manifest).digest('hex');
    const pgm = await i.store.put(pgManifestKey, out.manifest, { sha256: pgManifestSha });
    const manifest: BackupManifest = {
      format: BACKUP_MANIFEST_FORMAT,
      id: i.id,
      cluster: i.cluster,
      kind: i.parent === undefined ? 'full' : 'incremental',
      parent: i.parent?.id ?? null,
      systemIdentifier: out.systemIdentifier,
      timeline: out.timeline,
      startLsn: out.startLsn,
      endLsn: out.endLsn,
      node: i.node,
      sourceRole: i.sourceRole,
      startedAtMs,
      finishedAtMs: now(),
      compression,
      wal: true,
      tarBytes: out.sink.tarBytes,
      tarSha256: out.sink.tarSha256,
      storedBytes: out.sink.storedBytes,
      parts: out.sink.parts,
      pgManifest: { key: pgManifestKey, bytes: pgm.bytes, sha256: pgManifestSha },
    };
    if (i.parent !== undefined && i.parent.systemIdentifier !== manifest.systemIdentifier) {
      throw new Error(
        `backup ${i.id} would be an incremental of ${i.parent.id}, which comes from another cluster (system identifier ${i.parent.systemIdentifier}, this one ${manifest.systemIdentifier})`,
      );
    }
    const body = Buffer.from(JSON.stringify(manifest, null, 2) + '\n');
    await i.store.put(prefix + BACKUP_MANIFEST_NAME, body, { sha256: createHash('sha256').update(body).digest('hex') });
    return manifest;
  } catch (e) {
    await deletePrefix(i.store, prefix).catch(() => {});
    throw e;
  }
}

/** Deletes every object under `prefix` (a failed backup's parts, or a retired one). */
export async function deletePrefix(store: ObjectStore, prefix: string): Promise<number> {
  const keys: string[] = [];
  for await (const o of store.list(prefix)) keys.push(o.key);
  for (let k = 0; k < keys.length; k += 1000) await store.delete(keys.slice(k, k + 1000));
  return keys.length;
}
