// Runs a planned point-in-time restore (pitr-plan.ts) into a directory:
//
//   1. restore the backup chain (backup/restore.ts: every part and file checked);
//   2. fill the WAL spool ahead of replay (wal-spool.ts), from the start;
//   3. start Postgres on it in archive recovery with the target, as the
//      Postgres user, on a private socket and no TCP, and wait until it has
//      promoted (recovery_target_action = promote: a new timeline, so the copy
//      never reuses the archive's WAL names);
//   4. stop it cleanly and take the restore's settings back out, leaving a
//      plain data directory that starts with `postgres -D DIR`.
//
// A target time after the archive's last commit (every commit up to it is
// archived, but none after it to stop at) makes Postgres end recovery with
// "recovery ended before configured recovery target was reached"; replaying
// everything archived is then exactly the state at the target, so the
// restore replays again with no target. A failed fetch fails the restore and
// empties the directory: a copy that replayed less than planned is never
// handed out as if it were the target.

import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { formatLsn } from '../../fsm/index.js';
import type { Logger } from '../log.js';
import type { ObjectStore } from '../object-store/index.js';
import type { PgBinaries } from '../postgres/binaries.js';
import { PostgresInstance } from '../postgres/instance.js';
import { connectSocket } from '../postgres/query.js';
import { ensurePostgresUser, type OsUser } from '../postgres/os-user.js';
import { makeStandalone, restoreChain, type RestoreStats } from '../backup/restore.js';
import { freePort } from '../backup/restore-test.js';
import type { WalCatalog } from './catalog.js';
import type { PitrPlan } from './pitr-plan.js';
import { SPOOL_DIR_NAME, WalSpool } from './wal-spool.js';

export class PitrError extends Error {
  override name = 'PitrError';
}

export type PitrProgress =
  | { stage: 'restore'; doneBytes: number; totalBytes: number }
  | { stage: 'replay'; segmentsRequested: number; segmentsPlanned: number; fetchedWalBytes: number };

export interface PitrOptions {
  store: ObjectStore;
  catalog: WalCatalog;
  plan: PitrPlan;
  targetDir: string;
  /** The OS user Postgres runs as; as root, the restored files are given to it. Default: ensurePostgresUser() as root, the current user otherwise. */
  user?: OsUser | undefined;
  binaries?: PgBinaries | undefined;
  logger?: Logger | undefined;
  onProgress?: ((p: PitrProgress) => void) | undefined;
  /** Replay (and everything) must finish within this (default 6 hours). */
  timeoutMs?: number | undefined;
  /** Runs on the promoted copy, as the superuser, before it stops (disaster recovery sets the new cluster's passwords). */
  afterPromote?: ((client: Awaited<ReturnType<typeof connectSocket>>) => Promise<void>) | undefined;
}

export interface PitrResult {
  backup: string;
  chain: string[];
  /** The timeline followed, and the one the restored copy now writes. */
  timeline: number;
  newTimeline: number;
  /** Where replay stopped, from the server's log ("recovery stopping ..." or "redo done at ..."). */
  stoppedAt: string | null;
  /** The last replayed commit's time, from the server's log, when it said. */
  lastCommitAt: string | null;
  /** The copy's WAL position once promoted. */
  lsn: string;
  walSegments: number;
  walBytes: number;
  /** The time target was past the archive's last commit: everything archived was replayed. */
  replayedToEnd: boolean;
  restore: RestoreStats;
  durationMs: number;
  phasesMs: { restore: number; replay: number };
}

const REPLAY_BLOCK_START = '# ogel point-in-time restore: these lines are removed when it finishes';
const REPLAY_BLOCK_END = '# end of the ogel point-in-time restore lines';

