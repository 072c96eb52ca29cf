// Where a session may go (docs/proxy.md, Routing). The proxy asks the router at
// the start of every transaction (transaction mode) or session (session mode).
//
// I3: a write goes only to the primary of the current generation, and only once
// its lease has a committed renewal. A node that is not that (fenced, stepping
// down, a standby) is never a write target. While there is no such primary the
// router says 'hold' and wakes held clients when the view changes.

import type { ClusterState } from '../../fsm/index.js';
import { parseHostPort } from '../config/index.js';
import { parseLsn } from '../../fsm/index.js';

export interface RouteTarget {
  node: string;
  host: string;
  port: number;
  /** The generation the view had when this target was chosen (pools are kept per generation). */
  generation: number;
  /** True for the writable primary, false for a standby. */
  primary: boolean;
}

export interface Router {
  /** A target, or 'hold' when none is available now (wait for onChange, bounded by the caller). */
  route(readOnly: boolean): RouteTarget | 'hold';
  /** Why route() says hold (named in the client's 57P03 error). */
  holdReason(): string;
  /** Calls listener whenever the view may have changed; returns the unsubscribe function. */
  onChange(listener: () => void): () => void;
  /** The current generation (0 when unknown); a server connection of an older one is never reused for a write. */
  generation(): number;
}

/** Listener bookkeeping shared by the routers. */
class Listeners {
  private readonly set = new Set<() => void>();
  add(l: () => void): () => void {
    this.set.add(l);
    return () => this.set.delete(l);
  }
  get size(): number {
    return this.set.size;
  }
  fire(): void {
    for (const l of [...this.set]) {
      try {
        l();
      } catch {
        // A listener's failure is its own; the others still run.
      }
    }
  }
}

/**
 * A fixed view, for the benchmark and tests: one primary (or none) and optional
 * standbys. set() changes it, as a failover would.
 */
export class StaticRouter implements Router {
  private readonly listeners = new Listeners();
  private view: { primary: RouteTarget | null; standbys: RouteTarget[]; reason: string };

  constructor(primary: Omit<RouteTarget, 'primary'> | null, standbys: Omit<RouteTarget, 'primary'>[] = []) {
    this.view = { primary: null, standbys: [], reason: '' };
    this.set(primary, standbys);
  }

  set(
    primary: Omit<RouteTarget, 'primary'> | null,
    standbys: Omit<RouteTarget, 'primary'>[] = [],
    reason = 'no writable primary (failover in progress)',
  ): void {
    this.view = {
      primary: primary ? { ...primary, primary: true } : null,
      standbys: standbys.map((s) => ({ ...s, primary: false })),
      reason,
    };
    this.listeners.fire();
  }

  route(readOnly: boolean): RouteTarget | 'hold' {
    if (readOnly && this.view.standbys.length > 0) return this.view.standbys[0]!;
    return this.view.primary ?? 'hold';
  }

  holdReason(): string {
    return this.view.reason;
  }

  onChange(listener: () => void): () => void {
    return this.listeners.add(listener);
  }

  generation(): number {
    return this.view.primary?.generation ?? 0;
  }
}

export interface ClusterRouterOptions {
  /** The state machine's current state (read on every route; cheap: the view is cached per state object). */
  state: () => Pick<ClusterState, 'postgres' | 'members'>;
  /** Read-only sessions use a standby only while its replay lag is below this. */
  maxReplicaLagBytes: number;
  /** This node's id: a read-only session prefers the local standby. */
  selfId?: string | undefined;
  /** While clients are held, the state is polled this often for a change (default 10 ms). */
  pollMs?: number;
}

interface ClusterView {
  postgres: ClusterState['postgres'];
  members: ClusterState['members'];
  primary: RouteTarget | null;
  standbys: RouteTarget[];
  reason: string;
}

/** The router a daemon uses: its view comes from the state machine. */
export class ClusterRouter implements Router {
  private readonly listeners = new Listeners();
  private view: ClusterView | null = null;
  private timer: NodeJS.Timeout | null = null;
  private next = 0;

