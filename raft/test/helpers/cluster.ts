// A tiny deterministic network of RawNodes for the Raft unit tests.
//
// Every node has a MemoryStorage that plays the disk: crash() throws away the
// RawNode and keeps only the storage, restart() builds the node again from it. The
// Ready loop is the one the library documents: persist (storage.applyUpdate), then
// hand the messages to the network, then apply, then advance().
//
// The network is a FIFO queue. stabilize() delivers until nothing is left to say;
// isolate/drop/dropIf cut links (checked when a message is delivered, so cutting a
// link also loses what is already in flight on it); hold() keeps matching messages
// in the queue so a test can take() and deliver() them by hand, in any order.
//
// Nothing here is random: random() returns a fixed value per node, so each node's
// election timeout is electionTick + floor(value * electionTick), distinct per node
// by default (node i of the cluster times out after 11, 12, ... ticks with
// electionTick 10), and every run of a test is identical.

import { DEFAULT_CONFIG, type Raft, type RaftConfig } from '../../src/core/raft.js';
import { RawNode, type Ready } from '../../src/core/raw-node.js';
import {
  EntryType,
  NONE,
  StateRole,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type ReadState,
  type Snapshot,
} from '../../src/core/types.js';
import { MemoryStorage } from '../../src/storage/memory-storage.js';

export type NodeConfig = Partial<Omit<RaftConfig, 'id' | 'random'>>;
export type MessagePredicate = (m: Message) => boolean;

/** The defaults of the tests: the library defaults with small, readable timers. */
export const TEST_CONFIG: NodeConfig = { electionTick: 10, heartbeatTick: 1 };

export interface ClusterOptions {
  /** Number of initial voters, named '1'..'n' (default 3). Ignored when voters is set. */
  size?: number;
  voters?: NodeId[];
  /** Initial learners (bootstrapped with the same membership). */
  learners?: NodeId[];
  /** Applied to every node on top of TEST_CONFIG. */
  config?: NodeConfig;
  /** Per-node overrides on top of config. */
  nodeConfig?: Record<NodeId, NodeConfig>;
  /** What random() returns on a node (default: distinct per node, see above). */
  random?: Record<NodeId, number>;
}

