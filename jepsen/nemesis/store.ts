// store-down and store-slow: the object store the cluster archives its WAL
// into (and keeps its backups in) becomes unreachable, or slow, for the
// fault's duration; the store itself keeps running. Both act on the store link
// (harness/store-link.ts) between the daemons and s3rver, which the harness
// sets up when one of these is in the run (harness/store.ts).
//
// While the store is down the primary's archiver fails its uploads and retries
// with backoff (up to 10 s); the archive's replication slot keeps the WAL. A
// slow store makes each upload late and the archive lag. Neither may cost a
// write (Postgres does not wait for the archive) or leave a gap in the
// archive: after the heal it resumes from the last stored position and
// catches up, which the archive checker verifies after the run.

import type { Prng } from '../../raft/sim/prng.js';
import type { Json } from '../history/types.js';
import type { StoreLink, StoreLinkCounts } from '../harness/store-link.js';
import type { ActiveFault, Nemesis, NemesisContext } from './types.js';

/** Bound on asking the cluster how its archiver is doing when a fault heals. */
const ARCHIVE_PROBE_MS = 2_000;

function link(ctx: NemesisContext, name: string): StoreLink {
  if (ctx.storeLink === undefined) throw new Error(`${name}: the run was started without the store link`);
  return ctx.storeLink;
}

function since(before: StoreLinkCounts, now: StoreLinkCounts): StoreLinkCounts {
  return {
    connections: now.connections - before.connections,
    reset: now.reset - before.reset,
    delayedChunks: now.delayedChunks - before.delayedChunks,
    delayedBytes: now.delayedBytes - before.delayedBytes,
  };
}

/** The primary's archiver as `ogel status` shows it, bounded: what the fault did to it (state, lag, last error). */
async function archiverNow(ctx: NemesisContext): Promise<Json> {
  const ask = (async (): Promise<Json> => {
    for (const id of ctx.cluster.ids) {
      if (!ctx.cluster.isRunning(id)) continue;
      const s = await ctx.cluster.status(id, false).catch(() => undefined);
      const live = s?.archive?.live as { node?: string; state?: string; lagMs?: number | null; lastError?: string | null } | null | undefined;
      if (s?.archive === undefined) continue;
      if (live === null || live === undefined) return { liveError: s.archive.liveError };
      return { node: live.node ?? null, state: live.state ?? null, lagMs: live.lagMs ?? null, lastError: live.lastError ?? null };
    }
    return null;
  })();
  const timeout = new Promise<Json>((r) => setTimeout(() => r('no answer in time'), ARCHIVE_PROBE_MS).unref());
  return Promise.race([ask, timeout]);
}

/** The link resets every connection, open or new, until healed. */
export const storeDown: Nemesis = {
  name: 'store-down',
  needs: { store: true },
  async start(ctx: NemesisContext): Promise<ActiveFault | undefined> {
    const l = link(ctx, 'store-down');
    const before = { ...l.counts };
    const cut = l.down();
    return {
      detail: { store: 'down', openConnectionsCut: cut },
      heal: async () => {
        const archiver = await archiverNow(ctx);
        l.open();
        return { link: { ...since(before, l.counts) }, archiverBeforeHeal: archiver };
      },
    };
  },
};

/** Each request towards the store waits 300-800 ms; half the faults also cap uploads at 64-256 KiB/s. */
export const storeSlow: Nemesis = {
  name: 'store-slow',
  needs: { store: true },
  async start(ctx: NemesisContext, rng: Prng): Promise<ActiveFault | undefined> {
    const l = link(ctx, 'store-slow');
    const delayMs = rng.int(300, 800);
    const bytesPerSecond = rng.chance(0.5) ? rng.int(64, 256) * 1024 : null;
    const before = { ...l.counts };
    l.slow(delayMs, bytesPerSecond);
    return {
      detail: { store: 'slow', delayMs, bytesPerSecond },
      heal: async () => {
        const archiver = await archiverNow(ctx);
        l.open();
        return { link: { ...since(before, l.counts) }, archiverBeforeHeal: archiver };
      },
    };
  },
};
