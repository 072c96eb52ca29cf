// The admin API's shapes as the CLI uses them: the contract's types
// (src/api/contract, the single source of truth), under the CLI's names.

export type {
  CancelResult,
  CreateTenantRequest,
  CreateTenantResult,
  FailoverResult,
  HistoryEntry,
  Lease,
  Member,
  MemberAddresses,
  MemberRecord,
  NodeReplication,
  PauseResult,
  PostgresNode,
  PostgresStatus,
  ProxyPool,
  ProxyPools,
  ReinitResult,
  ReplicationSummary,
  ScheduledSwitchover,
  ScheduleResult,
  SetTenantLimitsRequest,
  Status,
  SwitchoverResult,
  Tenant,
  TransferResult,
} from '../api/contract/index.js';
export type { AddMemberRequest as MemberSpec } from '../api/contract/index.js';
