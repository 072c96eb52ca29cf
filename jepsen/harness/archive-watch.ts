// What the harness observes of the WAL archive for the archive checker
// (checkers/archive.ts): where the archive begins when the workload starts,
// and, after the final heal and the recovery wait, the final primary's flush
// position and the store's listing, polled until the archive has caught up
// with no gap or the bound runs out. The store is read as `ogel restore` reads
// it (src/archive/pitr-command.ts readArchiveView), directly (never through
// the store link).

import { formatLsn, parseLsn } from '../../fsm/index.js';
import { readArchiveView, type ArchiveView } from '../../src/archive/pitr-command.js';
import { newestTimeline, pathSpans, timelinePath } from '../../src/archive/pitr-plan.js';
import { segmentOf, segmentStart } from '../../src/archive/segments.js';
import type { ObjectStore } from '../../src/object-store/index.js';
import { checkArchive, type ArchiveObservation } from '../checkers/archive.js';
import type { Json } from '../history/types.js';
import { HOSTS, IDS, type JepsenCluster } from './cluster.js';
import { setTimeout as sleep } from 'node:timers/promises';

const POLL_MS = 500;
/** Bound on reading the final primary's flush position (through any proxy). */
const FLUSH_READ_TIMEOUT_MS = 15_000;

/** The first archived span's start along the newest timeline's path, once the store shows one (bounded); null if none by then. */
export async function archiveStart(store: ObjectStore, prefix: string, timeoutMs: number): Promise<bigint | null> {
  const t0 = performance.now();
  for (;;) {
    try {
      const view = await readArchiveView(store, prefix);
      const path = timelinePath(newestTimeline(view.catalog, view.backups), view.histories);
      if (typeof path !== 'string') {
        const first = pathSpans(view.catalog, path)[0];
        if (first !== undefined) return first.startLsn;
      }
    } catch {
      // A listing that raced an upload: look again.
    }
    if (performance.now() - t0 > timeoutMs) return null;
    await sleep(POLL_MS);
  }
}

/** WAL before the segment of the oldest stored backup's start is deleted on purpose (src/archive/retention.ts walCut). */
export function retentionFloor(view: Pick<ArchiveView, 'backups'>): bigint | null {
  let floor: bigint | null = null;
  for (const b of view.backups) {
    const start = parseLsn(b.startLsn);
    if (start === null) continue;
    const seg = segmentStart(segmentOf(start));
    if (floor === null || seg < floor) floor = seg;
  }
  return floor;
}

interface FinalWal {
  node: string | null;
  timeline: number;
  flushLsn: bigint;
}

/** The primary's flush position and timeline, through any proxy (they all lead to the primary). */
async function finalWal(cluster: JepsenCluster): Promise<FinalWal | string> {
  const byAddress = new Map(IDS.map((id) => [HOSTS[id]!, id]));
  const t0 = performance.now();
  let last = 'no proxy tried';
  for (;;) {
    for (const id of IDS) {
      try {
        const rows = await cluster.sqlVia<{ lsn: string; walfile: string; addr: string | null }>(
          id,
          'SELECT pg_current_wal_flush_lsn()::text AS lsn, pg_walfile_name(pg_current_wal_flush_lsn()) AS walfile, host(inet_server_addr()) AS addr',
        );
        const r = rows[0];
        const lsn = parseLsn(r?.lsn ?? '');
        if (r === undefined || lsn === null) throw new Error(`unexpected answer ${JSON.stringify(r)}`);
        // pg_walfile_name names the segment on the server's current (insert) timeline.
        return { node: (r.addr === null ? undefined : byAddress.get(r.addr)) ?? null, timeline: Number.parseInt(r.walfile.slice(0, 8), 16), flushLsn: lsn };
      } catch (e) {
        last = `through ${id}'s proxy: ${(e as Error).message}`;
      }
    }
    if (performance.now() - t0 > FLUSH_READ_TIMEOUT_MS) return last;
    await sleep(POLL_MS);
  }
}

/** The final primary's archiver as `ogel status` shows it (archive.live, or why not). */
async function archiveLive(cluster: JepsenCluster): Promise<Json> {
  for (const id of IDS) {
    const s = await cluster.status(id, false).catch(() => undefined);
    if (s?.archive !== undefined) return (s.archive.live ?? { liveError: s.archive.liveError ?? null }) as Json;
  }
  return null;
}

export interface ArchiveWait {
  store: ObjectStore;
  prefix: string;
  storeLabel: string;
  /** archiveStart() when the workload began. */
  startLsn: bigint | null;
  boundMs: number;
  log: (m: string) => void;
}

/**
 * Reads the final primary's flush position once, then polls the store until
 * the archive reaches it in one span (checkArchive passes) or `boundMs` has
 * passed; the last observation either way. A string when the flush position
 * could not be read (the archive is then not judged).
 */
export async function awaitArchive(cluster: JepsenCluster, o: ArchiveWait): Promise<ArchiveObservation | string> {
  const wal = await finalWal(cluster);
  if (typeof wal === 'string') return `could not read the final primary's flush position: ${wal}`;
  o.log(
    `archive: the final primary ${wal.node ?? '?'} is at ${formatLsn(wal.flushLsn)} on timeline ${wal.timeline}; waiting (at most ${o.boundMs} ms) for the archive`,
  );
  const t0 = performance.now();
  let readError = '';
  for (;;) {
    let view: ArchiveView | undefined;
    try {
      view = await readArchiveView(o.store, o.prefix);
    } catch (e) {
      readError = (e as Error).message;
    }
    const waitedMs = performance.now() - t0;
    if (view !== undefined) {
      const obs: ArchiveObservation = {
        store: o.storeLabel,
        catalog: view.catalog,
        histories: view.histories,
        node: wal.node,
        timeline: wal.timeline,
        flushLsn: wal.flushLsn,
        startLsn: o.startLsn,
        retentionFloorLsn: retentionFloor(view),
        waitedMs,
        boundMs: o.boundMs,
      };
      const r = checkArchive(obs);
      if (r.valid === true || waitedMs > o.boundMs) {
        obs.live = await archiveLive(cluster);
        o.log(
          r.valid === true
            ? `archive: caught up in ${Math.round(waitedMs)} ms, one span ${r.stats.spans.map((s) => `${s.startLsn}-${s.endLsn}`).join(', ')}`
            : `archive: ${r.anomalies.map((a) => a.message).join('; ')}`,
        );
        return obs;
      }
    } else if (waitedMs > o.boundMs) {
      return `could not list the store within ${o.boundMs} ms: ${readError}`;
    }
    await sleep(POLL_MS);
  }
}
