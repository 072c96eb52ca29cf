// One seeded simulation run: a cluster of SimNodes on a SimNetwork in virtual time,
// clients issuing reads (ReadIndex) and writes (proposals) against a KV state
// machine, and a fault schedule (partitions, message loss and reordering, crashes,
// restarts, leadership transfers, membership changes, log compaction). Safety is
// checked after every step; a final healed phase demands liveness; the client
// history is checked for linearizability.

import { ProposalDroppedError } from '../src/core/raft.js';
import { ConfChangeType, NONE, type Entry, type Message, type NodeId } from '../src/core/types.js';
import { InvariantViolation, SafetyChecker } from './invariants.js';
import { encodeKvCommand, type KvResult } from './kv-fsm.js';
import { checkKvHistory, type KvInput, type KvOperation, type KvOutput } from './kv-model.js';
import { RELIABLE, SimNetwork, type NetworkFaults } from './network.js';
import { Prng } from './prng.js';
import { SimNode, type SimNodeOptions } from './sim-node.js';

export type FaultKind =
  | 'heal'
  | 'partition'
  | 'oneway'
  | 'isolate-leader'
  | 'crash'
  | 'restart'
  | 'bounce'
  | 'crash-mid-write'
  | 'transfer'
  | 'membership'
  | 'net';

export interface SimOptions {
  seed: number;
  voters: number;
  /** Fresh nodes that membership changes may add. */
  spares: number;
  clients: number;
  keys: number;
  readTimeoutMs: number;
  writeTimeoutMs: number;
  chaosMs: number;
  /** Bound on the healed phase: a leader and every operation resolved by then. */
  healBoundMs: number;
  tickMs: number;
  faults: NetworkFaults;
  /** Mean time between fault actions during chaos. */
  faultEveryMs: number;
  /** Relative likelihood of each fault action (0 disables it). */
  faultWeights: Record<FaultKind, number>;
  node: SimNodeOptions;
  /** Stop at the first violation of any kind (default) or collect. */
  checkLinearizability: boolean;
  /** Called with a one-line description of each fault (verbose mode). */
  trace?: (line: string) => void;
}

export const DEFAULT_SIM_OPTIONS: Omit<SimOptions, 'seed'> = {
  voters: 3,
  spares: 2,
  clients: 6,
  keys: 3,
  readTimeoutMs: 100,
  writeTimeoutMs: 1_000,
  chaosMs: 6_000,
  healBoundMs: 30_000,
  tickMs: 10,
  faults: {
    dropRate: 0.05,
    duplicateRate: 0.02,
    delayMinMs: 1,
    delayMaxMs: 8,
    longDelayRate: 0.02,
    longDelayMaxMs: 200,
  },
  faultEveryMs: 250,
  faultWeights: {
    heal: 3,
    partition: 2,
    oneway: 1,
    'isolate-leader': 1,
    crash: 1,
    restart: 2,
    bounce: 1,
    'crash-mid-write': 1,
    transfer: 1,
    membership: 1,
    net: 1,
  },
  node: {
    raft: { electionTick: 10, heartbeatTick: 1, snapshotChunkBytes: 64, maxSizePerMsgBytes: 512, maxInflightMsgs: 8 },
    snapshotEveryEntries: 25,
    compactTrailingEntries: 5,
  },
  checkLinearizability: true,
};

export interface SimResult {
  seed: number;
  ok: boolean;
  failure?: string;
  virtualMs: number;
  ops: number;
  okOps: number;
  infoOps: number;
  committed: number;
  faults: number;
  messages: number;
}

type EventFn = () => void;

interface QueuedEvent {
  atMs: number;
  seq: number;
  fn: EventFn;
}

/** A binary min-heap of events by (time, insertion order): deterministic ordering. */
class EventQueue {
  private heap: QueuedEvent[] = [];
  private seq = 0;

  push(atMs: number, fn: EventFn): void {
    const ev = { atMs, seq: this.seq++, fn };
    const h = this.heap;
    h.push(ev);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (EventQueue.less(h[p]!, h[i]!)) break;
      [h[p], h[i]] = [h[i]!, h[p]!];
      i = p;
    }
  }

  pop(): QueuedEvent | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && EventQueue.less(h[l]!, h[m]!)) m = l;
        if (r < h.length && EventQueue.less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i]!, h[m]!];
        i = m;
      }
    }
    return top;
  }

  private static less(a: QueuedEvent, b: QueuedEvent): boolean {
    return a.atMs < b.atMs || (a.atMs === b.atMs && a.seq < b.seq);
  }
}

