// The public surface of raft/. Code outside raft/ imports from here and nowhere
// else (test/structure.test.ts checks it): the node, its storage and transport,
// and the few wire types a transport benchmark needs. raft/'s own simulation,
// examples and tests may reach inside.
export {
  RaftNode,
  NotLeaderError,
  ProposalLostError,
  RequestTimeoutError,
  NodeStoppedError,
  BusyError,
  type StateMachine,
  type RaftNodeOptions,
  type ProposeResult,
  type PeerProgress,
  type NodeStatus,
  type LeaderChange,
} from './src/node/raft-node.js';
export { LevelStorage, type LevelStorageOptions } from './src/storage/level-storage.js';
export { MemoryStorage } from './src/storage/memory-storage.js';
export type { Storage } from './src/storage/storage.js';
export { TcpTransport, type TcpTransportOptions, type Logger, type LogLine } from './src/transport/tcp-transport.js';
export { emptyStats, type PeerAddress, type Transport, type TransportStats } from './src/transport/transport.js';
export { isWildcardAddress, sourceAddressFor, sourceBinding, type SourceBinding } from './src/transport/source-address.js';
export { FrameCodec } from './src/transport/frame.js';
export { EntryType, MessageType, StateRole, message, type Entry, type Message, type NodeId } from './src/core/types.js';
// The invariant check raft uses; InvariantError is what a broken invariant throws, here and in callers that use it.
export { assert, InvariantError } from './src/core/assert.js';
