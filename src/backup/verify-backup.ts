// `ogel backup verify ID [--restore-test]`: checks one complete backup now and
// records the verdict in the index (backup.verify). Without --restore-test:
// every object read back against its sha256 and every file in the archive
// against Postgres's backup_manifest (verify-objects.ts, what the worker does
// after each backup). With it: the backup's whole chain restored into a scratch directory,
// every file checked against Postgres's backup_manifest, Postgres started on it
// and amcheck run on every index and heap (restore-test.ts). A store that cannot
// be read gives no verdict: it is an error, and nothing is recorded.

import type { ApplyOk, Backup, Command } from '../../fsm/index.js';
import type { ObjectStore } from '../object-store/index.js';
import { orderChain, type BackupManifest } from './manifest.js';
import { restoreTest } from './restore-test.js';
import { describeObjectsVerdict, verifyBackupObjects } from './verify-objects.js';
import { readBackupManifest } from './worker.js';

export interface VerifyVerdict {
  ok: boolean;
  kind: 'checksums' | 'restore';
  detail: string;
}

export class VerifyRequestError extends Error {
  constructor(
    message: string,
    readonly status: 404 | 409,
  ) {
    super(message);
    this.name = 'VerifyRequestError';
  }
}

export interface VerifyBackupDeps {
  store: ObjectStore;
  index: () => ReadonlyMap<string, Backup>;
  syncState: () => Promise<void>;
  propose: (cmd: Command) => Promise<ApplyOk>;
  /** Where restore tests make their scratch directory. */
  scratchParent: string;
  nowMs?: () => number;
}

export async function verifyBackup(d: VerifyBackupDeps, id: string, opts: { restoreTest: boolean }): Promise<VerifyVerdict> {
  await d.syncState();
  const b = d.index().get(id);
  if (b === undefined) throw new VerifyRequestError(`no backup '${id}'`, 404);
  if (b.state !== 'complete') throw new VerifyRequestError(`backup ${id} is ${b.state}; only a complete backup can be verified`, 409);
  const manifest = await readBackupManifest(d.store, b.prefix);
  let verdict: VerifyVerdict;
  if (!opts.restoreTest) {
    const v = await verifyBackupObjects(d.store, manifest);
    verdict = { ok: v.ok, kind: 'checksums', detail: describeObjectsVerdict(v) };
  } else {
    const chain = await chainOf(d, manifest);
    const v = await restoreTest({ store: d.store, chain, scratchParent: d.scratchParent });
    verdict = v.ok
      ? {
          ok: true,
          kind: 'restore',
          detail: `restored ${chain.length === 1 ? 'it' : `its chain of ${chain.length}`}, started Postgres, amcheck clean: ${v.databases} databases, ${v.tables} tables, ${v.indexes} indexes in ${Math.round(v.durationMs / 1000)} s`,
        }
      : { ok: false, kind: 'restore', detail: v.detail };
  }
  await d.propose({
    v: 4,
    type: 'backup.verify',
    atMs: (d.nowMs ?? Date.now)(),
    id,
    result: verdict.ok ? 'verified' : 'failed',
    kind: verdict.kind,
    detail: verdict.detail.slice(0, 500),
  });
  return verdict;
}

/** The backup and its ancestors, oldest first, from their backup.json files. */
async function chainOf(d: VerifyBackupDeps, newest: BackupManifest): Promise<BackupManifest[]> {
  const byId = new Map<string, BackupManifest>([[newest.id, newest]]);
  for (let cur = newest; cur.parent !== null; ) {
    const parent = d.index().get(cur.parent);
    if (parent === undefined) break; // orderChain names the missing link
    const m = await readBackupManifest(d.store, parent.prefix);
    byId.set(m.id, m);
    cur = m;
  }
  return orderChain(newest, (id) => byId.get(id));
}
