// ClusterStateMachine: raft's StateMachine seam over the pure FSM.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeCommand, encodeSnapshot } from '../codec.js';
import { ClusterStateMachine, type AppliedEvent } from '../machine.js';
import { initialState, type ClusterState } from '../state.js';
import { C, clusterOf3, hex } from './helpers.js';

test('apply decodes, applies and reports each entry; garbage is a rejected result, not an exception', () => {
  const events: AppliedEvent[] = [];
  const m = new ClusterStateMachine({ onApplied: (e) => events.push(e) });
  assert.deepEqual(m.apply(encodeCommand(C.memberAdd('n1', 1)), 1, 1), { ok: true, type: 'member.add', generation: 0 });
  const r = m.apply(new Uint8Array([1, 2, 3]), 2, 1);
  assert.equal(r.ok, false);
  assert.equal(events.length, 2);
  assert.equal(events[0]!.command?.type, 'member.add');
  assert.equal(events[0]!.state, m.state);
  assert.equal(events[1]!.command, null);
  assert.deepEqual([events[1]!.index, events[1]!.term], [2, 1]);
  assert.ok(m.state.members.has('n1'));
});

test('restore replaces the state (empty data = initial state) and notifies', () => {
  const restored: ClusterState[] = [];
  const m = new ClusterStateMachine({ onRestored: (s) => restored.push(s) });
  m.restore(encodeSnapshot(clusterOf3()));
  assert.equal(m.state.postgres.primary, 'n1');
  assert.equal(hex(m.snapshot()), hex(encodeSnapshot(clusterOf3())));
  m.restore(new Uint8Array());
  assert.equal(hex(m.snapshot()), hex(encodeSnapshot(initialState())));
  assert.equal(restored.length, 2);
});
