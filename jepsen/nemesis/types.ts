// A nemesis injects one kind of fault. Each is a small module: start() injects
// one fault (choosing its target with the PRNG it is given) and returns how to
// heal exactly that fault. The scheduler (scheduler.ts) decides when, which and
// for how long, from the run's seed.

import type { Prng } from '../../raft/sim/prng.js';
import type { JepsenCluster } from '../harness/cluster.js';
import type { Firewall } from '../harness/firewall.js';
import type { Json } from '../history/index.js';
import type { SlowLinks } from '../harness/relay.js';
import type { StoreLink } from '../harness/store-link.js';

export const NEMESIS_NAMES = [
  'partition-halves',
  'partition-leader',
  'partition-primary',
  'partition-ring',
  'partition-oneway',
  'kill-daemon',
  'kill-postgres',
  'kill-host',
  'pause-daemon',
  'clock-skew',
  'transfer-storm',
  'slow-link',
  'wipe-node',
  'store-down',
  'store-slow',
] as const;

export type NemesisName = (typeof NEMESIS_NAMES)[number];

export interface NemesisContext {
  cluster: JepsenCluster;
  firewall: Firewall;
  /** Present when slow-link is among the run's nemeses (the relays must be in place from the start). */
  slowLinks: SlowLinks | undefined;
  /** Present when a store nemesis is in the run: the link between the daemons and the object store (s3rver). */
  storeLink: StoreLink | undefined;
  log: (msg: string) => void;
}

export interface ActiveFault {
  /** What was done, for the history of faults (targets, PIDs, rules). */
  detail: Json;
  /** Undoes exactly this fault; resolves to what healing found (dropped packets, restart time...). */
  heal(): Promise<Json>;
}

export interface Nemesis {
  readonly name: NemesisName;
  /** What the cluster must be started with for this nemesis to work. */
  readonly needs?: { fakeClock?: boolean; relays?: boolean; store?: boolean };
  /** Injects one fault, or undefined when it cannot now (no primary known, say): the scheduler skips it. */
  start(ctx: NemesisContext, rng: Prng): Promise<ActiveFault | undefined>;
}