export async function runPitr(opts: PitrOptions): Promise<PitrResult> {
  const t0 = performance.now();
  const target = path.resolve(opts.targetDir);
  const user = opts.user ?? ensurePostgresUser();
  const owner = process.getuid?.() === 0 ? user : undefined;
  const plan = opts.plan;
  const restore = await restoreChain(opts.store, plan.chain, target, {
    owner,
    onProgress: (doneBytes, totalBytes) => opts.onProgress?.({ stage: 'restore', doneBytes, totalBytes }),
  });
  const tRestored = performance.now();
  let pg: PostgresInstance | undefined;
  let spool: WalSpool | undefined;
  try {
    await makeStandalone(target, owner);
    let replayedToEnd = false;
    let outcome = await replayOnce(opts, target, user, owner, true);
    pg = outcome.pg;
    spool = outcome.spool;
    if (outcome.kind === 'target-past-end') {
      await spool.stop();
      // Every commit archived is at or before the target, but only if replay read all of it:
      // a failed fetch also ends WAL early, and replaying "everything" then would pass the target.
      if (spool.error !== undefined || spool.requested < opts.plan.segments.length) {
        throw new PitrError(
          `replay ended before the target${spool.error ? `: WAL could not be fetched from the archive (${spool.error.message})` : `, at segment ${spool.requested} of ${opts.plan.segments.length} planned`}; nothing was restored`,
        );
      }
      replayedToEnd = true;
      outcome = await replayOnce(opts, target, user, owner, false);
      pg = outcome.pg;
      spool = outcome.spool;
    }
    if (outcome.kind !== 'promoted') throw new PitrError('replay did not finish');
    await spool.stop();
    // A fetch that failed past what replay asked for did not matter (the spool reads ahead).
    if (spool.failedWithinReplay) throw new PitrError(`WAL could not be fetched from the archive: ${spool.error!.message}`);
    // With no target, replay must have read every planned segment: a shorter replay promoted early.
    const toEnd = replayedToEnd || opts.plan.target.kind === 'latest';
    if (toEnd && spool.requested < opts.plan.segments.length) {
      throw new PitrError(
        `replay ended at segment ${spool.requested} of ${opts.plan.segments.length} planned, before the end of the archive; nothing was restored`,
      );
    }
    const client = await connectSocket(pg.socketTarget, { timeoutMs: 10_000 });
    let row: { lsn: string; tli: number };
    try {
      row = (
        await client.query<{ lsn: string; tli: number }>(
          'SELECT pg_current_wal_lsn()::text AS lsn, (SELECT timeline_id FROM pg_control_checkpoint())::int AS tli',
        )
      ).rows[0]!;
      await opts.afterPromote?.(client);
    } finally {
      await client.end().catch(() => {});
    }
    const log = outcome.notes.join('\n');
    await pg.stop('fast');
    await removeReplayBlock(target);
    await fsp.rm(path.join(target, SPOOL_DIR_NAME), { recursive: true, force: true });
    const stopLine = /recovery stopping (?:before|after) .*/.exec(log)?.[0] ?? /redo done at \S+/.exec(log)?.[0] ?? null;
    const lastCommit =
      /last completed transaction was at log time (.+?)(?:$|\n)/.exec(log)?.[1] ?? /, time (\d{4}-\d\d-\d\d [^\n]+?)(?:$|\n)/.exec(stopLine ?? '')?.[1] ?? null;
    const tEnd = performance.now();
    return {
      backup: plan.window.backup,
      chain: plan.chain.map((b) => b.id),
      timeline: plan.timeline,
      newTimeline: row.tli,
      stoppedAt: stopLine,
      lastCommitAt: lastCommit,
      lsn: row.lsn,
      walSegments: spool.fetched,
      walBytes: spool.walBytes,
      replayedToEnd,
      restore,
      durationMs: Math.round(tEnd - t0),
      phasesMs: { restore: Math.round(tRestored - t0), replay: Math.round(tEnd - tRestored) },
    };
  } catch (e) {
    await spool?.stop().catch(() => {});
    if (pg?.isRunning()) await pg.stop('immediate', { timeoutMs: 10_000 }).catch(() => {});
    // Never hand out a copy that did not reach its target.
    for (const name of await fsp.readdir(target).catch(() => [] as string[])) await fsp.rm(path.join(target, name), { recursive: true, force: true });
    throw e;
  }
}

type ReplayOutcome = { kind: 'promoted' | 'target-past-end'; pg: PostgresInstance; spool: WalSpool; notes: string[] };