  constructor(private readonly o: ClusterRouterOptions) {}

  route(readOnly: boolean): RouteTarget | 'hold' {
    const v = this.current();
    if (readOnly && v.standbys.length > 0) {
      const local = v.standbys.find((s) => s.node === this.o.selfId);
      if (local) return local;
      this.next = (this.next + 1) % v.standbys.length;
      return v.standbys[this.next]!;
    }
    return v.primary ?? 'hold';
  }

  holdReason(): string {
    return this.current().reason;
  }

  generation(): number {
    return this.current().postgres.generation;
  }

  onChange(listener: () => void): () => void {
    const off = this.listeners.add(listener);
    this.ensurePolling();
    return () => {
      off();
      if (this.listeners.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = null;
      }
    };
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Only while someone waits: an idle proxy costs nothing. */
  private ensurePolling(): void {
    if (this.timer || this.listeners.size === 0) return;
    this.timer = setInterval(() => this.current(), this.o.pollMs ?? 10);
    this.timer.unref();
  }

  private current(): ClusterView {
    const s = this.o.state();
    const v = this.view;
    if (v && v.postgres === s.postgres && v.members === s.members) return v;
    const view = computeView(s, this.o.maxReplicaLagBytes);
    this.view = view;
    // Wake held clients on any change of the view: they route again, and may wait again.
    if (v !== null) this.listeners.fire();
    return view;
  }
}

/** A membership record's postgres address; null (not routable) when it does not parse. */
function addressOf(hostPort: string): { host: string; port: number } | null {
  const a = parseHostPort(hostPort);
  return a.ok ? { host: a.host, port: a.port } : null;
}

/** The routing view of one state: pure, exported for tests. */
export function computeView(s: Pick<ClusterState, 'postgres' | 'members'>, maxReplicaLagBytes: number): ClusterView {
  const pg = s.postgres;
  const g = pg.generation;
  let primary: RouteTarget | null = null;
  let reason = '';
  const lease = pg.lease;
  if (pg.primary === null) {
    reason = g === 0 ? 'the cluster has no primary yet (bootstrapping)' : `no primary after generation ${g} (a failover or switchover is in progress)`;
  } else if (lease === null || lease.holder !== pg.primary || lease.generation !== g) {
    reason = `primary ${pg.primary} of generation ${g} holds no lease yet (a failover or switchover is in progress)`;
  } else if (lease.renewalSeq < 1) {
    reason = `primary ${pg.primary} of generation ${g} is not writable yet (its lease has no committed renewal: a failover or switchover is in progress)`;
  } else {
    const m = s.members.get(pg.primary);
    const addr = m ? addressOf(m.addresses.postgres) : null;
    if (addr) primary = { node: pg.primary, ...addr, generation: g, primary: true };
    else reason = `primary ${pg.primary} has no Postgres address in the member list`;
  }
  const standbys: RouteTarget[] = [];
  const primaryLsn = pg.primary ? parseLsn(pg.nodes.get(pg.primary)?.lsn.replayed ?? '') : null;
  if (primary && primaryLsn !== null) {
    for (const n of pg.nodes.values()) {
      // Wanted 'absent' is a member the cluster set no role for: its agent follows the
      // primary (every standby of a freshly bootstrapped cluster). Never a node
      // fenced or being re-cloned.
      if (n.node === pg.primary || (n.role !== 'standby' && n.role !== 'absent') || n.reportedRole !== 'standby') continue;
      const replayed = parseLsn(n.lsn.replayed);
      if (replayed === null) continue;
      const lag = primaryLsn > replayed ? primaryLsn - replayed : 0n;
      if (lag >= BigInt(maxReplicaLagBytes)) continue;
      const m = s.members.get(n.node);
      const addr = m ? addressOf(m.addresses.postgres) : null;
      if (addr) standbys.push({ node: n.node, ...addr, generation: g, primary: false });
    }
    standbys.sort((a, b) => (a.node < b.node ? -1 : 1));
  }
  return { postgres: pg, members: s.members, primary, standbys, reason };
}