interface PendingWrite {
  opIndex: number;
  term: number;
}

export class Simulation {
  readonly rng: Prng;
  private readonly netRng: Prng;
  private readonly faultRng: Prng;
  private readonly clientRng: Prng;
  readonly net: SimNetwork;
  readonly nodes: SimNode[] = [];
  private readonly byId = new Map<NodeId, SimNode>();
  private readonly events = new EventQueue();
  private readonly safety: SafetyChecker;
  nowMs = 0;
  /** Client history, in the checker's format. */
  readonly history: KvOperation[] = [];
  /** Ops that definitely did not take effect (a truncated write, an unanswered read): left out of the check. */
  readonly discarded = new Set<number>();
  /** Per node: log index -> pending write waiting to be applied there. */
  private readonly pendingWrites = new Map<NodeId, Map<number, PendingWrite>>();
  /** Per node: read context hex -> op index. */
  private readonly pendingReads = new Map<NodeId, Map<string, number>>();
  private readonly clientBusy: boolean[] = [];
  private clientsStopped = false;
  private readCounter = 0;
  private valueCounter = 0;
  faults = 0;

  constructor(readonly opts: SimOptions) {
    this.rng = new Prng(opts.seed);
    this.netRng = this.rng.fork();
    this.faultRng = this.rng.fork();
    this.clientRng = this.rng.fork();
    this.net = new SimNetwork(this.netRng);
    this.safety = new SafetyChecker(() => this.nodes);
    // Bootstrap: the initial voters' storage starts with the initial configuration;
    // spares start empty and learn everything from the leader once added.
    const initialVoters = Array.from({ length: opts.voters }, (_, i) => `n${i + 1}`);
    for (let i = 1; i <= opts.voters + opts.spares; i++) {
      const id = `n${i}`;
      const initialConf = i <= opts.voters ? { voters: initialVoters, learners: [] } : undefined;
      const node = new SimNode(id, initialConf, opts.node, this.rng.fork(), {
        onApply: (n, e, r) => this.onApply(n, e, r),
        onPersist: (n, from) => {
          this.safety.checkLogMatching(n, from);
          this.failTruncatedWrites(n, from);
        },
        onBecameLeader: (n, term) => this.safety.onBecameLeader(n, term),
        onRestoreSnapshot: (n) => this.failPendingUpTo(n),
        send: (ms) => this.send(ms),
        onReadState: (n, ctx) => this.onReadState(n, ctx),
        onCrashedMidWrite: (n) => {
          this.crash(n);
          this.trace(`${n.id} crashed in the middle of a write`);
          this.events.push(this.nowMs + this.faultRng.int(0, 30), () => {
            if (!n.raw) n.start();
          });
        },
      });
      this.nodes.push(node);
      this.byId.set(id, node);
      this.pendingWrites.set(id, new Map());
      this.pendingReads.set(id, new Map());
    }
    for (const n of this.nodes) {
      n.start();
      this.scheduleTick(n, this.rng.int(0, opts.tickMs - 1));
    }
  }

  private trace(line: string): void {
    this.opts.trace?.(`${String(this.nowMs).padStart(6)}ms ${line}`);
  }

  // ------------------------------------------------------------ plumbing

  private scheduleTick(n: SimNode, delayMs: number): void {
    this.events.push(this.nowMs + delayMs, () => {
      if (n.raw) {
        n.raw.tick();
        n.process();
      }
      this.scheduleTick(n, this.opts.tickMs);
    });
  }

  private send(messages: Message[]): void {
    for (const m of messages) {
      for (const d of this.net.route(this.nowMs, m)) {
        this.events.push(d.atMs, () => this.deliver(d.message));
      }
    }
  }

  private deliver(m: Message): void {
    const n = this.byId.get(m.to);
    if (!n?.raw || this.net.isCut(m.from, m.to)) return;
    n.raw.step(m);
    n.process();
  }

  // ------------------------------------------------------------ clients

  private startClients(): void {
    for (let c = 0; c < this.opts.clients; c++) {
      this.clientBusy[c] = false;
      this.events.push(this.nowMs + this.clientRng.int(0, 20), () => this.clientStep(c));
    }
  }

