// Deliberately broken variants of the implementation, each with the fault mix
// ("scenario") that provokes its bug. The simulation must catch every variant: that
// is the proof that the checks can fail. The correct build must pass the same
// scenarios, so they also serve as extra, targeted simulation runs.

import { DEFAULT_SIM_OPTIONS, type SimOptions } from './simulation.js';

type Tweak = (o: SimOptions) => SimOptions;

export interface Scenario {
  description: string;
  apply: Tweak;
}

const weights = (w: Partial<SimOptions['faultWeights']>): SimOptions['faultWeights'] => ({
  heal: 0,
  partition: 0,
  oneway: 0,
  'isolate-leader': 0,
  crash: 0,
  restart: 0,
  bounce: 0,
  'crash-mid-write': 0,
  transfer: 0,
  membership: 0,
  net: 0,
  ...w,
});

export const SCENARIOS: Record<string, Scenario> = {
  default: { description: 'every fault, moderate rate', apply: (o) => o },
  'leader-churn': {
    description: 'leaders cut off right after winning, one entry per message (Figure 8 territory)',
    apply: (o) => ({
      ...o,
      faultEveryMs: 60,
      faultWeights: weights({ 'isolate-leader': 6, heal: 2, restart: 1, bounce: 1, partition: 1 }),
      node: { ...o.node, raft: { ...o.node.raft, maxSizePerMsgBytes: 1, maxInflightMsgs: 2 } },
    }),
  },
  'election-crashes': {
    description: 'voters crash and restart in the middle of elections',
    apply: (o) => ({
      ...o,
      faultEveryMs: 40,
      faultWeights: weights({ 'isolate-leader': 3, heal: 2, transfer: 2, restart: 1, bounce: 6, 'crash-mid-write': 3, net: 1, partition: 2 }),
    }),
  },
  'transfer-storm': {
    description: 'leadership transfers back to back, reads and writes on few keys',
    apply: (o) => ({ ...o, keys: 2, faultEveryMs: 50, faultWeights: weights({ transfer: 8, heal: 1, 'isolate-leader': 1 }) }),
  },
};

export interface UnsafeVariant {
  description: string;
  /** The scenario that provokes the bug. */
  scenario: string;
  apply: Tweak;
}

export const UNSAFE_VARIANTS: Record<string, UnsafeVariant> = {
  'commit-previous-term': {
    description: 'Figure 8: commit an entry of an earlier term by counting replicas',
    scenario: 'leader-churn',
    apply: (o) => ({ ...o, node: { ...o.node, raft: { ...o.node.raft, unsafe: { commitByCountingAnyTerm: true } } } }),
  },
  'vote-not-persisted': {
    description: 'the vote is not persisted: after a restart a node can vote twice in one term',
    scenario: 'election-crashes',
    apply: (o) => ({ ...o, node: { ...o.node, unsafeForgetVote: true } }),
  },
  'read-before-own-term-commit': {
    description: 'ReadIndex answered before the new leader commits an entry of its own term',
    scenario: 'transfer-storm',
    apply: (o) => ({ ...o, node: { ...o.node, raft: { ...o.node.raft, unsafe: { readIndexBeforeOwnTermCommit: true } } } }),
  },
};

export function scenarioOptions(seed: number, scenario = 'default'): SimOptions {
  const s = SCENARIOS[scenario];
  if (!s) throw new Error(`unknown scenario '${scenario}' (known: ${Object.keys(SCENARIOS).join(', ')})`);
  return s.apply({ ...DEFAULT_SIM_OPTIONS, seed });
}

/** Options for a broken variant in the scenario that provokes it. */
export function variantOptions(seed: number, variant: string): SimOptions {
  const v = UNSAFE_VARIANTS[variant];
  if (!v) throw new Error(`unknown unsafe variant '${variant}' (known: ${Object.keys(UNSAFE_VARIANTS).join(', ')})`);
  return v.apply(scenarioOptions(seed, v.scenario));
}