async function replayOnce(opts: PitrOptions, dir: string, user: OsUser, owner: OsUser | undefined, withTarget: boolean): Promise<ReplayOutcome> {
  const plan = opts.plan;
  const spool = new WalSpool({
    store: opts.store,
    catalog: opts.catalog,
    segments: plan.segments,
    histories: plan.histories,
    dir: path.join(dir, SPOOL_DIR_NAME),
    owner,
  });
  await fsp.rm(path.join(dir, SPOOL_DIR_NAME), { recursive: true, force: true });
  await spool.start();
  const port = await freePort();
  // The copy keeps its source's port in ogel.conf: ours must be the one the instance below talks to.
  await writeReplayBlock(dir, owner, { ...replaySettings(plan, spool.restoreCommand, withTarget), port: String(port) });
  await fsp.writeFile(path.join(dir, 'recovery.signal'), '', { mode: 0o600 });
  if (owner) await fsp.chown(path.join(dir, 'recovery.signal'), owner.uid, owner.gid);
  const pg = new PostgresInstance({ dataDir: dir, port, user, binaries: opts.binaries, logger: opts.logger });
  // A long replay logs a line per segment: keep the lines that say where it stopped, past the log ring.
  const notes: string[] = [];
  pg.on('log', (line: string) => {
    if (/recovery stopping|redo done at|last completed transaction|recovery ended before|\b(FATAL|PANIC):/.test(line)) notes.push(line);
  });
  await pg.start({ wait: false });
  const deadline = performance.now() + (opts.timeoutMs ?? 6 * 3600_000);
  for (;;) {
    const exited = await Promise.race([pg.exited, sleep(100).then(() => undefined)]);
    if (exited !== undefined) {
      const lines = [...notes, ...pg.logSince(0).slice(-5)];
      if (withTarget && notes.some((l) => l.includes('recovery ended before configured recovery target was reached')) && plan.target.kind === 'time') {
        return { kind: 'target-past-end', pg, spool, notes };
      }
      await spool.stop();
      const why = spool.error ? ` (fetching WAL failed: ${spool.error.message})` : '';
      const fatal = lines.filter((l) => /\b(FATAL|PANIC):/.test(l)).slice(-3);
      throw new PitrError(`Postgres stopped during replay${why}: ${fatal.join(' | ') || lines.slice(-5).join(' | ')}`);
    }
    opts.onProgress?.({ stage: 'replay', segmentsRequested: spool.requested, segmentsPlanned: plan.segments.length, fetchedWalBytes: spool.walBytes });
    const inRecovery = await stillRecovering(pg);
    if (!inRecovery) return { kind: 'promoted', pg, spool, notes };
    if (performance.now() > deadline) throw new PitrError(`replay did not reach the target within ${opts.timeoutMs} ms`);
  }
}

/** One short connection per look (the instance's pool would queue behind attempts made while it starts). */
async function stillRecovering(pg: PostgresInstance): Promise<boolean> {
  let client: Awaited<ReturnType<typeof connectSocket>> | undefined;
  try {
    client = await connectSocket(pg.socketTarget, { timeoutMs: 2000 });
    return (await client.query<{ r: boolean }>({ text: 'SELECT pg_is_in_recovery() AS r', query_timeout: 2000 } as never)).rows[0]!.r;
  } catch {
    return true;
  } finally {
    await client?.end().catch(() => {});
  }
}

function replaySettings(plan: PitrPlan, restoreCommand: string, withTarget: boolean): Record<string, string> {
  const q = (v: string) => `'${v.replace(/'/g, "''")}'`;
  const s: Record<string, string> = {
    restore_command: q(restoreCommand),
    recovery_target_timeline: q(String(plan.timeline)),
    recovery_target_action: q('promote'),
    // The copy serves nobody while it replays, and must not archive the source's WAL anywhere.
    listen_addresses: q(''),
    archive_mode: 'off',
    hot_standby: 'on',
  };
  const t = plan.target;
  if (withTarget && t.kind !== 'latest') {
    s['recovery_target_inclusive'] = 'on';
    if (t.kind === 'time') s['recovery_target_time'] = q(t.pgText);
    else if (t.kind === 'lsn') s['recovery_target_lsn'] = q(formatLsn(t.lsn));
    else s['recovery_target_name'] = q(t.name);
  }
  return s;
}

async function writeReplayBlock(dir: string, owner: OsUser | undefined, settings: Record<string, string>): Promise<void> {
  await removeReplayBlock(dir);
  const file = path.join(dir, 'postgresql.auto.conf');
  const lines = ['', REPLAY_BLOCK_START, ...Object.entries(settings).map(([k, v]) => `${k} = ${v}`), REPLAY_BLOCK_END, ''];
  await fsp.appendFile(file, lines.join('\n'), { mode: 0o600 });
  if (owner) await fsp.chown(file, owner.uid, owner.gid);
}

async function removeReplayBlock(dir: string): Promise<void> {
  const file = path.join(dir, 'postgresql.auto.conf');
  const text = await fsp.readFile(file, 'utf8');
  const start = text.indexOf(`\n${REPLAY_BLOCK_START}`);
  if (start < 0) return;
  const end = text.indexOf(REPLAY_BLOCK_END, start);
  if (end < 0) throw new PitrError(`${file} holds the start of the restore's settings but not their end; it was edited during the restore`);
  await fsp.writeFile(file, text.slice(0, start) + text.slice(end + REPLAY_BLOCK_END.length + 1));
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