  private pickNodeFor(): SimNode | undefined {
    const live = this.nodes.filter((n) => n.raw);
    if (live.length === 0) return undefined;
    // Mostly go where a node believes the leader is, as a real client library would.
    const any = this.clientRng.pick(live);
    const leader = any.raw!.raft.lead;
    if (leader !== NONE && this.clientRng.chance(0.8)) {
      const l = this.byId.get(leader);
      if (l?.raw) return l;
    }
    return any;
  }

  private clientStep(c: number): void {
    if (this.clientsStopped || this.clientBusy[c]) return;
    const node = this.pickNodeFor();
    if (!node?.raw) {
      this.events.push(this.nowMs + 10, () => this.clientStep(c));
      return;
    }
    const key = `k${this.clientRng.int(0, this.opts.keys - 1)}`;
    const r = this.clientRng.next();
    let input: KvInput;
    if (r < 0.4) input = { op: 'get', key };
    else if (r < 0.8) input = { op: 'put', key, value: `v${++this.valueCounter}` };
    else {
      const cur = node.fsm.get(key) ?? 'none';
      input = { op: 'cas', key, from: cur, to: `v${++this.valueCounter}` };
    }
    const opIndex = this.history.length;
    const op: KvOperation = { client: c, input, call: this.nowMs, ret: Infinity, output: { unknown: true } };
    if (input.op === 'get') {
      if (node.raw.raft.lead === NONE) {
        // No leader known: a read could not be served; fail fast and retry.
        this.events.push(this.nowMs + this.clientRng.int(2, 15), () => this.clientStep(c));
        return;
      }
      const ctx = new Uint8Array(8);
      new DataView(ctx.buffer).setFloat64(0, ++this.readCounter);
      this.history.push(op);
      this.clientBusy[c] = true;
      this.pendingReads.get(node.id)!.set(Buffer.from(ctx).toString('hex'), opIndex);
      node.raw.readIndex(ctx);
      node.process();
      // A read can be dropped silently (leader change): give up after a while.
      this.events.push(this.nowMs + this.opts.readTimeoutMs, () => {
        const reads = this.pendingReads.get(node.id)!;
        const key = Buffer.from(ctx).toString('hex');
        if (reads.has(key)) {
          reads.delete(key);
          this.completeOp(c, opIndex, undefined);
        }
      });
      return;
    }
    const cmd = input.op === 'put' ? { op: 'put' as const, key, value: input.value } : { op: 'cas' as const, key, from: input.from, to: input.to };
    let index: number;
    try {
      index = node.raw.propose([encodeKvCommand(cmd)]);
    } catch (e) {
      if (!(e instanceof ProposalDroppedError)) throw e;
      // Definitely not appended: not part of the history. Retry soon.
      this.events.push(this.nowMs + this.clientRng.int(2, 15), () => this.clientStep(c));
      return;
    }
    this.history.push(op);
    this.clientBusy[c] = true;
    const pw = this.pendingWrites.get(node.id)!;
    pw.set(index, { opIndex, term: node.raw.raft.term });
    node.process();
    // A client gives up on a slow write: its fate is unknown (an info op).
    this.events.push(this.nowMs + this.opts.writeTimeoutMs, () => {
      if (pw.get(index)?.opIndex === opIndex) {
        pw.delete(index);
        this.completeOp(c, opIndex, undefined);
      }
    });
  }

  /** Records the outcome (undefined output: unknown, left as an info op) and lets the client go on. */
  private completeOp(c: number, opIndex: number, output: KvOutput | undefined | 'failed'): void {
    const op = this.history[opIndex]!;
    if (output === 'failed') {
      this.discarded.add(opIndex); // the write definitely did not happen
    } else if (output !== undefined) {
      op.ret = this.nowMs;
      op.output = output;
    } else if (op.input.op === 'get') {
      this.discarded.add(opIndex); // an unanswered read constrains nothing
    }
    this.clientBusy[c] = false;
    this.events.push(this.nowMs + this.clientRng.int(0, 10), () => this.clientStep(c));
  }

  private onApply(n: SimNode, e: Entry, result: KvResult | undefined): void {
    this.safety.onApply(n, e);
    const pw = this.pendingWrites.get(n.id)!;
    const w = pw.get(e.index);
    if (!w) return;
    pw.delete(e.index);
    const op = this.history[w.opIndex]!;
    if (e.term !== w.term) {
      // Another leader's entry took the slot: ours was truncated and can never commit.
      this.completeOp(op.client, w.opIndex, 'failed');
      return;
    }
    if (op.input.op === 'put') this.completeOp(op.client, w.opIndex, {});
    else this.completeOp(op.client, w.opIndex, { ok: result?.ok ?? false });
  }

