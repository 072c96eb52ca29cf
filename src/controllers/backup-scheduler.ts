// Backups, on the Raft leader: every tick it asks decideBackup (backup-plan.ts)
// whether one is due and, if so, records it as running on the chosen node
// (backup.record); that node's backup worker takes it (src/backup/worker.ts).
// Operators' requests (ogel backup create) come through request() and are
// decided the same way, first. The controller never touches the object store
// or another machine: it proposes, agents act.

import { randomBytes } from 'node:crypto';
import type { ApplyOk, ClusterStateMachine, Command } from '../../fsm/index.js';
import { backupId, decideBackup, type BackupKindRequest, type BackupSchedule } from './backup-plan.js';
import { sleep, type Controller, type ControllerContext } from './manager.js';

const TICK_MS = 5_000;
/**
 * Scheduled backups wait this long after this node became leader: a backup
 * reads every file and compresses it on a 2-core machine, and a cluster that is
 * starting, or has just changed leader, is better left to settle. Measured on
 * the leader's own monotonic clock. Operators' requests do not wait.
 */
export const SCHEDULE_GRACE_MS = 60_000;

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
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          void sleep(TICK_MS, ctx.signal).then(resolve);
        });
      }
    } finally {
      this.active = false;
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
