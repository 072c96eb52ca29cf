// Reads every object of a backup back from the store and checks it against the
// sha256 its backup.json recorded: the parts and Postgres's backup_manifest.
// Run by the worker after each backup, so a store that accepted bytes it does
// not give back is caught when the backup is young, not at restore time.

import { isObjectStoreError, verify, type ObjectStore } from '../object-store/index.js';
import type { BackupManifest } from './manifest.js';

export type ObjectsVerdict = { ok: true; objects: number; bytes: number } | { ok: false; detail: string };

export async function verifyBackupObjects(store: ObjectStore, m: BackupManifest): Promise<ObjectsVerdict> {
  let bytes = 0;
  const refs = [...m.parts, m.pgManifest];
  for (const ref of refs) {
    try {
      const r = await verify(store, ref.key, ref.sha256);
      if (r.bytes !== ref.bytes) return { ok: false, detail: `${ref.key}: ${r.bytes} bytes, the manifest says ${ref.bytes}` };
      bytes += r.bytes;
    } catch (e) {
      if (isObjectStoreError(e) && (e.code === 'corrupt' || e.code === 'not-found')) return { ok: false, detail: (e as Error).message };
      throw e; // the store is unreachable: no verdict on the backup
    }
  }
  return { ok: true, objects: refs.length, bytes };
}
