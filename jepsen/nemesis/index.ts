// The nemesis registry: --nemesis NAME[,NAME] picks from these.

import { clockSkew } from './clock-skew.js';
import { killDaemon, killHost, killPostgres, pauseDaemon } from './kill.js';
import { partitionHalves } from './partition-halves.js';
import { partitionLeader, partitionPrimary } from './partition-isolate.js';
import { partitionOneway } from './partition-oneway.js';
import { partitionRing } from './partition-ring.js';
import { slowLink } from './slow-link.js';
import { storeDown, storeSlow } from './store.js';
import { transferStorm } from './transfer-storm.js';
import { wipeNode } from './wipe-node.js';
import { NEMESIS_NAMES, type Nemesis, type NemesisName } from './types.js';

export { NEMESIS_NAMES, type ActiveFault, type Nemesis, type NemesisContext, type NemesisName } from './types.js';

const ALL: Readonly<Record<NemesisName, Nemesis>> = {
  'partition-halves': partitionHalves,
  'partition-leader': partitionLeader,
  'partition-primary': partitionPrimary,
  'partition-ring': partitionRing,
  'partition-oneway': partitionOneway,
  'kill-daemon': killDaemon,
  'kill-postgres': killPostgres,
  'kill-host': killHost,
  'pause-daemon': pauseDaemon,
  'clock-skew': clockSkew,
  'transfer-storm': transferStorm,
  'slow-link': slowLink,
  'wipe-node': wipeNode,
  'store-down': storeDown,
  'store-slow': storeSlow,
};

export function isNemesisName(s: string): s is NemesisName {
  return (NEMESIS_NAMES as readonly string[]).includes(s);
}

export function nemesis(name: NemesisName): Nemesis {
  return ALL[name];
}

/** Parses "a,b" (or "none"); throws naming the unknown ones and the valid names. */
export function parseNemeses(spec: string): NemesisName[] {
  if (spec === 'none' || spec === '') return [];
  const names = spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = names.filter((n) => !isNemesisName(n));
  if (bad.length > 0) throw new Error(`unknown nemesis ${bad.map((b) => JSON.stringify(b)).join(', ')}; known: ${NEMESIS_NAMES.join(', ')}`);
  return [...new Set(names)] as NemesisName[];
}
