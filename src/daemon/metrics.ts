// Prometheus metrics of one daemon. A private registry (not prom-client's global
// one) so tests can run several daemons' metrics in one process. Raft gauges are
// read from the node's status at scrape time, so they are never stale.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { NodeStatus } from '../../raft/src/node/raft-node.js';

/** The slice of a RaftNode the metrics read. */
export interface RaftView {
  status(): NodeStatus;
  isLeader(): boolean;
}

export class DaemonMetrics {
  readonly registry = new Registry();
  readonly proposalSeconds: Histogram;
  readonly apiRequests: Counter<'route' | 'status'>;

  constructor(raft: RaftView) {
    const r = this.registry;
    collectDefaultMetrics({ register: r, prefix: 'ogel_process_' });
    const status = () => raft.status();
    new Gauge({ name: 'ogel_raft_term', help: 'Current Raft term.', registers: [r], collect() { this.set(status().term); } });
    new Gauge({ name: 'ogel_raft_commit_index', help: 'Raft commit index.', registers: [r], collect() { this.set(status().commitIndex); } });
    new Gauge({ name: 'ogel_raft_applied_index', help: 'Index applied to the state machine.', registers: [r], collect() { this.set(status().appliedIndex); } });
    new Gauge({ name: 'ogel_raft_is_leader', help: '1 on the Raft leader.', registers: [r], collect() { this.set(raft.isLeader() ? 1 : 0); } });
    new Gauge({
      name: 'ogel_raft_leader_changes_total',
      help: 'Leader changes seen by this node since it started.',
      registers: [r],
      collect() {
        this.set(status().leaderChanges);
      },
    });
    new Gauge({
      name: 'ogel_raft_peer_lag_entries',
      help: 'Entries a peer is behind the leader (leader only).',
      labelNames: ['peer'],
      registers: [r],
      collect() {
        this.reset();
        for (const p of status().peers) this.set({ peer: p.id }, p.lagEntries);
      },
    });
    new Gauge({
      name: 'ogel_raft_peer_last_contact_seconds',
      help: 'Seconds since the leader last heard from a peer (leader only).',
      labelNames: ['peer'],
      registers: [r],
      collect() {
        this.reset();
        for (const p of status().peers) this.set({ peer: p.id }, p.lastContactMs / 1000);
      },
    });
    new Gauge({
      name: 'ogel_transport_messages_total',
      help: 'Raft peer messages sent and received.',
      labelNames: ['direction'],
      registers: [r],
      collect() {
        const t = status().transport;
        this.set({ direction: 'sent' }, t.messagesSent);
        this.set({ direction: 'received' }, t.messagesReceived);
      },
    });
    new Gauge({
      name: 'ogel_transport_dropped_total',
      help: 'Peer frames or messages dropped, by reason.',
      labelNames: ['reason'],
      registers: [r],
      collect() {
        const t = status().transport;
        for (const [reason, n] of Object.entries(t.droppedInbound)) this.set({ reason: `inbound_${reason}` }, n);
        for (const [reason, n] of Object.entries(t.droppedOutbound)) this.set({ reason: `outbound_${reason}` }, n);
      },
    });
    this.proposalSeconds = new Histogram({
      name: 'ogel_raft_proposal_duration_seconds',
      help: 'Time from proposing a command to its local apply.',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [r],
    });
    this.apiRequests = new Counter({
      name: 'ogel_api_requests_total',
      help: 'Admin API requests by route and status.',
      labelNames: ['route', 'status'],
      registers: [r],
    });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
