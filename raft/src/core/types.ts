// The vocabulary of the Raft core: log entries, persistent state, snapshots and
// peer messages. Everything here is plain data so it can be encoded with msgpack,
// persisted, and compared byte for byte in the simulation.

export type NodeId = string;

/** No node: used for "no vote" and "no known leader". */
export const NONE: NodeId = '';

export enum EntryType {
  /** Application command. An empty payload is the leader's no-op of a new term. */
  Normal = 0,
  /** A membership change; its data is an encoded ConfChange. */
  ConfChange = 1,
}

export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  data: Uint8Array;
}

/** What must be on disk before the node answers or sends anything that depends on it (I1). */
export interface HardState {
  term: number;
  vote: NodeId;
  commit: number;
}

/** Cluster membership. Learners receive the log but neither vote nor count for commit. */
export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

export enum ConfChangeType {
  AddLearner = 0,
  PromoteLearner = 1,
  RemoveNode = 2,
  /** Add a node straight in as a voter; used only by tests and initial bootstrap tooling. */
  AddVoter = 3,
}

export interface ConfChange {
  type: ConfChangeType;
  node: NodeId;
}

export interface SnapshotMeta {
  index: number;
  term: number;
  conf: ConfState;
}

export interface Snapshot {
  meta: SnapshotMeta;
  data: Uint8Array;
}

export enum MessageType {
  /** Local: the election timer fired. Never sent on the wire. */
  Hup = 0,
  /** Local: the heartbeat timer fired on the leader. Never sent on the wire. */
  Beat = 1,
  /** Local or forwarded from a follower: new entries to append. */
  Prop = 2,
  App = 3,
  AppResp = 4,
  Vote = 5,
  VoteResp = 6,
  PreVote = 7,
  PreVoteResp = 8,
  /** One chunk of a snapshot being streamed to a follower. */
  Snap = 9,
  /** The follower's answer to a snapshot chunk: the offset it expects next. */
  SnapResp = 10,
  Heartbeat = 11,
  HeartbeatResp = 12,
  /** The follower could not be reached (reported by the transport). */
  Unreachable = 13,
  /** Local or forwarded: start a leadership transfer to `from`'s chosen target. */
  TransferLeader = 14,
  /** Sent by a leader to the transfer target: campaign now, skip pre-vote and lease checks. */
  TimeoutNow = 15,
  /** A linearizable read barrier, local or forwarded to the leader. */
  ReadIndex = 16,
  ReadIndexResp = 17,
}

/** Messages that travel between peers; the rest are local inputs to `step`. */
export const WIRE_MESSAGE_TYPES: ReadonlySet<MessageType> = new Set([
  MessageType.Prop,
  MessageType.App,
  MessageType.AppResp,
  MessageType.Vote,
  MessageType.VoteResp,
  MessageType.PreVote,
  MessageType.PreVoteResp,
  MessageType.Snap,
  MessageType.SnapResp,
  MessageType.Heartbeat,
  MessageType.HeartbeatResp,
  MessageType.TransferLeader,
  MessageType.TimeoutNow,
  MessageType.ReadIndex,
  MessageType.ReadIndexResp,
]);

/** One chunk of a streamed snapshot. */
export interface SnapshotChunk {
  meta: SnapshotMeta;
  /** Total size of the snapshot data in bytes. */
  totalBytes: number;
  offset: number;
  data: Uint8Array;
}

export interface Message {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  term: number;
  /** Term of the entry at `index` (App: the entry preceding `entries`; Vote: the candidate's last). */
  logTerm: number;
  index: number;
  entries: Entry[];
  commit: number;
  reject: boolean;
  /** On a rejected AppResp: the follower's hint for the next probe index (fast backtracking). */
  rejectHint: number;
  /** Hint term for fast backtracking (the term at rejectHint on the follower). */
  hintTerm: number;
  snapshot?: SnapshotChunk;
  /** Opaque request context: ReadIndex request ids, heartbeat read contexts. */
  context?: Uint8Array;
  /**
   * On a follower's AppResp, HeartbeatResp and SnapResp: the follower is
   * rejoining after losing its state (Raft's `rejoining` config), so the leader
   * must not count it toward a commit, check-quorum or a ReadIndex quorum.
   */
  rejoining?: true;
}

/** Builds a message with every field set, so encoded messages are uniform. */
export function message(fields: Partial<Message> & Pick<Message, 'type'>): Message {
  return {
    type: fields.type,
    from: fields.from ?? NONE,
    to: fields.to ?? NONE,
    term: fields.term ?? 0,
    logTerm: fields.logTerm ?? 0,
    index: fields.index ?? 0,
    entries: fields.entries ?? [],
    commit: fields.commit ?? 0,
    reject: fields.reject ?? false,
    rejectHint: fields.rejectHint ?? 0,
    hintTerm: fields.hintTerm ?? 0,
    ...(fields.snapshot ? { snapshot: fields.snapshot } : {}),
    ...(fields.context ? { context: fields.context } : {}),
    ...(fields.rejoining ? { rejoining: true as const } : {}),
  };
}

export function isLocalMessage(type: MessageType): boolean {
  return type === MessageType.Hup || type === MessageType.Beat || type === MessageType.Unreachable;
}

/**
 * Messages whose meaning depends on nothing this node has yet to persist: a
 * leader's appends, heartbeats, snapshot chunks and TimeoutNow, and forwarded or
 * answered reads. They may be sent while the Ready's write is in flight (Raft
 * dissertation §10.2.1: a leader writes its log in parallel with replicating it,
 * and counts itself for commit only once the write is durable). Everything else
 * (votes, acknowledgements) must wait for the write.
 */
export function acknowledgesNothing(type: MessageType): boolean {
  return (
    type === MessageType.App ||
    type === MessageType.Heartbeat ||
    type === MessageType.Snap ||
    type === MessageType.TimeoutNow ||
    type === MessageType.ReadIndex ||
    type === MessageType.ReadIndexResp ||
    type === MessageType.TransferLeader
  );
}

export function isResponseMessage(type: MessageType): boolean {
  return (
    type === MessageType.AppResp ||
    type === MessageType.VoteResp ||
    type === MessageType.PreVoteResp ||
    type === MessageType.HeartbeatResp ||
    type === MessageType.SnapResp ||
    type === MessageType.ReadIndexResp
  );
}

export function emptyHardState(): HardState {
  return { term: 0, vote: NONE, commit: 0 };
}

export function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

export function cloneConf(c: ConfState): ConfState {
  return { voters: [...c.voters], learners: [...c.learners] };
}

export enum StateRole {
  Follower = 'follower',
  PreCandidate = 'pre-candidate',
  Candidate = 'candidate',
  Leader = 'leader',
}

/** A read barrier that has been confirmed by a quorum: safe to serve once applied >= index. */
export interface ReadState {
  index: number;
  context: Uint8Array;
}

/** Volatile state the application may want to observe; never persisted. */
export interface SoftState {
  leader: NodeId;
  role: StateRole;
}
