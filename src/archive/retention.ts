// WAL retention (I7): keep exactly the WAL a retained backup needs. A
// point-in-time restore starts from a backup and replays from its start, so
// WAL before the oldest complete backup's start (its segment, on its
// timeline) is needed by nothing; earlier timelines end before it. Backup
// retention (backup-retention.ts) decides which backups stay; this follows.
//
// The index forgets first (wal.forget), then the objects go: a crash in
// between leaves objects nothing lists as restorable, which the next pass
// deletes; never an index entry pointing at deleted WAL.

import { compareLsn, formatLsn, parseLsn, type ClusterState, type Command } from '../../fsm/index.js';
import type { Logger } from '../log.js';
import type { ObjectStore } from '../object-store/index.js';
import { parseWalKey, walPrefix } from './layout.js';
import { parseWalFileName, segmentOf, segmentStart, WAL_SEGMENT_BYTES } from './segments.js';

/** Where retained WAL begins: the segment holding the oldest complete backup's start, on its timeline; null when no backup is complete (keep everything). */
export function walCut(state: ClusterState): { timeline: number; lsn: bigint } | null {
  let oldest: { timeline: number; lsn: bigint } | null = null;
  for (const b of state.backups.values()) {
    if (b.state !== 'complete') continue;
    const start = parseLsn(b.startLsn);
    if (start === null) continue;
    if (oldest === null || start < oldest.lsn) oldest = { timeline: b.timeline, lsn: start };
  }
  return oldest === null ? null : { timeline: oldest.timeline, lsn: segmentStart(segmentOf(oldest.lsn)) };
}

/** Whether the archive object `key` holds only WAL before the cut (history files are always kept: they are tiny and every later timeline needs them). */
export function beforeCut(clusterPrefix: string, key: string, cut: { timeline: number; lsn: bigint }): boolean {
  const o = parseWalKey(clusterPrefix, key, 0);
  if (o === null || o.kind === 'history') return false;
  if (o.timeline > cut.timeline) return false;
  const seg = parseWalFileName(o.segment);
  if (seg === null) return false;
  return segmentStart(seg.segno) + BigInt(WAL_SEGMENT_BYTES) <= cut.lsn;
}

export interface WalSweepResult {
  forgot: boolean;
  deletedObjects: number;
  deletedBytes: number;
}

/** On the leader, after backup retention: forget, then delete, the WAL before the cut. */
export async function sweepWal(o: {
  store: ObjectStore;
  clusterPrefix: string;
  state: () => ClusterState;
  propose: (cmd: Command) => Promise<unknown>;
  syncState: () => Promise<void>;
  log: Logger;
}): Promise<WalSweepResult> {
  await o.syncState();
  const cut = walCut(o.state());
  const out: WalSweepResult = { forgot: false, deletedObjects: 0, deletedBytes: 0 };
  if (cut === null) return out;
  const stale = o
    .state()
    .walArchive.ranges.some((r) => r.timeline < cut.timeline || (r.timeline === cut.timeline && compareLsn(r.startLsn, formatLsn(cut.lsn)) < 0));
  if (stale) {
    await o.propose({ v: 7, type: 'wal.forget', atMs: Date.now(), timeline: cut.timeline, beforeLsn: formatLsn(cut.lsn) } as Command);
    out.forgot = true;
  }
  const doomed: { key: string; bytes: number }[] = [];
  for await (const obj of o.store.list(walPrefix(o.clusterPrefix))) if (beforeCut(o.clusterPrefix, obj.key, cut)) doomed.push(obj);
  for (let i = 0; i < doomed.length; i += 1000) {
    const batch = doomed.slice(i, i + 1000);
    await o.store.delete(batch.map((d) => d.key));
    out.deletedObjects += batch.length;
    out.deletedBytes += batch.reduce((s, d) => s + d.bytes, 0);
  }
  if (out.deletedObjects > 0) {
    o.log({
      level: 'info',
      msg: 'WAL retention: deleted archived WAL no retained backup needs',
      before: formatLsn(cut.lsn),
      timeline: cut.timeline,
      objects: out.deletedObjects,
      bytes: out.deletedBytes,
    });
  }
  return out;
}
