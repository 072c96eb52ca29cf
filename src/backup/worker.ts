// The agent's half of backups, on every node: the leader's backup controller
// records a backup as 'running' on a node (backup.record); that node's worker
// sees it in the state machine, streams its own Postgres into the object
// store (take-backup.ts) and records the outcome (backup.update: complete with
// its end and sizes, or failed with the reason). Object-store I/O happens
// here, never on the Raft loop (design brief).
//
// A backup recorded as running on this node that this worker is not running
// was interrupted (the daemon restarted, or was killed mid-backup): it is
// marked failed and its objects deleted, so the index never points at a
// partial backup.

import { setTimeout as sleep } from 'node:timers/promises';
import type { ApplyOk, Backup, ClusterState, Command } from '../../fsm/index.js';
import type { Logger } from '../log.js';
import type { ObjectStore } from '../object-store/index.js';
import type { ReplicationConn } from '../postgres/basebackup.js';
import { BACKUP_MANIFEST_NAME, parseBackupManifest, type BackupManifest } from './manifest.js';
import { readObject } from './store-io.js';
import { deletePrefix, takeBackup } from './take-backup.js';
import { describeObjectsVerdict, verifyBackupObjects } from './verify-objects.js';

export interface BackupWorkerDeps {
  nodeId: string;
  cluster: string;
  clusterPrefix: string;
  state: () => ClusterState;
  /** Resolves with the FSM's result; rejects when the command was refused or its outcome is unknown. */
  propose: (cmd: Command) => Promise<ApplyOk>;
  store: ObjectStore;
  /** How to reach this node's own Postgres for BASE_BACKUP. */
  conn: () => ReplicationConn;
  /** This node's Postgres role now (recorded in backup.json). */
  role: () => 'primary' | 'standby';
  /** Resolves once this node's state machine has caught up with the leader (a ReadIndex read). */
  syncState: () => Promise<void>;
  log: Logger;
  nowMs?: () => number;
  /** Before a backup of this node as a standby: a fresh checkpoint on the primary, replayed here (standby-checkpoint.ts). */
  prepareStandbyBackup?: (signal: AbortSignal) => Promise<void>;
  /** A backup that streams no byte for this long is aborted and failed. Default STALL_TIMEOUT_MS. */
  stallTimeoutMs?: number;
}

/**
 * Long enough for the fast checkpoint (or a standby's restartpoint) BASE_BACKUP
 * starts with on a loaded node, which sends nothing meanwhile; short enough that
 * a stuck backup does not hold the one-at-a-time schedule for long.
 */
export const STALL_TIMEOUT_MS = 10 * 60_000;

/** Reads a finished backup's backup.json (an incremental's parent). */
export async function readBackupManifest(store: ObjectStore, prefix: string): Promise<BackupManifest> {
  const key = `${prefix}${BACKUP_MANIFEST_NAME}`;
  return parseBackupManifest((await readObject(store, { key })).toString('utf8'), key);
}

/** How often the worker looks at the state without being poked: retries of outcomes it could not record. */
const POLL_MS = 10_000;

/** How far a backup running on this node has streamed: node-local and ephemeral, as pg_stat_progress_basebackup is. */
export interface BackupProgress {
  /** Tar bytes Postgres has sent so far. */
  tarBytes: number;
  /** Postgres's estimate of the whole (BASE_BACKUP PROGRESS), at least tarBytes; null before it is known. */
  totalBytes: number | null;
  /** Since this worker started streaming it. */
  elapsedMs: number;
}

/** A refusal by the state machine (definitive), as opposed to an outcome the proposer could not learn. */
function isRefusal(e: unknown): boolean {
  return e instanceof Error && e.message.startsWith('refused:');
}

export class BackupWorker {
  private readonly running = new Map<string, AbortController>();
  private readonly streamed = new Map<string, { tarBytes: number; totalBytes: number | null; t0Ms: number }>();
  private readonly finishing = new Set<string>();
  /** Outcomes not recorded yet (the leader was unreachable): proposed again on each poke until they land. */
  private readonly unrecorded = new Map<string, Command>();
  private stopped = false;
  private ready = false;
  private uploaded = 0;
  private poll: NodeJS.Timeout | undefined;

  constructor(private readonly d: BackupWorkerDeps) {}

  /**
   * Once this node has caught up with the log, every backup still recorded as
   * running here was started by an earlier run of this daemon, which died or
   * stopped before it finished: those are failed (no clocks compared). Work
   * starts after that.
   */
  async begin(retryMs = 500): Promise<void> {
    while (!this.stopped) {
      try {
        await this.d.syncState();
        break;
      } catch {
        await sleep(retryMs, undefined, { ref: false });
      }
    }
    if (this.stopped) return;
    for (const b of this.mine()) this.fail(b, 'interrupted: the daemon running it stopped before it finished');
    this.ready = true;
    this.poll = setInterval(() => this.poke(), POLL_MS);
    this.poll.unref();
    this.poke();
  }