  private onReadState(n: SimNode, ctx: Uint8Array): void {
    const reads = this.pendingReads.get(n.id)!;
    const key = Buffer.from(ctx).toString('hex');
    const opIndex = reads.get(key);
    if (opIndex === undefined) return;
    reads.delete(key);
    const op = this.history[opIndex]!;
    const value = n.fsm.get((op.input as { key: string }).key);
    this.completeOp(op.client, opIndex, value === undefined ? {} : { value });
  }

  /** The log changed from `from` on: a pending write whose entry was replaced can never commit. */
  private failTruncatedWrites(n: SimNode, from: number): void {
    const pw = this.pendingWrites.get(n.id)!;
    for (const [index, w] of pw) {
      if (index < from) continue;
      if (n.termAt(index) !== w.term) {
        pw.delete(index);
        this.completeOp(this.history[w.opIndex]!.client, w.opIndex, 'failed');
      }
    }
  }

  /** A restored snapshot swallowed entries: our pending writes there have unknown fate. */
  private failPendingUpTo(n: SimNode): void {
    const pw = this.pendingWrites.get(n.id)!;
    for (const [index, w] of pw) {
      if (index <= n.applied) {
        pw.delete(index);
        this.completeOp(this.history[w.opIndex]!.client, w.opIndex, undefined);
      }
    }
  }

  private crash(n: SimNode): void {
    n.crash();
    // Writes in flight on a crashed node: may or may not have committed (info).
    for (const w of this.pendingWrites.get(n.id)!.values()) this.completeOp(this.history[w.opIndex]!.client, w.opIndex, undefined);
    this.pendingWrites.get(n.id)!.clear();
    for (const opIndex of this.pendingReads.get(n.id)!.values()) this.completeOp(this.history[opIndex]!.client, opIndex, undefined);
    this.pendingReads.get(n.id)!.clear();
  }

  // ------------------------------------------------------------ faults

