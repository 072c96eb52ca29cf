// Network faults as iptables rules inside the run's private network namespace.
//
// A fault is a set of cut links, each "connections that host A opens to host B"
// (A -> B). A symmetric partition cuts both A -> B and B -> A; a one-way
// partition cuts only one. Every fault gets its own chain (jumped to from
// OUTPUT), so overlapping faults heal independently, and the chain's packet
// counter says how much the fault actually dropped (reported with the fault:
// a partition that drops nothing is a harness bug, and shows).
//
// All traffic here is local, so every packet passes OUTPUT with its sending
// socket known, and conntrack knows each connection's original destination
// (before any DNAT: slow-link relays keep being cut by partitions).
//
// Who opens which connection, and from which address:
//   - Raft (one outbound connection per peer, used only to send) and the daemons'
//     HTTP calls to each other (proposals forwarded to the leader, the failover
//     fence calls) are bound to the node's own address (src/net/bind.ts).
//   - Postgres connections cannot be bound: libpq (a standby's WAL receiver, base
//     backups) and the proxy's server connections leave from 127.0.0.1 whoever
//     dials, as do the harness's clients.
//
// Mode "cgroup" (preferred): each host's processes are in their own cgroup
// (cgroups.ts). Before any daemon starts, a mangle rule marks every new
// connection with the host whose cgroup opened it (CONNMARK), and a link A -> B
// is the rule "a packet in the original direction of a connection opened by A
// and originally addressed to B's address is dropped". (Matching the cgroup on
// every packet instead leaks: once a process closes a socket, the kernel's
// retransmissions of its unsent data no longer match the cgroup, and were seen
// delivering a request across a partition when the client gave up on it.) That
// cuts every kind of connection by the host that opened it, Postgres included:
//   - symmetric partitions (halves, leader, primary, ring) cut Raft, peer HTTP,
//     WAL streaming and proxy-to-primary connections between the two sides;
//   - one-way A -> B: A's Raft messages and HTTP requests to B are lost, B's to
//     A arrive (and their HTTP answers come back: they travel on B's connection).
//     A standby on A cannot stream from a primary on B, a standby on B still
//     streams from a primary on A. A's proxy cannot reach a primary on B.
//   - clients (the harness, from 127.0.0.1, in no host's cgroup) still reach
//     every proxy: an isolated node's proxy keeps taking sessions, and must refuse
//     writes it cannot make safe (I3) rather than be shielded by the partition.
//
// Mode "address" (fallback when no cgroup2 hierarchy is writable): a link A -> B
// is "-s A -d B, in the connection's original direction", which cuts only what
// is bound to A's address: Raft and peer HTTP. Postgres connections all come
// from 127.0.0.1 and can only be cut by destination, for everyone at once: the
// rule "nothing reaches B's Postgres port from 127.0.0.1" is added only when
// the fault cuts B off from every other host, and then B's own proxy loses its
// Postgres too (it dials from 127.0.0.1 like everyone else). Consequences:
//   - partition-primary / partition-leader (isolation): WAL streaming to and
//     from the isolated host is cut (by destination only: a standby elsewhere
//     cannot reach an isolated primary; an isolated standby's own WAL receiver
//     still reaches the primary); the isolated host's proxy cannot reach its
//     own Postgres either.
//   - partition-halves (one side of one host): as isolation.
//   - partition-oneway "deaf" (nobody reaches the host): as isolation for
//     connections to the host's Postgres.
//   - partition-ring and partition-oneway "mute": Postgres links are not cut at
//     all, only Raft and peer HTTP; replication keeps flowing across the cut.

import { sh } from './netns.js';
import type { HostCgroups } from './cgroups.js';

export interface FirewallHost {
  id: string;
  host: string;
  /** Only the address mode uses it (known once the cluster's config is written). */
  postgresPort: number;
}

export type Link = readonly [from: string, to: string];

export interface HealReport {
  /** Packets the fault's rules dropped while installed. */
  droppedPackets: number;
}

export class Firewall {
  private seq = 0;
  private readonly installed = new Map<string, FaultRules>();

  constructor(
    private readonly hosts: ReadonlyMap<string, FirewallHost>,
    private readonly cgroups: HostCgroups | undefined,
  ) {}

  get mode(): 'cgroup' | 'address' {
    return this.cgroups !== undefined ? 'cgroup' : 'address';
  }

  setPostgresPorts(ports: ReadonlyMap<string, number>): void {
    for (const [id, port] of ports) {
      const h = this.hosts.get(id);
      if (h === undefined) throw new Error(`no host ${id}`);
      h.postgresPort = port;
    }
  }

