// When faults happen: a plan drawn from the run's seed before the run starts
// (so a seed replays the same plan, whatever the cluster does), then followed
// in real time. Faults come one at a time: quiet, fault, heal, quiet, ... The
// nemeses are taken in a shuffled cycle, so every nemesis of a run gets its
// turn before any gets a second. A fault's target is drawn when it starts (the
// primary or leader of that moment), from its own PRNG stream.

import { Prng } from '../../raft/sim/prng.js';
import type { Json } from '../history/index.js';
import type { ActiveFault, Nemesis, NemesisContext, NemesisName } from './types.js';

export interface ScheduleOptions {
  quietMinMs: number;
  quietMaxMs: number;
  faultMinMs: number;
  faultMaxMs: number;
}

export const DEFAULT_SCHEDULE: ScheduleOptions = { quietMinMs: 2_000, quietMaxMs: 4_000, faultMinMs: 4_000, faultMaxMs: 8_000 };

export interface PlannedFault {
  name: NemesisName;
  atMs: number;
  durationMs: number;
  /** Seed of the fault's own PRNG (its target, its parameters). */
  seed: number;
}

/** The plan for a run of `timeMs` (every fault healed by then). Pure: same arguments, same plan. */
export function planFaults(seed: number, names: readonly NemesisName[], timeMs: number, o: ScheduleOptions = DEFAULT_SCHEDULE): PlannedFault[] {
  if (o.quietMinMs > o.quietMaxMs || o.faultMinMs > o.faultMaxMs || o.faultMinMs <= 0) throw new RangeError(`bad schedule ${JSON.stringify(o)}`);
  const rng = new Prng(seed ^ 0x5eed_fa17);
  const plan: PlannedFault[] = [];
  let cycle: NemesisName[] = [];
  let t = rng.int(o.quietMinMs, o.quietMaxMs);
  while (names.length > 0 && t + o.faultMinMs <= timeMs) {
    if (cycle.length === 0) cycle = rng.shuffle([...names]);
    const name = cycle.shift()!;
    const durationMs = Math.min(rng.int(o.faultMinMs, o.faultMaxMs), timeMs - t);
    plan.push({ name, atMs: t, durationMs, seed: rng.nextUint32() });
    t += durationMs + rng.int(o.quietMinMs, o.quietMaxMs);
  }
  return plan;
}

/** What became of a planned fault that was tried (one never tried has no record: see accounting.ts). */
export type FaultOutcome = 'injected' | 'skipped' | 'start-failed';

export interface FaultRecord {
  name: NemesisName;
  outcome: FaultOutcome;
  /** Run-relative ms (the history's clock): when the fault was in place, and when it was healed. */
  startMs: number;
  endMs: number | null;
  detail: Json;
  healed: Json;
  error?: string;
}

/** Follows a plan; stop() ends it early and heals the fault in place. */
export class FaultRunner {
  readonly faults: FaultRecord[] = [];
  private stopped = false;
  private wake: (() => void) | undefined;
  private done: Promise<void> | undefined;
  private active: { fault: ActiveFault; record: FaultRecord } | undefined;

  constructor(
    private readonly plan: readonly PlannedFault[],
    private readonly nemeses: ReadonlyMap<NemesisName, Nemesis>,
    private readonly ctx: NemesisContext,
    /** Run-relative ms. */
    private readonly clockMs: () => number,
  ) {}

  start(): void {
    if (this.done !== undefined) throw new Error('FaultRunner.start called twice');
    this.done = this.loop();
  }

  /** Stops following the plan and heals the fault in place, if any. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.done;
  }

  private sleepUntil(ms: number): Promise<void> {
    const wait = ms - this.clockMs();
    if (wait <= 0 || this.stopped) return Promise.resolve();
    return new Promise((r) => {
      const t = setTimeout(r, wait);
      this.wake = () => {
        clearTimeout(t);
        r();
      };
    });
  }

  private async loop(): Promise<void> {
    for (const p of this.plan) {
      await this.sleepUntil(p.atMs);
      if (this.stopped) break;
      const n = this.nemeses.get(p.name)!;
      const record: FaultRecord = { name: p.name, outcome: 'injected', startMs: this.clockMs(), endMs: null, detail: null, healed: null };
      let fault: ActiveFault | undefined;
      try {
        fault = await n.start(this.ctx, new Prng(p.seed));
      } catch (e) {
        record.error = `start: ${(e as Error).message}`;
        this.ctx.log(`nemesis ${p.name} failed to start: ${(e as Error).message}`);
      }
      if (fault === undefined) {
        // Recorded either way: the run's verdict compares what happened with the plan.
        if (record.error === undefined) this.ctx.log(`nemesis ${p.name}: nothing to do now (skipped)`);
        this.faults.push({ ...record, outcome: record.error === undefined ? 'skipped' : 'start-failed', endMs: record.startMs });
        continue;
      }
      // The fault is in place from here: its start time is when injection finished.
      record.startMs = this.clockMs();
      record.detail = fault.detail;
      this.faults.push(record);
      this.active = { fault, record };
      this.ctx.log(`fault ${p.name} ${JSON.stringify(fault.detail)}`);
      await this.sleepUntil(p.atMs + p.durationMs);
      await this.healActive();
      if (this.stopped) break;
    }
    await this.healActive();
  }

  private async healActive(): Promise<void> {
    const a = this.active;
    if (a === undefined) return;
    this.active = undefined;
    try {
      a.record.healed = await a.fault.heal();
    } catch (e) {
      a.record.error = `heal: ${(e as Error).message}`;
      this.ctx.log(`nemesis ${a.record.name} failed to heal: ${(e as Error).message}`);
    }
    a.record.endMs = this.clockMs();
    this.ctx.log(`healed ${a.record.name} ${JSON.stringify(a.record.healed)}`);
  }
}