  private leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.nodes) {
      if (n.raw?.raft.role === 'leader' && (!best || n.raw.raft.term > best.raw!.raft.term)) best = n;
    }
    return best;
  }

  private members(): NodeId[] {
    const l = this.leader() ?? this.nodes.find((n) => n.raw);
    if (!l?.raw) return [];
    const c = l.raw.raft.conf();
    return [...c.voters, ...c.learners];
  }

  private injectFault(): void {
    const f = this.faultRng;
    const kind = this.pickFault();
    const ids = this.nodes.map((n) => n.id);
    this.faults++;
    switch (kind) {
      case 'heal':
        this.net.heal();
        this.trace('heal');
        return;
      case 'partition': {
        this.net.heal(); // a new partition replaces the old one; 'oneway' cuts accumulate
        const shuffled = f.shuffle([...ids]);
        const cut = f.int(1, Math.floor(ids.length / 2));
        this.net.partition(shuffled.slice(0, cut), shuffled.slice(cut));
        this.trace(`partition ${shuffled.slice(0, cut).join(',')} | ${shuffled.slice(cut).join(',')}`);
        return;
      }
      case 'oneway': {
        const a = f.pick(ids);
        const b = f.pick(ids.filter((x) => x !== a));
        this.net.cutLink(a, b);
        this.trace(`cut ${a} -> ${b}`);
        return;
      }
      case 'isolate-leader': {
        const l = this.leader();
        if (!l) return;
        this.net.heal();
        this.net.partition(
          [l.id],
          ids.filter((x) => x !== l.id),
        );
        this.trace(`isolate leader ${l.id}`);
        return;
      }
      case 'crash': {
        const live = this.nodes.filter((n) => n.raw);
        if (live.length === 0) return;
        const n = f.pick(live);
        this.crash(n);
        this.trace(`crash ${n.id}`);
        return;
      }
      case 'bounce': {
        // Crash and restart at once: the node comes back with only what it persisted,
        // while messages it sent or was sent are still in flight.
        const live = this.nodes.filter((n) => n.raw);
        if (live.length === 0) return;
        const n = f.pick(live);
        this.crash(n);
        this.events.push(this.nowMs + f.int(0, 30), () => {
          if (!n.raw) n.start();
        });
        this.trace(`bounce ${n.id}`);
        return;
      }
      case 'crash-mid-write': {
        // Prefer the leader: it is the node that sends before its write is durable.
        const target = this.leader() ?? this.nodes.find((n) => n.raw);
        if (!target) return;
        target.crashDuringNextWrite = true;
        this.trace(`${target.id} will crash during its next write`);
        return;
      }
      case 'restart': {
        const dead = this.nodes.filter((n) => !n.raw);
        if (dead.length === 0) return;
        const n = f.pick(dead);
        n.start();
        this.trace(`restart ${n.id}`);
        return;
      }
      case 'transfer': {
        const l = this.leader();
        if (!l?.raw) return;
        const voters = l.raw.raft.conf().voters.filter((v) => v !== l.id);
        const to = f.chance(0.3) || voters.length === 0 ? NONE : f.pick(voters);
        l.raw.transferLeader(to);
        l.process();
        this.trace(`transfer leadership ${l.id} -> ${to || '(most caught up)'}`);
        return;
      }
      case 'membership':
        this.changeMembership();
        return;
      case 'net':
        this.net.faults = f.chance(0.3) ? RELIABLE : this.opts.faults;
        this.trace(`network ${this.net.faults === RELIABLE ? 'reliable' : 'lossy'}`);
        return;
    }
  }

  private pickFault(): FaultKind {
    const entries = Object.entries(this.opts.faultWeights) as [FaultKind, number][];
    const total = entries.reduce((n, [, w]) => n + w, 0);
    let r = this.faultRng.next() * total;
    for (const [kind, w] of entries) {
      r -= w;
      if (r < 0) return kind;
    }
    return 'heal';
  }

  private changeMembership(): void {
    const l = this.leader();
    if (!l?.raw) return;
    const conf = l.raw.raft.conf();
    const f = this.faultRng;
    const everMember = new Set(this.removed);
    const fresh = this.nodes.filter((n) => !conf.voters.includes(n.id) && !conf.learners.includes(n.id) && !everMember.has(n.id) && n.raw);
    let cc: { type: ConfChangeType; node: NodeId } | undefined;
    if (conf.learners.length > 0) cc = { type: ConfChangeType.PromoteLearner, node: f.pick(conf.learners) };
    else if (conf.voters.length < 5 && fresh.length > 0 && f.chance(0.6)) cc = { type: ConfChangeType.AddLearner, node: f.pick(fresh).id };
    else if (conf.voters.length > 3) cc = { type: ConfChangeType.RemoveNode, node: f.pick(conf.voters) };
    if (!cc) return;
    try {
      l.raw.proposeConfChange(cc);
      l.process();
      if (cc.type === ConfChangeType.RemoveNode) this.removed.push(cc.node);
      this.trace(`membership ${ConfChangeType[cc.type]} ${cc.node} (leader ${l.id})`);
    } catch (e) {
      if (!(e instanceof ProposalDroppedError)) throw e;
    }
  }

  private readonly removed: NodeId[] = [];

  /** Verbose mode: one line of every node's state every 500 virtual ms. */
  private scheduleStatusTrace(): void {
    this.events.push(this.nowMs + 500, () => {
      const parts = this.nodes.map((n) => {
        if (!n.raw) return `${n.id}:down`;
        const s = n.raw.status();
        const conf = `v=${s.conf.voters.join(',')}${s.conf.learners.length ? ` l=${s.conf.learners.join(',')}` : ''}`;
        return `${n.id}:${s.role[0]}${s.term}/c${s.commit}/l${s.lastIndex}${s.leadTransferee ? `/xfer>${s.leadTransferee}` : ''}[${conf}]`;
      });
      const busy = this.clientBusy.filter((b) => b).length;
      this.trace(`status ${parts.join(' ')} busy=${busy} cuts=[${this.net.describeCuts()}]`);
      if (this.nowMs < this.opts.chaosMs + this.opts.healBoundMs) this.scheduleStatusTrace();
    });
  }

  // ------------------------------------------------------------ run

  private runUntil(endMs: number, done?: () => boolean): boolean {
    for (;;) {
      if (done?.()) return true;
      const ev = this.events.pop();
      if (!ev) return false;
      if (ev.atMs > endMs) {
        this.events.push(ev.atMs, ev.fn);
        return false;
      }
      this.nowMs = ev.atMs;
      ev.fn();
    }
  }

  run(): SimResult {
    const o = this.opts;
    const result: SimResult = { seed: o.seed, ok: false, virtualMs: 0, ops: 0, okOps: 0, infoOps: 0, committed: 0, faults: 0, messages: 0 };
    try {
      this.startClients();
      // Chaos phase.
      this.net.faults = o.faults;
      const scheduleFault = () => {
        this.events.push(this.nowMs + this.faultRng.int(o.faultEveryMs / 2, o.faultEveryMs * 1.5), () => {
          if (this.nowMs < o.chaosMs) {
            this.injectFault();
            scheduleFault();
          }
        });
      };
      scheduleFault();
      if (o.trace) this.scheduleStatusTrace();
      this.runUntil(o.chaosMs);
      // Healed phase: everything restarts, the network is reliable, clients finish.
      this.trace('healed phase');
      this.net.heal();
      this.net.faults = RELIABLE;
      for (const n of this.nodes) if (!n.raw) n.start();
      this.clientsStopped = true;
      const healStart = this.nowMs;
      const healthy = () => this.isHealthy();
      if (!this.runUntil(healStart + o.healBoundMs, healthy)) {
        throw new LivenessFailure(this.describeUnhealthy(healStart));
      }
      // Linearizability of what the clients saw.
      const ops = this.history.filter((_, i) => !this.discarded.has(i));
      result.ops = this.history.length;
      result.okOps = ops.filter((op) => op.ret !== Infinity).length;
      result.infoOps = ops.filter((op) => op.ret === Infinity).length;
      if (o.checkLinearizability) {
        const lin = checkKvHistory(ops, { timeoutMs: 20_000 });
        if (lin.result === 'illegal') throw new InvariantViolation('linearizability', lin.info ?? 'history is not linearizable');
        if (lin.result === 'unknown') throw new InvariantViolation('linearizability', `checker gave up: ${lin.info ?? 'time budget'}`);
      }
      this.checkConvergence();
      result.ok = true;
    } catch (e) {
      if (e instanceof InvariantViolation || e instanceof LivenessFailure) result.failure = e.message;
      else result.failure = `crash: ${(e as Error).stack ?? String(e)}`;
    }
    result.virtualMs = this.nowMs;
    result.committed = this.safety.committedCount();
    result.faults = this.faults;
    result.messages = this.net.sent;
    return result;
  }

  private isHealthy(): boolean {
    const l = this.leader();
    if (!l?.raw) return false;
    if (this.clientBusy.some((b) => b)) return false;
    const members = this.members();
    const commit = l.raw.raft.log.committed;
    if (!l.raw.raft.committedEntryInCurrentTerm()) return false;
    for (const id of members) {
      const n = this.byId.get(id)!;
      if (!n.raw || n.applied < commit) return false;
    }
    return true;
  }

  private describeUnhealthy(healStart: number): string {
    const parts = this.nodes.map((n) => {
      if (!n.raw) return `${n.id}: down`;
      const s = n.raw.status();
      return `${n.id}: ${s.role} term ${s.term} leader ${s.leader || '-'} commit ${s.commit} applied ${n.applied} last ${s.lastIndex} voters [${s.conf.voters}] learners [${s.conf.learners}]`;
    });
    const busy = this.clientBusy.map((b, i) => (b ? i : -1)).filter((i) => i >= 0);
    return `no healthy cluster within ${this.nowMs - healStart}ms of healing (busy clients: ${busy.join(',') || 'none'}); ${parts.join('; ')}`;
  }

  /** I2 for the KV machine: members that applied the same index hold byte-identical state. */
  private checkConvergence(): void {
    const members = this.members().map((id) => this.byId.get(id)!);
    const ref = members[0];
    if (!ref) return;
    const refSnap = Buffer.from(ref.fsm.snapshot());
    for (const n of members) {
      if (n.applied !== ref.applied) continue;
      if (!refSnap.equals(Buffer.from(n.fsm.snapshot()))) {
        throw new InvariantViolation('state-machine safety', `${n.id} and ${ref.id} applied up to ${n.applied} but hold different states`);
      }
    }
  }
}

class LivenessFailure extends Error {
  constructor(detail: string) {
    super(`liveness: ${detail}`);
    this.name = 'LivenessFailure';
  }
}

export function runSimulation(opts: SimOptions): SimResult {
  return new Simulation(opts).run();
}

export function replayCommand(seed: number, extra = ''): string {
  return `npm run sim -- --seed ${seed}${extra}`;
}
