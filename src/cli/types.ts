// Response shapes of the admin API (docs/admin-api.md), as the CLI reads them.
// Fields the contract leaves open (Postgres per-node state, the lease, placement)
// are typed loosely and rendered defensively: the CLI must keep working when the
// daemon starts filling them in.

export interface MemberAddresses {
  raft: string;
  api: string;
  proxy: string;
  postgres: string;
}

export interface MemberRaft {
  role: string;
  voter: boolean;
  matchIndex: number | null;
  lagEntries: number | null;
  lastContactMs: number | null;
  /** Not in the contract yet; shown when present, else the cluster term is shown. */
  term?: number;
}

export interface Member {
  id: string;
  addresses: MemberAddresses;
  raft?: MemberRaft;
  health?: { healthy: boolean; reportedAtMs: number | null } | null;
}

export interface Lease {
  holder: string;
  generation?: number;
  durationMs?: number;
  /** Time left as the answering node sees it (negative: overdue); null or absent when unknown. */
  remainingMs?: number | null;
  [k: string]: unknown;
}

/** How far a standby is behind the primary. */
export interface NodeReplication {
  /** 'live': the primary's pg_stat_replication; 'reported': the agents' reported LSNs. */
  source: 'live' | 'reported';
  /** streaming, catchup, ...; 'disconnected' when the primary does not list it; null when unknown. */
  state: string | null;
  syncState: string | null;
  lagBytes: number | null;
  lagSeconds: number | null;
}

export interface ReplicationSummary {
  source: 'live' | 'reported';
  from: string;
  currentLsn: string | null;
  measuredAtMs: number | null;
  /** Why the figures are not live. */
  error: string | null;
}

export interface PostgresNode {
  /** The role the cluster wants. */
  role?: string;
  /** The role the node's agent last reported. */
  reportedRole?: string;
  generation?: number;
  timeline?: number;
  lsn?: { received: string; flushed: string; replayed: string };
  reportedAtMs?: number | null;
  /** Null on the primary (and when there is none). */
  replication?: NodeReplication | null;
  /** This standby's replication slot on the primary (live figures only). */
  slot?: { walStatus: string | null; safeWalBytes: number | null; active: boolean } | null;
  [k: string]: unknown;
}

export interface PostgresStatus {
  generation: number;
  primary: string | null;
  lease: Lease | null;
  nodes: Record<string, PostgresNode>;
  /** null, or why automatic failover refuses (a string, or an object with a reason). */
  failoverBlocked: unknown;
  syncStandbys?: string[];
  syncQuorum?: number;
  /** Where the standbys' lag figures come from; null without a primary. */
  replication?: ReplicationSummary | null;
  /** `ogel switchover --scheduled`: null or absent (an older daemon) when none is scheduled. */
  scheduledSwitchover?: ScheduledSwitchover | null;
}

export interface ScheduledSwitchover {
  /** null: the most caught-up standby at that time. */
  to: string | null;
  notBeforeMs: number;
  requestedAtMs?: number;
  /** notBeforeMs as ISO 8601. */
  at?: string;
}

/** POST /v1/switchover with scheduledAt. */
export interface ScheduleResult {
  scheduled: { to: string | null; at: string; notBeforeMs: number };
}

export interface Status {
  cluster: string;
  node: string;
  leader: string | null;
  term: number;
  commitIndex: number;
  appliedIndex: number;
  /** The answering node lost its Raft state and has no say in any quorum until it catches up. */
  rejoining?: boolean;
  stale: boolean;
  members: Member[];
  postgres: PostgresStatus;
  maintenance: { paused: boolean; reason: string | null };
}

export interface TransferResult {
  from: string;
  to: string;
  durationMs: number;
}

export interface MemberSpec {
  id: string;
  raft: string;
  api: string;
  proxy: string;
  postgres: string;
}

export interface PauseResult {
  paused: boolean;
  reason?: string | null;
}

/** One proxy pool as GET /v1/proxy/pools reports it (src/proxy/pool.ts PoolStats). */
export interface ProxyPool {
  node: string;
  generation: number;
  primary: boolean;
  database: string;
  role: string;
  size: number;
  active: number;
  idle: number;
  connecting: number;
  waiting: number;
  maxWaitMs: number;
  served: number;
}

/** GET /v1/proxy/pools: the answering node's proxy. */
export interface ProxyPools {
  node: string;
  address: string;
  mode: string;
  defaultPoolSize: number;
  clients: { total: number; maxClientConnections: number; byTenant: Record<string, number> };
  pools: ProxyPool[];
  counters: Record<string, number>;
}

export interface HistoryEntry {
  generation: number;
  node: string;
  reason: string;
  lsn: string | null;
  atMs: number | null;
}

export interface Tenant {
  id: string;
  name: string;
  database: string;
  role: string;
  state: string;
  limits: { maxConnections?: number; rateLimitPerSec?: number; poolSize?: number | null; [k: string]: unknown };
  /** The proxy's defaultPoolSize: the size in effect when limits.poolSize is null (absent from older daemons). */
  defaultPoolSize?: number;
  placement: unknown;
  createdAtMs: number | null;
}

export interface CreateTenantRequest {
  name: string;
  password?: string;
  limits?: { maxConnections?: number; rateLimitPerSec?: number };
}

/** PATCH /v1/tenants/:name: only the limits given change; poolSize null is the proxy's default. */
export interface SetTenantLimitsRequest {
  limits: { poolSize?: number | null; maxConnections?: number; rateLimitPerSec?: number };
}

export interface CreateTenantResult {
  tenant: Tenant;
  password?: string;
  url?: string;
}
