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
import { verifyBackupObjects } from './verify-objects.js';

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
}

/** Reads a finished backup's backup.json (an incremental's parent). */
export async function readBackupManifest(store: ObjectStore, prefix: string): Promise<BackupManifest> {
  const key = `${prefix}${BACKUP_MANIFEST_NAME}`;
  return parseBackupManifest((await readObject(store, { key })).toString('utf8'), key);
}

export class BackupWorker {
  private readonly running = new Map<string, AbortController>();
  private readonly finishing = new Set<string>();
  private stopped = false;
  private ready = false;

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
    this.poke();
  }

  /** Looks at the state for work; cheap, idempotent, called on every applied backup.* command and periodically. */
  poke(): void {
    if (this.stopped || !this.ready) return;
    for (const b of this.mine()) if (!this.running.has(b.id) && !this.finishing.has(b.id)) this.start(b);
  }

  private mine(): Backup[] {
    return [...this.d.state().backups.values()].filter((b) => b.state === 'running' && b.node === this.d.nodeId);
  }

  /** Abandons running backups (their records are failed on the next start, and their objects deleted). */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const ac of this.running.values()) ac.abort('the daemon is stopping');
  }

  isRunning(id: string): boolean {
    return this.running.has(id);
  }

  private start(b: Backup): void {
    const ac = new AbortController();
    this.running.set(b.id, ac);
    this.d.log({ level: 'info', msg: 'backup started', backup: b.id, kind: b.kind, parent: b.parent });
    void this.run(b, ac.signal).finally(() => this.running.delete(b.id));
  }

  private async run(b: Backup, signal: AbortSignal): Promise<void> {
    let manifest: BackupManifest;
    try {
      const parent = b.parent === null ? undefined : this.d.state().backups.get(b.parent);
      if (b.parent !== null && parent === undefined) throw new Error(`its parent ${b.parent} is no longer in the index`);
      const parentManifest = parent === undefined ? undefined : await readBackupManifest(this.d.store, parent.prefix);
      manifest = await takeBackup({
        store: this.d.store,
        clusterPrefix: this.d.clusterPrefix,
        cluster: this.d.cluster,
        id: b.id,
        parent: parentManifest,
        conn: this.d.conn(),
        node: this.d.nodeId,
        sourceRole: this.d.role(),
        signal,
        ...(this.d.nowMs ? { nowMs: this.d.nowMs } : {}),
      });
    } catch (e) {
      if (this.stopped) return; // recorded as interrupted on the next start
      this.fail(b, (e as Error).message);
      return;
    }
    try {
      await this.d.propose({
        v: 4,
        type: 'backup.update',
        atMs: (this.d.nowMs ?? Date.now)(),
        id: b.id,
        state: 'complete',
        endLsn: manifest.endLsn,
        tarBytes: manifest.tarBytes,
        storedBytes: manifest.storedBytes,
        checksum: `sha256:${manifest.tarSha256}`,
      });
      this.d.log({
        level: 'info',
        msg: 'backup complete',
        backup: b.id,
        endLsn: manifest.endLsn,
        storedBytes: manifest.storedBytes,
        tarBytes: manifest.tarBytes,
      });
    } catch (e) {
      // The objects are whole; if the update is lost, the next start marks the record failed and deletes them.
      this.d.log({ level: 'warn', msg: 'backup finished but could not be recorded as complete', backup: b.id, error: (e as Error).message });
      return;
    }
    await this.verifyObjects(b.id, manifest);
  }

  /** Reads the backup back and records the verdict (backup.verify, kind checksums). */
  private async verifyObjects(id: string, manifest: BackupManifest): Promise<void> {
    try {
      const v = await verifyBackupObjects(this.d.store, manifest);
      const detail = v.ok ? `${v.objects} objects, ${v.bytes} bytes read back and matched their sha256` : v.detail;
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
    void (async () => {
      try {
        await this.d.propose({ v: 4, type: 'backup.update', atMs: (this.d.nowMs ?? Date.now)(), id: b.id, state: 'failed', reason: reason.slice(0, 500) });
        await deletePrefix(this.d.store, b.prefix).catch((e: Error) =>
          this.d.log({ level: 'warn', msg: "could not delete a failed backup's objects; the sweep will", backup: b.id, error: e.message }),
        );
      } catch (e) {
        this.d.log({ level: 'warn', msg: 'could not record a backup failure; will retry', backup: b.id, error: (e as Error).message });
      } finally {
        this.finishing.delete(b.id);
      }
    })();
  }
}
