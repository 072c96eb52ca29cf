// Backups, on the Raft leader: every tick it asks decideBackup (backup-plan.ts)
// whether one is due and, if so, records it as running on the chosen node
// (backup.record); that node's backup worker takes it (src/backup/worker.ts).
// Operators' requests (ogel backup create) come through request() and are
// decided the same way, first. The controller never touches the object store
// or another machine: it proposes, agents act.

import { randomBytes } from 'node:crypto';
import type { ApplyOk, ClusterStateMachine, Command } from '../../fsm/index.js';
import { backupId, decideBackup, type BackupKindRequest, type BackupSchedule } from './backup-plan.js';
import { planRetention, type RetentionPolicy } from './backup-retention.js';
import { sleep, type Controller, type ControllerContext } from './manager.js';

const TICK_MS = 5_000;
/**
 * Scheduled backups wait this long after this node became leader: a backup
 * reads every file and compresses it on a 2-core machine, and a cluster that is
 * starting, or has just changed leader, is better left to settle. Measured on
 * the leader's own monotonic clock. Operators' requests do not wait.
 */
export const SCHEDULE_GRACE_MS = 60_000;

/**
 * A running backup whose node the leader has not heard from for this long is
 * failed: a node that never returns must not hold the one-at-a-time schedule.
 * If the node was only cut off, its worker's late 'complete' is refused (the
 * record is no longer running) and the sweep removes what it wrote.
 */
export const NODE_GONE_MS = 2 * 60_000;

export class BackupRequestError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = 'BackupRequestError';
  }
}

export interface BackupSchedulerOptions {
  schedule: BackupSchedule;
  /** Key prefix of this cluster's backups, e.g. 'ogel/basebackups/'. */
  backupsPrefix: string;
  /** Scheduled backups on or off (operators' requests work either way). */
  scheduled: boolean;
  /** Default SCHEDULE_GRACE_MS. */
  graceMs?: number;
  /** How long ago the leader last heard from a node (Raft's view); null when unknown. */
  nodeContactMs?: (node: string) => number | null;
  /** Default NODE_GONE_MS. */
  nodeGoneMs?: number;
  /** Which backups the index keeps (backup-retention.ts); enforced after the grace period. */
  retention: RetentionPolicy;
  /** Called after each pass of the loop (tests wait for passes instead of sleeping). */
  onPass?: () => void;
  nowMs?: () => number;
}

export class BackupScheduler implements Controller {
  readonly name = 'backups';
  private active = false;
  private wake: (() => void) | undefined;

  constructor(
    private readonly fsm: ClusterStateMachine,
    private readonly propose: (cmd: Command) => Promise<ApplyOk>,
    private readonly o: BackupSchedulerOptions,
  ) {}

  async run(ctx: ControllerContext): Promise<void> {
    this.active = true;
    const since = performance.now();
    try {
      while (!ctx.signal.aborted) {
        // Judged only after a full period in office: a new leader's view of its peers starts empty.
        if (performance.now() - since >= (this.o.nodeGoneMs ?? NODE_GONE_MS)) await this.abandonOnGoneNodes(ctx);
        if (performance.now() - since >= (this.o.graceMs ?? SCHEDULE_GRACE_MS)) await this.applyRetention(ctx);
        if (this.o.scheduled && performance.now() - since >= (this.o.graceMs ?? SCHEDULE_GRACE_MS)) {
          const d = decideBackup(this.fsm.state, this.o.schedule, this.now());
          if (d.action === 'start') {
            try {
              const id = await this.record(d);
              ctx.log({ level: 'info', msg: 'backup scheduled', backup: id, kind: d.kind, node: d.node, why: d.why });
            } catch (e) {
              ctx.log({ level: 'warn', msg: 'could not record a scheduled backup', error: (e as Error).message });
            }
          }
        }
        this.o.onPass?.();
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          void sleep(TICK_MS, ctx.signal).then(resolve);
        });
      }
    } finally {
      this.active = false;
    }
  }

  /**
   * Forgets what the retention policy does not keep, in the plan's order (a child
   * before its parent). The index forgets first; the daemon's sweep then deletes
   * the objects of ids the index no longer has.
   */
  private async applyRetention(ctx: ControllerContext): Promise<void> {
    const state = this.fsm.state;
    const inUse = new Set([...state.computes.values()].map((k) => k.sourceSnapshot).filter((id): id is string => id !== null));
    const plan = planRetention([...state.backups.values()], this.o.retention, this.now(), inUse);
    for (const d of plan.delete) {
      try {
        await this.propose({ v: 1, type: 'backup.delete', atMs: this.now(), id: d.id });
        ctx.log({ level: 'info', msg: 'backup retired by retention', backup: d.id, why: d.why });
      } catch (e) {
        ctx.log({ level: 'warn', msg: 'could not retire a backup', backup: d.id, why: d.why, error: (e as Error).message });
        return; // the rest of the plan may depend on it; planned again next tick
      }
    }
  }

  private async abandonOnGoneNodes(ctx: ControllerContext): Promise<void> {
    const goneMs = this.o.nodeGoneMs ?? NODE_GONE_MS;
    for (const b of this.fsm.state.backups.values()) {
      if (b.state !== 'running' || b.node === null) continue;
      const quietMs = this.o.nodeContactMs?.(b.node) ?? null;
      if (quietMs === null || quietMs < goneMs) continue;
      const reason = `node ${b.node} has not been heard from for ${Math.round(quietMs / 1000)} s; the backup was abandoned`;
      try {
        await this.propose({ v: 5, type: 'backup.update', atMs: this.now(), id: b.id, state: 'failed', reason });
        ctx.log({ level: 'warn', msg: 'backup abandoned: its node is gone', backup: b.id, node: b.node, quietMs });
      } catch (e) {
        ctx.log({ level: 'warn', msg: 'could not fail a backup whose node is gone', backup: b.id, error: (e as Error).message });
      }
    }
  }

  /** ogel backup create: records a backup now (or says why not); resolves with its id once recorded. */
  async request(kind: BackupKindRequest): Promise<string> {
    if (!this.active)
      throw new BackupRequestError('backups are scheduled by the Raft leader; this node is not it (the API forwards requests to the leader)', 503);
    const d = decideBackup(this.fsm.state, this.o.schedule, this.now(), kind);
    if (d.action !== 'start') throw new BackupRequestError(d.why, 409);
    return this.record(d);
  }

  /** Re-reads the state soon (a backup finished). */
  poke(): void {
    this.wake?.();
  }

  private async record(d: Extract<ReturnType<typeof decideBackup>, { action: 'start' }>): Promise<string> {
    const id = backupId(this.now(), d.kind, randomBytes(3).toString('hex'));
    await this.propose({
      v: 4,
      type: 'backup.record',
      atMs: this.now(),
      id,
      kind: d.kind,
      parent: d.parent,
      node: d.node,
      timeline: d.timeline,
      startLsn: d.startLsn,
      prefix: `${this.o.backupsPrefix}${id}/`,
    });
    return id;
  }

  private now(): number {
    return (this.o.nowMs ?? Date.now)();
  }
}