  /** Connection mark of host `id` (1, 2, ...). */
  private mark(id: string): number {
    return [...this.hosts.keys()].indexOf(id) + 1;
  }

  /**
   * Cgroup mode: marks each new connection with the host that opens it. Must be in
   * place before the daemons start (a connection opened earlier has no mark, and
   * no partition would cut it).
   */
  async markConnections(): Promise<void> {
    const cg = this.cgroups;
    if (cg === undefined) return;
    for (const id of this.hosts.keys()) {
      await sh('iptables', [
        '-t',
        'mangle',
        '-A',
        'OUTPUT',
        '-m',
        'conntrack',
        '--ctstate',
        'NEW',
        '-m',
        'cgroup',
        '--path',
        cg.path(id),
        '-j',
        'CONNMARK',
        '--set-mark',
        String(this.mark(id)),
      ]);
    }
  }

  /** Cuts every link in `links`; the returned handle heals exactly those. */
  async cut(links: readonly Link[]): Promise<FaultRules> {
    const chain = `JF${++this.seq}`;
    const rules = this.rules(links);
    await sh('iptables', ['-N', chain]);
    for (const r of rules) await sh('iptables', ['-A', chain, ...r]);
    await sh('iptables', ['-A', 'OUTPUT', '-j', chain]);
    const f = new FaultRules(chain, () => this.installed.delete(chain));
    this.installed.set(chain, f);
    return f;
  }

  /** Symmetric partition between groups: every host in one group is cut from every host in another. */
  async partition(groups: readonly (readonly string[])[]): Promise<FaultRules> {
    const links: Link[] = [];
    for (const [i, g] of groups.entries()) {
      for (const [j, h] of groups.entries()) {
        if (i === j) continue;
        for (const a of g) for (const b of h) links.push([a, b]);
      }
    }
    return this.cut(links);
  }

  /** Heals every fault still installed (the end of a run). */
  async healAll(): Promise<HealReport> {
    let droppedPackets = 0;
    for (const f of [...this.installed.values()]) droppedPackets += (await f.heal()).droppedPackets;
    return { droppedPackets };
  }

  private rules(links: readonly Link[]): string[][] {
    for (const [a, b] of links) {
      if (!this.hosts.has(a) || !this.hosts.has(b) || a === b) throw new Error(`bad link ${a} -> ${b}`);
    }
    const host = (id: string) => this.hosts.get(id)!;
    if (this.cgroups !== undefined) {
      return links.map(([a, b]) => [
        '-m',
        'connmark',
        '--mark',
        String(this.mark(a)),
        '-m',
        'conntrack',
        '--ctdir',
        'ORIGINAL',
        '--ctorigdst',
        host(b).host,
        '-j',
        'DROP',
      ]);
    }
    const out = links.map(([a, b]) => ['-s', host(a).host, '-d', host(b).host, '-m', 'conntrack', '--ctdir', 'ORIGINAL', '-j', 'DROP']);
    // Postgres by destination, only for hosts every other host is cut from (see above).
    for (const b of this.hosts.keys()) {
      const others = [...this.hosts.keys()].filter((x) => x !== b);
      if (others.every((a) => links.some(([x, y]) => x === a && y === b))) {
        out.push([
          '-s',
          '127.0.0.1',
          '-d',
          host(b).host,
          '-p',
          'tcp',
          '--dport',
          String(host(b).postgresPort),
          '-m',
          'conntrack',
          '--ctdir',
          'ORIGINAL',
          '-j',
          'DROP',
        ]);
      }
    }
    return out;
  }
}

export class FaultRules {
  private healed = false;

  constructor(
    readonly chain: string,
    private readonly onHeal: () => void,
  ) {}

  async droppedPackets(): Promise<number> {
    // -x: exact counts; the first column of each rule line is its packet count.
    const out = await sh('iptables', ['-L', this.chain, '-v', '-n', '-x']);
    return out
      .split('\n')
      .slice(2)
      .map((l) => Number(l.trim().split(/\s+/)[0]))
      .filter((n) => Number.isFinite(n))
      .reduce((x, y) => x + y, 0);
  }

  async heal(): Promise<HealReport> {
    if (this.healed) return { droppedPackets: 0 };
    this.healed = true;
    const droppedPackets = await this.droppedPackets();
    await sh('iptables', ['-D', 'OUTPUT', '-j', this.chain]);
    await sh('iptables', ['-F', this.chain]);
    await sh('iptables', ['-X', this.chain]);
    this.onHeal();
    return { droppedPackets };
  }
}
