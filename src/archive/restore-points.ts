// Named restore points: `ogel restore-point create NAME` runs
// pg_create_restore_point on the primary and records where it landed here,
// in the store, so that a restore (which reads nothing else) can pick the
// backup before it and check the archive reaches it before replaying:
//   <cluster>/restore-points/<name>.json   {"name","lsn","timeline","atMs"}
// Postgres itself stops at the point by name (recovery_target_name).

import { createHash } from 'node:crypto';
import { z } from 'zod';
import { formatLsn, normalizeLsn, parseLsn } from '../../fsm/index.js';
import { isObjectStoreError, type ObjectStore } from '../object-store/index.js';
import { DamagedObjectError, readObject } from '../backup/store-io.js';

export interface RestorePoint {
  name: string;
  lsn: bigint;
  timeline: number;
  atMs: number;
}

const Schema = z.object({
  name: z.string().min(1),
  lsn: z.string().refine((s) => normalizeLsn(s) !== null, 'not an LSN'),
  timeline: z.number().int().positive(),
  atMs: z.number().int().nonnegative(),
});

export function restorePointsPrefix(clusterPrefix: string): string {
  return `${clusterPrefix}restore-points/`;
}

export function restorePointKey(clusterPrefix: string, name: string): string {
  return `${restorePointsPrefix(clusterPrefix)}${name}.json`;
}

/** Records a restore point; a name already recorded is refused ('exists'), since a target name must mean one place. */
export async function writeRestorePoint(store: ObjectStore, clusterPrefix: string, rp: RestorePoint): Promise<'created' | 'exists'> {
  const body = Buffer.from(`${JSON.stringify({ name: rp.name, lsn: formatLsn(rp.lsn), timeline: rp.timeline, atMs: rp.atMs })}\n`);
  try {
    return await store.putIfAbsent(restorePointKey(clusterPrefix, rp.name), body, createHash('sha256').update(body).digest('hex'));
  } catch (e) {
    if (isObjectStoreError(e, 'conflict')) return 'exists';
    throw e;
  }
}

export async function readRestorePoint(store: ObjectStore, clusterPrefix: string, name: string): Promise<RestorePoint | null> {
  const key = restorePointKey(clusterPrefix, name);
  if ((await store.head(key)) === null) return null;
  return parseRestorePoint((await readObject(store, { key })).toString('utf8'), key);
}

export async function listRestorePoints(store: ObjectStore, clusterPrefix: string): Promise<RestorePoint[]> {
  const out: RestorePoint[] = [];
  for await (const o of store.list(restorePointsPrefix(clusterPrefix))) {
    if (!o.key.endsWith('.json')) continue;
    out.push(parseRestorePoint((await readObject(store, { key: o.key })).toString('utf8'), o.key));
  }
  return out.sort((a, b) => a.atMs - b.atMs);
}

function parseRestorePoint(text: string, key: string): RestorePoint {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new DamagedObjectError(`${key} is not JSON; the restore point record is damaged`);
  }
  const r = Schema.safeParse(raw);
  if (!r.success) throw new DamagedObjectError(`${key}: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return { name: r.data.name, lsn: parseLsn(r.data.lsn)!, timeline: r.data.timeline, atMs: r.data.atMs };
}
