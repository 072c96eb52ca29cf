// Deletes base-backup objects that nothing in the index will ever use: the
// prefix of an id the index no longer has (retention forgot it, then the daemon
// stopped before its objects were deleted), and the prefix of a backup recorded
// as failed (its worker died before deleting them).
//
// Correct without clocks, by order alone. A backup's objects are written only
// after its record is committed (the worker takes a backup it sees in its
// applied state). So: list first, THEN wait for a ReadIndex barrier (syncState:
// every record committed before the listing is then applied here), THEN read the
// index. A listed object whose id is absent now had its record committed before
// it was written, so before the barrier: it was recorded and since forgotten,
// never "not yet recorded". Ages and timestamps are never compared.
//
// An unreachable store (or index) is a logged warning and a result that says so:
// the sweep runs again later, and whatever it did not delete is still found then.

import type { Backup } from '../../fsm/index.js';
import type { Logger } from '../log.js';
import type { ObjectStore } from '../object-store/index.js';
import { BACKUP_MANIFEST_NAME } from './manifest.js';

/** Keys per store.delete call (S3's DeleteObjects takes at most 1000). */
const DELETE_BATCH_KEYS = 1000;

export interface SweepOptions {
  store: ObjectStore;
  /** The cluster's base-backup prefix, e.g. 'ogel/basebackups/' (ends with '/'). */
  basebackupsPrefix: string;
  /** The backup index as this node has applied it; read only after syncState() resolves. */
  index: () => ReadonlyMap<string, Backup>;
  /** Resolves once this node has applied everything committed before the call (a ReadIndex read). */
  syncState: () => Promise<void>;
  log: Logger;
  signal?: AbortSignal;
}

export type SweepStop =
  /** The store could not be listed or a delete failed: nothing after that point was deleted. */
  | 'store-unavailable'
  /** syncState() failed (no leader, say): nothing was deleted. */
  | 'index-unavailable'
  /** The signal fired: nothing after that point was deleted. */
  | 'aborted';

export interface SweepResult {
  /** Backup prefixes (ids) found under basebackupsPrefix. */
  seenPrefixes: number;
  deletedPrefixes: number;
  deletedObjects: number;
  deletedBytes: number;
  /** null: the sweep ran to the end. */
  stopped: null | { reason: SweepStop; detail: string };
}

/** What a listed key belongs to: '<prefix><id>/...' is the backup id's folder; a key with no '/' after the prefix stands alone. */
function groupOf(basebackupsPrefix: string, key: string): { id: string; prefix: string } {
  const rest = key.slice(basebackupsPrefix.length);
  const slash = rest.indexOf('/');
  return slash < 0 ? { id: rest, prefix: key } : { id: rest.slice(0, slash), prefix: key.slice(0, basebackupsPrefix.length + slash + 1) };
}

/**
 * Why a listed group is garbage now, or null when something may still use it.
 * A group any usable backup's prefix overlaps is kept whatever its id says (a
 * version-1 record's prefix is one object key, not '<id>/').
 */
function garbage(group: { id: string; prefix: string }, index: ReadonlyMap<string, Backup>): string | null {
  for (const b of index.values()) {
    if (b.state !== 'failed' && (b.prefix.startsWith(group.prefix) || group.prefix.startsWith(b.prefix))) return null;
  }
  const b = index.get(group.id);
  if (b === undefined) return 'not in the backup index';
  return b.state === 'failed' ? 'recorded as failed' : null;
}

/** The group's keys, backup.json first: without it `ogel restore --list` no longer offers a half-deleted backup. */
async function keysOf(store: ObjectStore, prefix: string): Promise<{ keys: string[]; bytes: number }> {
  const listed: { key: string; bytes: number }[] = [];
  if (prefix.endsWith('/')) for await (const o of store.list(prefix)) listed.push(o);
  else {
    const o = await store.head(prefix);
    if (o !== null) listed.push(o);
  }
  const isManifest = (k: string): number => (k === `${prefix}${BACKUP_MANIFEST_NAME}` ? 0 : 1);
  listed.sort((a, b) => isManifest(a.key) - isManifest(b.key));
  return { keys: listed.map((o) => o.key), bytes: listed.reduce((n, o) => n + o.bytes, 0) };
}

export async function sweepBackupObjects(o: SweepOptions): Promise<SweepResult> {
  const result: SweepResult = { seenPrefixes: 0, deletedPrefixes: 0, deletedObjects: 0, deletedBytes: 0, stopped: null };
  const stop = (reason: SweepStop, detail: string): SweepResult => {
    result.stopped = { reason, detail };
    o.log({ level: reason === 'aborted' ? 'info' : 'warn', msg: 'backup sweep stopped; it runs again later', reason, detail, ...counts(result) });
    return result;
  };

  // 1. List. Only group names are kept: the keys are listed again when a group is deleted.
  const groups = new Map<string, { id: string; prefix: string }>();
  try {
    for await (const obj of o.store.list(o.basebackupsPrefix)) {
      const g = groupOf(o.basebackupsPrefix, obj.key);
      groups.set(g.prefix, g);
      if (o.signal?.aborted) return stop('aborted', 'while listing');
    }
  } catch (e) {
    return stop('store-unavailable', `could not list ${o.basebackupsPrefix} in the ${o.store.description}: ${describeCause(e)}`);
  }
  result.seenPrefixes = groups.size;
  if (groups.size === 0) return result;

  // 2. The barrier: every record committed before the listing is now in the index.
  try {
    await o.syncState();
  } catch (e) {
    return stop('index-unavailable', `could not catch up with the backup index: ${describeCause(e)}`);
  }

  // 3. Compare and delete. The index is read again per group, so one that became
  // usable meanwhile is kept (ids are unique, so it cannot; the check costs nothing).
  for (const g of groups.values()) {
    if (o.signal?.aborted) return stop('aborted', 'while deleting');
    const why = garbage(g, o.index());
    if (why === null) continue;
    try {
      const { keys, bytes } = await keysOf(o.store, g.prefix);
      for (let i = 0; i < keys.length; i += DELETE_BATCH_KEYS) await o.store.delete(keys.slice(i, i + DELETE_BATCH_KEYS));
      result.deletedPrefixes++;
      result.deletedObjects += keys.length;
      result.deletedBytes += bytes;
      o.log({ level: 'info', msg: 'deleted backup objects nothing uses', backup: g.id, prefix: g.prefix, why, objects: keys.length, bytes });
    } catch (e) {
      return stop('store-unavailable', `could not delete ${g.prefix} in the ${o.store.description}: ${describeCause(e)}`);
    }
  }
  if (result.deletedPrefixes > 0) o.log({ level: 'info', msg: 'backup sweep done', seenPrefixes: result.seenPrefixes, ...counts(result) });
  return result;
}

function describeCause(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function counts(r: SweepResult): { prefixes: number; objects: number; bytes: number } {
  return { prefixes: r.deletedPrefixes, objects: r.deletedObjects, bytes: r.deletedBytes };
}
