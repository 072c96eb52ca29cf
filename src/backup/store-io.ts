// Small reads from the object store for the backup code: a whole object that
// is known to be small (a manifest), checked against the sha256 recorded for it.

import { createHash } from 'node:crypto';
import type { ObjectStore } from '../object-store/index.js';
import { BACKUP_MANIFEST_NAME, parseBackupManifest, type BackupManifest } from './manifest.js';

export class DamagedObjectError extends Error {
  override name = 'DamagedObjectError';
}

/** Reads a small object whole; with `ref.sha256`, checks it. */
export async function readObject(store: ObjectStore, ref: { key: string; sha256?: string | undefined; bytes?: number }): Promise<Buffer> {
  const got = await store.get(ref.key);
  const chunks: Buffer[] = [];
  for await (const c of got.body) chunks.push(c as Buffer);
  const data = Buffer.concat(chunks);
  const want = ref.sha256 ?? got.sha256;
  if (want !== undefined) {
    const sha = createHash('sha256').update(data).digest('hex');
    if (sha !== want) throw new DamagedObjectError(`${ref.key}: sha256 ${sha.slice(0, 12)}..., expected ${want.slice(0, 12)}...; the object is damaged`);
  }
  return data;
}

/** Every finished backup (one with backup.json) under the cluster's prefix, oldest first. */
export async function listBackupManifests(store: ObjectStore, clusterPrefix: string): Promise<BackupManifest[]> {
  const out: BackupManifest[] = [];
  for await (const o of store.list(`${clusterPrefix}basebackups/`)) {
    if (!o.key.endsWith(`/${BACKUP_MANIFEST_NAME}`)) continue;
    out.push(parseBackupManifest((await readObject(store, { key: o.key })).toString('utf8'), o.key));
  }
  return out.sort((a, b) => a.finishedAtMs - b.finishedAtMs || a.id.localeCompare(b.id));
}
