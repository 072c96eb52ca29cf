// An incremental backup taken from a standby starts at the standby's newest
// restartpoint, and Postgres makes a restartpoint only at a checkpoint record
// it has replayed: BASE_BACKUP's fast checkpoint on a standby cannot make a new
// one. When the primary has not checkpointed since the parent backup ended (a
// quiet cluster), Postgres refuses the incremental ("manifest requires WAL ...
// ending at X, but this backup starts at Y"). So before such a backup: CHECKPOINT
// on the primary, then wait until this standby has replayed past that record.
// A full backup of a standby gets the same (best effort): without it, it starts
// at whatever restartpoint the standby last made, and every restore of it
// replays all the WAL since (bench:pitr saw 517 MB).

import pg from 'pg';
import { setTimeout as sleep } from 'node:timers/promises';

const POLL_MS = 100;

export interface StandbyCheckpointOptions {
  /** The primary, as a superuser (CHECKPOINT). */
  primary: pg.ClientConfig;
  /** This standby, as any user that may read pg_last_wal_replay_lsn(). */
  standby: pg.ClientConfig;
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

async function connected(config: pg.ClientConfig): Promise<pg.Client> {
  const c = new pg.Client({ connectionTimeoutMillis: 10_000, ...config });
  c.on('error', () => {}); // a termination fails the next query instead
  await c.connect();
  return c;
}

/** Resolves once the standby has replayed a checkpoint the primary made after this call began; throws naming what did not happen. */
export async function checkpointPrimaryForStandby(o: StandbyCheckpointOptions): Promise<void> {
  const deadline = performance.now() + o.timeoutMs;
  const primary = await connected(o.primary);
  let lsn: string;
  try {
    await primary.query('CHECKPOINT');
    lsn = (await primary.query<{ l: string }>('SELECT checkpoint_lsn::text AS l FROM pg_catalog.pg_control_checkpoint()')).rows[0]!.l;
  } catch (e) {
    throw new Error(`a checkpoint on the primary (for an incremental backup of a standby) failed: ${(e as Error).message}`);
  } finally {
    await primary.end().catch(() => {});
  }
  const standby = await connected(o.standby);
  try {
    for (;;) {
      const r = await standby.query<{ past: boolean | null }>('SELECT pg_catalog.pg_last_wal_replay_lsn() > $1::pg_lsn AS past', [lsn]);
      if (r.rows[0]?.past === true) return;
      if (o.signal?.aborted) throw new Error(`aborted while waiting for the standby to replay the primary's checkpoint at ${lsn}`);
      if (performance.now() > deadline) throw new Error(`the standby did not replay the primary's checkpoint at ${lsn} within ${o.timeoutMs} ms`);
      await sleep(POLL_MS);
    }
  } finally {
    await standby.end().catch(() => {});
  }
}