export function bytes(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

export function text(data: Uint8Array): string {
  return new TextDecoder().decode(data);
}

/** Default random value of the i-th node: 0.15, 0.25, ... 0.95 (timeouts 11..19 with electionTick 10). */
function defaultRandom(i: number): number {
  return (i % 9) / 10 + 0.15;
}

/** Called for every Ready after it was persisted and before its messages are sent. */
export type ReadyObserver = (node: TestNode, rd: Ready) => void;

export class TestNode {
  raw: RawNode | undefined;
  /** Every entry the state machine applied, across restarts (a restart re-applies from the snapshot). */
  readonly applied: Entry[] = [];
  readonly readStates: ReadState[] = [];
  readonly restoredSnapshots: Snapshot[] = [];
  /** Every Ready this node produced (for tests that inspect their order). */
  readonly readies: Ready[] = [];

  constructor(
    readonly id: NodeId,
    readonly storage: MemoryStorage,
    public config: NodeConfig,
    public randomValue: number,
  ) {}

  get alive(): boolean {
    return this.raw !== undefined;
  }

  start(): void {
    const cfg: RaftConfig = { ...DEFAULT_CONFIG, ...TEST_CONFIG, ...this.config, id: this.id, random: () => this.randomValue };
    this.raw = new RawNode(cfg, this.storage);
  }

  /** Entries in storage (the "disk"), from the first after the snapshot to the last. */
  storedEntries(): Entry[] {
    const first = this.storage.firstIndex();
    const last = this.storage.lastIndex();
    return first > last ? [] : this.storage.entries(first, last + 1, Number.MAX_SAFE_INTEGER);
  }

  /** The applied entries at index, in the order they were applied (more than one after restarts). */
  appliedAt(index: number): Entry[] {
    return this.applied.filter((e) => e.index === index);
  }
}

export class Cluster {
  readonly nodes = new Map<NodeId, TestNode>();
  /** Messages in flight, in send order. */
  queue: Message[] = [];
  /** Every message a node sent, in order. */
  readonly sent: Message[] = [];
  /** Every message stepped into a node, in order. */
  readonly delivered: Message[] = [];
  /** Every message lost to a cut link, a crashed or unknown node. */
  readonly dropped: Message[] = [];
  readonly observers: ReadyObserver[] = [];

  private readonly isolated = new Set<NodeId>();
  private dropRules: { pred: MessagePredicate; once: boolean }[] = [];
  private holdRules: MessagePredicate[] = [];
  private readonly baseConfig: NodeConfig;
  private readonly nodeConfig: Record<NodeId, NodeConfig>;
  /** The membership every node was bootstrapped with. */
  private readonly bootstrapConf: ConfState;

  constructor(opts: ClusterOptions = {}) {
    const voters = opts.voters ?? Array.from({ length: opts.size ?? 3 }, (_, i) => String(i + 1));
    const learners = opts.learners ?? [];
    const conf: ConfState = { voters, learners };
    this.bootstrapConf = conf;
    this.baseConfig = opts.config ?? {};
    this.nodeConfig = opts.nodeConfig ?? {};
    for (const id of [...voters, ...learners]) {
      const node = new TestNode(
        id,
        new MemoryStorage(conf),
        { ...this.baseConfig, ...this.nodeConfig[id] },
        opts.random?.[id] ?? defaultRandom(this.nodes.size),
      );
      this.nodes.set(id, node);
      node.start();
    }
  }

  /** A node that is not yet a member: empty storage, it learns everything from a leader. */
  addNode(id: NodeId, opts: { config?: NodeConfig; random?: number } = {}): TestNode {
    if (this.nodes.has(id)) throw new Error(`node ${id} exists`);
    const node = new TestNode(
      id,
      new MemoryStorage(),
      { ...this.baseConfig, ...this.nodeConfig[id], ...opts.config },
      opts.random ?? defaultRandom(this.nodes.size),
    );
    this.nodes.set(id, node);
    node.start();
    return node;
  }

  // ------------------------------------------------------------------ access

  ids(): NodeId[] {
    return [...this.nodes.keys()];
  }

  node(id: NodeId): TestNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  raw(id: NodeId): RawNode {
    const raw = this.node(id).raw;
    if (!raw) throw new Error(`node ${id} is crashed`);
    return raw;
  }

  raft(id: NodeId): Raft {
    return this.raw(id).raft;
  }

  alive(): TestNode[] {
    return [...this.nodes.values()].filter((n) => n.alive);
  }

  /** The live leaders, highest term first. */
  leaders(): NodeId[] {
    return this.alive()
      .filter((n) => n.raw!.raft.role === StateRole.Leader)
      .sort((a, b) => b.raw!.raft.term - a.raw!.raft.term)
      .map((n) => n.id);
  }

  /** The leader of the highest term, if any node is leader. */
  leader(): NodeId | undefined {
    return this.leaders()[0];
  }

  // ------------------------------------------------------------------ Ready loop

  /** Runs the Ready loop of one node until it has nothing more to say. Returns the messages it sent. */
  process(id: NodeId): Message[] {
    const node = this.node(id);
    const raw = node.raw;
    if (!raw) return [];
    const out: Message[] = [];
    for (let rounds = 0; raw.hasReady(); rounds++) {
      if (rounds > 10_000) throw new Error(`node ${id}: Ready loop did not settle`);
      const rd = raw.ready();
      node.readies.push(rd);
      // 1. Persist: entries, hard state and snapshot in one atomic write.
      node.storage.applyUpdate({
        entries: rd.entries,
        ...(rd.hardState ? { hardState: rd.hardState } : {}),
        ...(rd.snapshot ? { snapshot: rd.snapshot } : {}),
      });
      for (const obs of this.observers) obs(node, rd);
      // 2. Send.
      for (const m of rd.messages) {
        this.sent.push(m);
        this.queue.push(m);
        out.push(m);
      }
      // 3. Apply.
      if (rd.snapshot) node.restoredSnapshots.push(rd.snapshot);
      node.applied.push(...rd.committedEntries);
      node.readStates.push(...rd.readStates);
      raw.advance(rd);
    }
    return out;
  }

  processAll(): void {
    for (const id of this.nodes.keys()) this.process(id);
  }

  // ------------------------------------------------------------------ network

  /** Cuts every link to and from id until recover(). */
  isolate(id: NodeId): void {
    this.isolated.add(id);
  }

  /** Heals the network: no isolated node, no drop or hold rule. */
  recover(): void {
    this.isolated.clear();
    this.dropRules = [];
    this.holdRules = [];
  }

  /** Loses every message from -> to until recover(). */
  drop(from: NodeId, to: NodeId): () => void {
    return this.dropIf((m) => m.from === from && m.to === to);
  }

  /** Loses every message matching pred; returns a function that removes the rule. */
  dropIf(pred: MessagePredicate): () => void {
    const rule = { pred, once: false };
    this.dropRules.push(rule);
    return () => {
      this.dropRules = this.dropRules.filter((r) => r !== rule);
    };
  }

  /** Loses the next message matching pred, once. */
  dropOnce(pred: MessagePredicate): void {
    this.dropRules.push({ pred, once: true });
  }

  /** Keeps matching messages in the queue (stabilize skips them) for manual delivery. */
  hold(pred: MessagePredicate): () => void {
    this.holdRules.push(pred);
    return () => {
      this.holdRules = this.holdRules.filter((r) => r !== pred);
    };
  }

  private isHeld(m: Message): boolean {
    return this.holdRules.some((r) => r(m));
  }

  /** Whether the network loses m now (consumes a matching once-rule). */
  private lost(m: Message): boolean {
    if (this.isolated.has(m.from) || this.isolated.has(m.to)) return true;
    const i = this.dropRules.findIndex((r) => r.pred(m));
    if (i < 0) return false;
    if (this.dropRules[i]!.once) this.dropRules.splice(i, 1);
    return true;
  }

  /** Removes and returns the queued messages matching pred. */
  take(pred: MessagePredicate = () => true): Message[] {
    const taken = this.queue.filter(pred);
    this.queue = this.queue.filter((m) => !pred(m));
    return taken;
  }

  /** Queued messages matching pred, left in the queue. */
  peek(pred: MessagePredicate = () => true): Message[] {
    return this.queue.filter(pred);
  }

  /** Steps messages into their targets now, bypassing the network rules (manual delivery). */
  deliver(ms: Message | Message[]): void {
    for (const m of Array.isArray(ms) ? ms : [ms]) {
      const target = this.nodes.get(m.to);
      if (!target?.raw) {
        this.dropped.push(m);
        continue;
      }
      this.delivered.push(m);
      target.raw.step(m);
    }
  }

  /** take(pred) then deliver() them. */
  deliverWhere(pred: MessagePredicate): Message[] {
    const ms = this.take(pred);
    this.deliver(ms);
    return ms;
  }

  /**
   * Runs every node's Ready loop and delivers every queued message that is not held,
   * until the cluster is quiet. Returns how many messages were delivered.
   */
  stabilize(maxRounds = 10_000): number {
    let count = 0;
    for (let round = 0; ; round++) {
      if (round > maxRounds) throw new Error('stabilize: the cluster did not go quiet');
      this.processAll();
      const ready = this.queue.filter((m) => !this.isHeld(m));
      if (ready.length === 0) return count;
      this.queue = this.queue.filter((m) => this.isHeld(m));
      for (const m of ready) {
        if (this.lost(m) || !this.nodes.get(m.to)?.alive) {
          this.dropped.push(m);
          continue;
        }
        this.deliver(m);
        count++;
      }
    }
  }

  // ------------------------------------------------------------------ time

  /** Ticks one node n times, without processing. */
  tick(id: NodeId, n = 1): void {
    for (let i = 0; i < n; i++) this.raw(id).tick();
  }

  /** n rounds of: tick every live node once, then stabilize. */
  tickAll(n = 1): void {
    for (let i = 0; i < n; i++) {
      for (const node of this.alive()) node.raw!.tick();
      this.stabilize();
    }
  }

  /** Ticks rounds (as tickAll) until cond() holds; returns the rounds taken. Throws after max. */
  tickUntil(cond: () => boolean, max = 200): number {
    for (let i = 0; i <= max; i++) {
      if (cond()) return i;
      this.tickAll(1);
    }
    throw new Error(`tickUntil: condition not met within ${max} rounds`);
  }

  // ------------------------------------------------------------------ faults

  /** Loses everything but the storage (and the messages in flight to the node). */
  crash(id: NodeId): void {
    const node = this.node(id);
    node.raw = undefined;
    this.dropped.push(...this.take((m) => m.to === id));
  }

  /** Builds the node again from its storage, optionally with a changed configuration. */
  restart(id: NodeId, config?: NodeConfig): void {
    const node = this.node(id);
    if (node.alive) throw new Error(`node ${id} is running`);
    if (config) node.config = { ...node.config, ...config };
    node.start();
  }

  /**
   * The node's disk is lost: it comes back with a store freshly bootstrapped with
   * the initial membership, as a daemon does that starts on an empty data
   * directory. `config` is applied on top of its configuration (rejoining: true).
   */
  wipe(id: NodeId, config: NodeConfig = {}): TestNode {
    const old = this.node(id);
    if (old.alive) this.crash(id);
    const node = new TestNode(id, new MemoryStorage(this.bootstrapConf), { ...old.config, ...config }, old.randomValue);
    this.nodes.set(id, node);
    node.start();
    return node;
  }

  /** Overwrites the persisted hard state of a crashed node (for "its term rose meanwhile" scenarios). */
  setHardState(id: NodeId, hs: HardState): void {
    const node = this.node(id);
    if (node.alive) throw new Error(`node ${id} must be crashed to edit its storage`);
    node.storage.applyUpdate({ entries: [], hardState: hs });
  }

  // ------------------------------------------------------------------ elections and proposals

  /**
   * Lets the leader lease of every live follower other than `except` run out: ticks
   * each one until an election timeout has passed since it last heard from a leader
   * (without reaching its randomized timeout), so that it answers (pre-)votes again.
   */
  expireLeases(except: NodeId): void {
    for (const node of this.alive()) {
      if (node.id === except) continue;
      const r = node.raw!.raft;
      // Only a follower that knows a leader is in lease (candidates and leaderless followers vote).
      if (r.role !== StateRole.Follower || r.lead === NONE) continue;
      const et = r.cfg.electionTick;
      while (r.electionElapsedTicks() < et) {
        const role: StateRole = r.role;
        r.tick();
        if (r.role !== role) throw new Error(`expireLeases: node ${node.id} campaigned; give it a larger random value`);
      }
    }
  }

  /** Starts an election on id (pre-vote first if configured) and stabilizes. */
  campaign(id: NodeId): void {
    this.raw(id).campaign();
    this.stabilize();
  }

  /** Elects id: expires the other nodes' leases, campaigns, stabilizes; throws if id did not win. */
  elect(id: NodeId): void {
    this.expireLeases(id);
    this.campaign(id);
    const r = this.raft(id);
    if (r.role !== StateRole.Leader) throw new Error(`elect(${id}): ended as ${r.role} in term ${r.term}`);
  }

  /** Proposes one entry per string on id (must be leader); returns the last index. Does not stabilize. */
  propose(id: NodeId, ...datas: string[]): number {
    return this.raw(id).propose(datas.map(bytes));
  }

  proposeConfChange(id: NodeId, cc: ConfChange): number {
    return this.raw(id).proposeConfChange(cc);
  }

  // ------------------------------------------------------------------ inspection

  /** Normal, non-empty entries applied on id, as strings, without re-applications. */
  appliedData(id: NodeId): string[] {
    const seen = new Set<number>();
    const out: string[] = [];
    for (const e of this.node(id).applied) {
      if (seen.has(e.index)) continue;
      seen.add(e.index);
      if (e.type === EntryType.Normal && e.data.byteLength > 0) out.push(text(e.data));
    }
    return out;
  }

  /** "index:term" of every entry in id's log (unstable tail included), from firstIndex. */
  logTerms(id: NodeId): string[] {
    const log = this.raft(id).log;
    const out: string[] = [];
    for (let i = log.firstIndex(); i <= log.lastIndex(); i++) out.push(`${i}:${log.term(i)}`);
    return out;
  }

  /** Messages sent since mark (an index into sent) that match pred. */
  sentSince(mark: number, pred: MessagePredicate = () => true): Message[] {
    return this.sent.slice(mark).filter(pred);
  }
}
