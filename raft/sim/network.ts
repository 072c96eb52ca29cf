// The simulated network: per-message delay, loss, duplication and reordering
// (reordering falls out of independent random delays), plus symmetric and
// asymmetric partitions as a set of cut directed links.

import type { Message, NodeId } from '../src/core/types.js';
import type { Prng } from './prng.js';

export interface NetworkFaults {
  dropRate: number;
  duplicateRate: number;
  delayMinMs: number;
  delayMaxMs: number;
  /** Chance that a message takes a long detour (strong reordering). */
  longDelayRate: number;
  longDelayMaxMs: number;
}

export const RELIABLE: NetworkFaults = {
  dropRate: 0,
  duplicateRate: 0,
  delayMinMs: 1,
  delayMaxMs: 3,
  longDelayRate: 0,
  longDelayMaxMs: 0,
};

export interface Delivery {
  atMs: number;
  message: Message;
}

export class SimNetwork {
  private readonly cut = new Set<string>();
  faults: NetworkFaults = RELIABLE;
  sent = 0;
  dropped = 0;

  constructor(private readonly rng: Prng) {}

  private static link(from: NodeId, to: NodeId): string {
    return `${from}>${to}`;
  }

  cutLink(from: NodeId, to: NodeId): void {
    this.cut.add(SimNetwork.link(from, to));
  }

  isCut(from: NodeId, to: NodeId): boolean {
    return this.cut.has(SimNetwork.link(from, to));
  }

  /** Cuts every link between the two groups, both ways. */
  partition(a: readonly NodeId[], b: readonly NodeId[]): void {
    for (const x of a) {
      for (const y of b) {
        this.cutLink(x, y);
        this.cutLink(y, x);
      }
    }
  }

  heal(): void {
    this.cut.clear();
  }

  describeCuts(): string {
    return [...this.cut].sort().join(' ');
  }

  /** The deliveries this send produces (none if lost or cut; two if duplicated). */
  route(nowMs: number, m: Message): Delivery[] {
    this.sent++;
    if (this.isCut(m.from, m.to) || this.rng.chance(this.faults.dropRate)) {
      this.dropped++;
      return [];
    }
    const copies = this.rng.chance(this.faults.duplicateRate) ? 2 : 1;
    const out: Delivery[] = [];
    for (let i = 0; i < copies; i++) {
      let delay = this.rng.int(this.faults.delayMinMs, this.faults.delayMaxMs);
      if (this.faults.longDelayRate > 0 && this.rng.chance(this.faults.longDelayRate)) {
        delay += this.rng.int(0, this.faults.longDelayMaxMs);
      }
      out.push({ atMs: nowMs + delay, message: m });
    }
    return out;
  }
}
