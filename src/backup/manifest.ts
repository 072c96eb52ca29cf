// A backup's own description, stored beside its parts as `backup.json`: what
// a restore needs without the cluster (the disaster-recovery escape hatch
// reads only the bucket), and what the FSM's index records. Written last, after
// every part and Postgres's backup_manifest: a backup without backup.json is
// unfinished, whatever else sits under its prefix. Read back through a schema:
// what comes from the store is input like any other.

import { z } from 'zod';

export const BACKUP_MANIFEST_FORMAT = 1;
export const BACKUP_MANIFEST_NAME = 'backup.json';
export const PG_MANIFEST_NAME = 'backup_manifest';

const LSN = z.string().regex(/^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/i, 'an LSN like 0/3000028');
const SHA256 = z.string().regex(/^[0-9a-f]{64}$/, '64 lowercase hex digits');
const ObjectRef = z.object({ key: z.string().min(1), bytes: z.number().int().nonnegative(), sha256: SHA256 });

export const BackupManifestSchema = z.object({
  format: z.literal(BACKUP_MANIFEST_FORMAT),
  id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/),
  cluster: z.string().min(1),
  kind: z.enum(['full', 'incremental']),
  /** The backup this incremental was taken against; null for a full backup. */
  parent: z.string().nullable(),
  systemIdentifier: z.string().regex(/^\d+$/),
  timeline: z.number().int().positive(),
  startLsn: LSN,
  endLsn: LSN,
  /** The node whose Postgres was copied, and its role then. */
  node: z.string(),
  sourceRole: z.enum(['primary', 'standby']),
  startedAtMs: z.number().int().nonnegative(),
  finishedAtMs: z.number().int().nonnegative(),
  compression: z.enum(['brotli', 'none']),
  /** pg_wal/ inside base.tar: the backup restores on its own, without the WAL archive. */
  wal: z.boolean(),
  tarBytes: z.number().int().nonnegative(),
  tarSha256: SHA256,
  storedBytes: z.number().int().nonnegative(),
  parts: z.array(ObjectRef).min(1),
  pgManifest: ObjectRef,
});

export type BackupManifest = z.infer<typeof BackupManifestSchema>;

export class BackupManifestError extends Error {
  override name = 'BackupManifestError';
}

/** Parses backup.json from the store; the error names the object and the first bad field. */
export function parseBackupManifest(text: string, where: string): BackupManifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new BackupManifestError(`${where} is not JSON (${(e as Error).message}); the object is damaged`);
  }
  const r = BackupManifestSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new BackupManifestError(`${where}: field '${issue.path.join('.') || '(root)'}' ${issue.message}; the object is damaged or from another version`);
  }
  return r.data;
}

/** The object-key layout under the cluster's prefix. */
export function backupPrefix(clusterPrefix: string, id: string): string {
  return `${clusterPrefix}basebackups/${id}/`;
}

/** Sorts a chain oldest first and checks each link (parent ids, system identifier); throws naming the broken link. */
export function orderChain(newest: BackupManifest, byId: (id: string) => BackupManifest | undefined): BackupManifest[] {
  const chain: BackupManifest[] = [newest];
  const seen = new Set([newest.id]);
  for (let cur = newest; cur.parent !== null; ) {
    const parent = byId(cur.parent);
    if (parent === undefined)
      throw new BackupManifestError(`backup ${cur.id} is an incremental of ${cur.parent}, which is not in the store; it cannot be restored`);
    if (seen.has(parent.id)) throw new BackupManifestError(`backup ${cur.id}: the chain loops back to ${parent.id}`);
    if (parent.systemIdentifier !== cur.systemIdentifier)
      throw new BackupManifestError(`backup ${cur.id} and its parent ${parent.id} come from different clusters`);
    seen.add(parent.id);
    chain.unshift(parent);
    cur = parent;
  }
  if (chain[0]!.kind !== 'full') throw new BackupManifestError(`backup chain of ${newest.id} does not start with a full backup`);
  return chain;
}
