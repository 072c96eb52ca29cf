// ClusterStateMachine: the replicated state machine over the pure FSM.
//
// It has the shape of raft's StateMachine (apply, snapshot, restore) without
// importing it: fsm/ depends on nothing but itself. The daemon's wiring hands it to
// RaftNode, and the compiler checks the fit there (src/daemon/daemon.ts).
//
// apply(bytes) = decode -> apply -> result. Undecodable or invalid entries are
// rejected identically on every replica (a result, not an exception). The one
// exception on input is a command of a newer version than this build knows: a
// replica that rejected it while upgraded replicas applied it would diverge
// silently, so it throws UnsupportedVersionError and raft stops the node.

import { apply, type ApplyResult } from './apply.js';
import { decodeCommand, decodeSnapshot, encodeSnapshot } from './codec.js';
import type { Command } from './commands.js';
import { UnsupportedVersionError, isRejection } from './errors.js';
import { initialState, type ClusterState } from './state.js';

export interface AppliedEvent {
  readonly index: number;
  readonly term: number;
  /** Null when the entry did not decode to a valid command. */
  readonly command: Command | null;
  readonly result: ApplyResult;
  readonly state: ClusterState;
}

export interface ClusterStateMachineOptions {
  /** Starting state (default: the initial state). */
  initial?: ClusterState;
  /**
   * Called after every applied entry, on the raft loop: keep it short, never throw,
   * never propose from inside it. Not part of the replicated state.
   */
  onApplied?: (e: AppliedEvent) => void;
  /** Called after restore() replaced the whole state (e.g. a snapshot from the leader). */
  onRestored?: (state: ClusterState) => void;
}

export class ClusterStateMachine {
  private current: ClusterState;
  private readonly onApplied: ((e: AppliedEvent) => void) | undefined;
  private readonly onRestored: ((state: ClusterState) => void) | undefined;

  constructor(opts: ClusterStateMachineOptions = {}) {
    this.current = opts.initial ?? initialState();
    this.onApplied = opts.onApplied;
    this.onRestored = opts.onRestored;
  }

  /** The current state (immutable; replaced by every successful apply). */
  get state(): ClusterState {
    return this.current;
  }

  apply(data: Uint8Array, index: number, term: number): ApplyResult {
    const decoded = decodeCommand(data);
    let command: Command | null = null;
    let result: ApplyResult;
    if (isRejection(decoded)) {
      if (decoded.error.code === 'unsupported_version') {
        throw new UnsupportedVersionError(`log entry ${index} (term ${term}): ${decoded.error.message}`);
      }
      result = decoded;
    } else {
      command = decoded;
      const out = apply(this.current, decoded);
      this.current = out.state;
      result = out.result;
    }
    this.onApplied?.({ index, term, command, result, state: this.current });
    return result;
  }

  snapshot(): Uint8Array {
    return encodeSnapshot(this.current);
  }

  restore(data: Uint8Array): void {
    // Decode fully before replacing anything: a bad snapshot leaves the state as it was.
    this.current = decodeSnapshot(data);
    this.onRestored?.(this.current);
  }
}