  /** Looks at the state for work; cheap, idempotent, called on every applied backup.* command and periodically. */
  poke(): void {
    if (this.stopped || !this.ready) return;
    const mine = this.mine();
    for (const id of this.unrecorded.keys()) if (!mine.some((b) => b.id === id)) this.unrecorded.delete(id);
    for (const b of mine) {
      if (this.running.has(b.id) || this.finishing.has(b.id)) continue;
      const outcome = this.unrecorded.get(b.id);
      if (outcome !== undefined) this.retryRecord(b, outcome);
      else this.start(b);
    }
  }

  /** Proposes an outcome again; a failure's objects are deleted once it lands. */
  private retryRecord(b: Backup, outcome: Command): void {
    this.finishing.add(b.id);
    void (async () => {
      try {
        await this.d.propose(outcome);
        this.unrecorded.delete(b.id);
        this.d.log({ level: 'info', msg: 'recorded a backup outcome on retry', backup: b.id });
        if (outcome.type === 'backup.update' && outcome.state === 'failed') await this.deleteObjects(b);
      } catch (e) {
        if (isRefusal(e)) this.unrecorded.delete(b.id);
        this.d.log({ level: 'warn', msg: 'could not record a backup outcome yet', backup: b.id, error: (e as Error).message });
      } finally {
        this.finishing.delete(b.id);
      }
    })();
  }

  private mine(): Backup[] {
    return [...this.d.state().backups.values()].filter((b) => b.state === 'running' && b.node === this.d.nodeId);
  }

  /** Abandons running backups (their records are failed on the next start, and their objects deleted). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.poll);
    for (const ac of this.running.values()) ac.abort('the daemon is stopping');
  }

  /** Stored bytes of the backups this worker completed (a metric). */
  uploadedBytes(): number {
    return this.uploaded;
  }

  isRunning(id: string): boolean {
    return this.running.has(id);
  }

  /** How far backup `id` has streamed; null when it is not running on this node. */
  progress(id: string): BackupProgress | null {
    const p = this.streamed.get(id);
    return p === undefined ? null : { tarBytes: p.tarBytes, totalBytes: p.totalBytes, elapsedMs: Math.round(performance.now() - p.t0Ms) };
  }

  private start(b: Backup): void {
    const ac = new AbortController();
    this.running.set(b.id, ac);
    this.d.log({ level: 'info', msg: 'backup started', backup: b.id, kind: b.kind, parent: b.parent });
    this.streamed.set(b.id, { tarBytes: 0, totalBytes: null, t0Ms: performance.now() });
    void this.run(b, ac.signal).finally(() => {
      this.running.delete(b.id);
      this.streamed.delete(b.id);
    });
  }

