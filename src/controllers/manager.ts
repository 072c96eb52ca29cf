// Controllers run on the Raft leader only (failover, placement, snapshot
// scheduling, compute lifecycle, member health). They observe the state machine
// and propose commands; they never reach into other machines. The manager starts
// them when this node becomes leader and stops them, awaited, when it stops being
// leader, so two leaders' controllers never act at once for long: a deposed
// leader's proposals fail anyway, because only the leader can propose.

import type { Logger } from '../log.js';

export interface ControllerContext {
  /** Aborted when leadership is lost or the daemon stops. */
  signal: AbortSignal;
  log: Logger;
}

export interface Controller {
  readonly name: string;
  /** Runs until ctx.signal is aborted. A throw is logged and the controller restarted after a backoff. */
  run(ctx: ControllerContext): Promise<void>;
}

const RESTART_BACKOFF_MS_MIN = 100;
const RESTART_BACKOFF_MS_MAX = 5_000;

export class ControllerManager {
  private abort: AbortController | undefined;
  private running: Promise<void>[] = [];

  constructor(
    private readonly controllers: readonly Controller[],
    private readonly log: Logger,
  ) {}

  get active(): boolean {
    return this.abort !== undefined;
  }

  /** Call on every leadership change; idempotent. */
  async setLeader(isLeader: boolean): Promise<void> {
    if (isLeader && !this.abort) {
      const abort = new AbortController();
      this.abort = abort;
      this.running = this.controllers.map((c) => this.supervise(c, abort.signal));
      this.log({ level: 'info', msg: 'controllers started', controllers: this.controllers.map((c) => c.name) });
    } else if (!isLeader && this.abort) {
      await this.stop();
    }
  }

  async stop(): Promise<void> {
    const abort = this.abort;
    if (!abort) return;
    this.abort = undefined;
    abort.abort();
    await Promise.all(this.running);
    this.running = [];
    this.log({ level: 'info', msg: 'controllers stopped' });
  }

  private async supervise(c: Controller, signal: AbortSignal): Promise<void> {
    let backoffMs = RESTART_BACKOFF_MS_MIN;
    const log: Logger = (line) => this.log({ ...line, controller: c.name });
    while (!signal.aborted) {
      try {
        await c.run({ signal, log });
        return;
      } catch (e) {
        if (signal.aborted) return;
        log({ level: 'error', msg: 'controller failed; restarting', error: (e as Error).message, backoffMs });
        await sleep(backoffMs, signal);
        backoffMs = Math.min(backoffMs * 2, RESTART_BACKOFF_MS_MAX);
      }
    }
  }
}

/** Resolves after ms, or at once when the signal aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
