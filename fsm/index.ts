// The public surface of fsm/. Import from here.
export * from './lsn.js';
export * from './errors.js';
export * from './state.js';
export { COMMAND_VERSION, COMMAND_TYPES, LEASE_DURATION_MS, SCRAM_ITERATIONS, TENANT_LIMITS, validateCommand } from './commands.js';
export type * from './commands.js';
export { apply, applyAll, type ApplyOk, type ApplyOutcome, type ApplyResult } from './apply.js';
export { checkState } from './invariants.js';
export { SNAPSHOT_FORMAT_VERSION, canonicalBytes, decodeCommand, decodeSnapshot, encodeCommand, encodeSnapshot, toPlain, type PlainState } from './codec.js';
export { ClusterStateMachine, type AppliedEvent, type ClusterStateMachineOptions } from './machine.js';
