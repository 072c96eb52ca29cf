// Membership changes: one server at a time (Raft dissertation §4.1), effective as
// soon as the entry is in a node's log, committed or not.
//
// Why not joint consensus: every change OgelBase makes is a single add, promote or
// remove, and single-server changes are far smaller to get right. Their known
// hazard (Ongaro, raft-dev 2015: a leader change with two uncommitted changes can
// elect two leaders) is closed by the rule the leader enforces: it appends a
// change only after it has committed an entry of its own term and only when no
// earlier change is uncommitted.
//
// Why "effective when appended": a node's configuration is then always a function
// of its log (the latest config entry, else the snapshot's), so truncating the log
// reverts the configuration with it, and no node ever acts on a configuration its
// log does not hold.

import { cloneConf, ConfChangeType, type ConfChange, type ConfState, type NodeId } from './types.js';

const MAX_NODE_ID_BYTES = 64;

export function encodeConfChange(cc: ConfChange): Uint8Array {
  const id = Buffer.from(cc.node, 'utf8');
  const out = new Uint8Array(1 + id.length);
  out[0] = cc.type;
  out.set(id, 1);
  return out;
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  const type = data[0];
  if (type === undefined || !(type in ConfChangeType) || data.length < 2 || data.length > 1 + MAX_NODE_ID_BYTES) {
    throw new Error(`malformed conf change entry (${data.length} bytes, type ${type})`);
  }
  return { type, node: Buffer.from(data.subarray(1)).toString('utf8') };
}

/** Why a change cannot be applied to conf, or undefined if it can. */
export function validateConfChange(conf: ConfState, cc: ConfChange): string | undefined {
  const isVoter = conf.voters.includes(cc.node);
  const isLearner = conf.learners.includes(cc.node);
  switch (cc.type) {
    case ConfChangeType.AddLearner:
      if (isVoter || isLearner) return `node ${cc.node} is already a ${isVoter ? 'voter' : 'learner'}`;
      return undefined;
    case ConfChangeType.AddVoter:
      if (isVoter) return `node ${cc.node} is already a voter`;
      return undefined;
    case ConfChangeType.PromoteLearner:
      if (!isLearner) return `node ${cc.node} is not a learner (add it as a learner first)`;
      return undefined;
    case ConfChangeType.RemoveNode:
      if (!isVoter && !isLearner) return `node ${cc.node} is not a member`;
      if (isVoter && conf.voters.length === 1) return `node ${cc.node} is the last voter`;
      return undefined;
  }
}

/** Applies a change; an invalid one leaves conf unchanged (deterministic on every node). */
export function applyConfChange(conf: ConfState, cc: ConfChange): ConfState {
  if (validateConfChange(conf, cc) !== undefined) return cloneConf(conf);
  const without = (ids: NodeId[]) => ids.filter((id) => id !== cc.node);
  switch (cc.type) {
    case ConfChangeType.AddLearner:
      return { voters: [...conf.voters], learners: [...conf.learners, cc.node] };
    case ConfChangeType.AddVoter:
    case ConfChangeType.PromoteLearner:
      return { voters: [...conf.voters, cc.node], learners: without(conf.learners) };
    case ConfChangeType.RemoveNode:
      return { voters: without(conf.voters), learners: without(conf.learners) };
  }
}
