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
  [k: string]: unknown;
}

export interface PostgresNode {
  /** The role the cluster wants. */
  role?: string;
  /** The role the node's agent last reported. */
  reportedRole?: string;
  generation?: number;
  timeline?: number;
  [k: string]: unknown;
}

export interface PostgresStatus {
  generation: number;
  primary: string | null;
  lease: Lease | null;
  nodes: Record<string, PostgresNode>;
  /** null, or why automatic failover refuses (a string, or an object with a reason). */
  failoverBlocked: unknown;
}

export interface Status {
  cluster: string;
  node: string;
  leader: string | null;
  term: number;
  commitIndex: number;
  appliedIndex: number;
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
  limits: { maxConnections?: number; rateLimitPerSec?: number; [k: string]: unknown };
  placement: unknown;
  createdAtMs: number | null;
}

export interface CreateTenantRequest {
  name: string;
  password?: string;
  limits?: { maxConnections?: number; rateLimitPerSec?: number };
}

export interface CreateTenantResult {
  tenant: Tenant;
  password?: string;
  url?: string;
}