  private async run(b: Backup, signal: AbortSignal): Promise<void> {
    let manifest: BackupManifest;
    const stallMs = this.d.stallTimeoutMs ?? STALL_TIMEOUT_MS;
    let lastProgress = performance.now();
    const stall = new AbortController();
    const watchdog = setInterval(
      () => {
        const idleMs = performance.now() - lastProgress;
        if (idleMs >= stallMs) stall.abort(new Error(`no progress for ${Math.round(idleMs / 1000)} s (Postgres sent no backup data); abandoned`));
      },
      Math.min(5_000, stallMs),
    );
    watchdog.unref();
    try {
      const parent = b.parent === null ? undefined : this.d.state().backups.get(b.parent);
      if (b.parent !== null && parent === undefined) throw new Error(`its parent ${b.parent} is no longer in the index`);
      const parentManifest = parent === undefined ? undefined : await readBackupManifest(this.d.store, parent.prefix);
      if (this.d.role() === 'standby') {
        // A standby's backup starts at its newest restartpoint: a fresh one bounds the WAL every restore
        // of it replays (hundreds of MB under load otherwise). An incremental needs it (standby-checkpoint.ts);
        // a full backup goes on without it when the primary cannot be asked.
        await this.d.prepareStandbyBackup?.(signal).catch((e: Error) => {
          if (parent !== undefined) throw e;
          this.d.log({
            level: 'warn',
            msg: 'full backup of a standby: no fresh checkpoint from the primary; the backup starts at an older restartpoint',
            backup: b.id,
            error: e.message,
          });
        });
      }
      manifest = await takeBackup({
        store: this.d.store,
        clusterPrefix: this.d.clusterPrefix,
        cluster: this.d.cluster,
        id: b.id,
        parent: parentManifest,
        conn: this.d.conn(),
        node: this.d.nodeId,
        sourceRole: this.d.role(),
        signal: AbortSignal.any([signal, stall.signal]),
        onProgress: (tarBytes, totalBytes) => {
          lastProgress = performance.now();
          const p = this.streamed.get(b.id);
          if (p !== undefined) {
            p.tarBytes = tarBytes;
            // Postgres's estimate leaves out the WAL it appends; past it, the total grows with the stream (as pg_basebackup shows it).
            p.totalBytes = totalBytes === undefined ? p.totalBytes : Math.max(totalBytes, tarBytes);
          }
        },
        ...(this.d.nowMs ? { nowMs: this.d.nowMs } : {}),
      });
    } catch (e) {
      if (this.stopped) return; // recorded as interrupted on the next start
      this.fail(b, stall.signal.aborted ? (stall.signal.reason as Error).message : (e as Error).message);
      return;
    } finally {
      clearInterval(watchdog);
    }
    const complete: Command = {
      v: 5,
      type: 'backup.update',
      atMs: (this.d.nowMs ?? Date.now)(),
      id: b.id,
      state: 'complete',
      startLsn: manifest.startLsn,
      endLsn: manifest.endLsn,
      tarBytes: manifest.tarBytes,
      storedBytes: manifest.storedBytes,
      checksum: `sha256:${manifest.tarSha256}`,
    };
    try {
      await this.d.propose(complete);
      this.uploaded += manifest.storedBytes;
      this.d.log({
        level: 'info',
        msg: 'backup complete',
        backup: b.id,
        endLsn: manifest.endLsn,
        storedBytes: manifest.storedBytes,
        tarBytes: manifest.tarBytes,
      });
    } catch (e) {
      if (isRefusal(e)) {
        // Definitive: the index will not take it as it is, so it is not a backup.
        this.fail(b, `its completion was refused: ${(e as Error).message}`);
      } else {
        // The objects are whole: record the completion when the leader answers again.
        this.unrecorded.set(b.id, complete);
        this.d.log({ level: 'warn', msg: 'backup finished, not recorded as complete yet; will retry', backup: b.id, error: (e as Error).message });
      }
      return;
    }
    await this.verifyObjects(b.id, manifest);
  }

  /** Reads the backup back, checks it whole (verify-objects.ts) and records the verdict (backup.verify, kind checksums). */
  private async verifyObjects(id: string, manifest: BackupManifest): Promise<void> {
    try {
      const v = await verifyBackupObjects(this.d.store, manifest);
      const detail = describeObjectsVerdict(v);
      await this.d.propose({
        v: 4,
        type: 'backup.verify',
        atMs: (this.d.nowMs ?? Date.now)(),
        id,
        result: v.ok ? 'verified' : 'failed',
        kind: 'checksums',
        detail,
      });
      this.d.log({ level: v.ok ? 'info' : 'error', msg: v.ok ? 'backup verified' : 'backup FAILED verification: it will not be used', backup: id, detail });
    } catch (e) {
      this.d.log({ level: 'warn', msg: 'backup could not be verified now', backup: id, error: (e as Error).message });
    }
  }

  /** Records the failure, then deletes whatever the backup stored (the index forgets before the objects go). */
  private fail(b: Backup, reason: string): void {
    this.finishing.add(b.id);
    this.d.log({ level: 'warn', msg: 'backup failed', backup: b.id, reason });
    const failed: Command = { v: 5, type: 'backup.update', atMs: (this.d.nowMs ?? Date.now)(), id: b.id, state: 'failed', reason: reason.slice(0, 500) };
    void (async () => {
      try {
        await this.d.propose(failed);
        await this.deleteObjects(b);
      } catch (e) {
        // Refused: the record is final already (failed by the leader, say). Otherwise retried on the next poke.
        if (!isRefusal(e)) this.unrecorded.set(b.id, failed);
        this.d.log({
          level: 'warn',
          msg: isRefusal(e) ? 'backup failure not recorded' : 'could not record a backup failure yet; will retry',
          backup: b.id,
          error: (e as Error).message,
        });
      } finally {
        this.finishing.delete(b.id);
      }
    })();
  }

  private async deleteObjects(b: Backup): Promise<void> {
    await deletePrefix(this.d.store, b.prefix).catch((e: Error) =>
      this.d.log({ level: 'warn', msg: "could not delete a failed backup's objects; the sweep will", backup: b.id, error: e.message }),
    );
  }
}
