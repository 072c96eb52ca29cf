// Response bodies of the admin API. Loose objects: a daemon may add fields, and
// an older client must keep working (it ignores them); a field a client relies
// on that is missing or of the wrong type is an error the client names. Fields
// marked optional are absent from older daemons. No defaults or transforms: a
// parsed answer is the answer as sent (the CLI prints the original).

import { z } from 'zod';

/**
 * An answer's object. Unknown fields are kept at runtime (a newer daemon may add
 * some, and `--json` prints what came) but left out of the type, so code cannot
 * come to rely on a field the contract does not promise. The JSON Schema says
 * additionalProperties: {} (allowed).
 */
function open<Shape extends z.ZodRawShape>(shape: Shape): z.ZodObject<Shape, z.core.$strip> {
  return z.looseObject(shape) as unknown as z.ZodObject<Shape, z.core.$strip>;
}

const nodeId = z.string();
const lsn = z.string().meta({ description: "a Postgres LSN, e.g. '0/3000148'" });
const count = z.number();

export const MemberAddresses = open({ raft: z.string(), api: z.string(), proxy: z.string(), postgres: z.string() }).meta({
  id: 'MemberAddresses',
  description: "host:port of each of the member's listeners",
});
export type MemberAddresses = z.infer<typeof MemberAddresses>;

export const MemberHealth = open({ healthy: z.boolean(), reportedAtMs: z.number().nullable(), detail: z.string().nullable().optional() }).meta({
  id: 'MemberHealth',
});

/** A member as the state machine records it (POST /v1/members). */
export const MemberRecord = open({ id: nodeId, addresses: MemberAddresses, health: MemberHealth, addedAtMs: z.number().optional() }).meta({
  id: 'MemberRecord',
});
export type MemberRecord = z.infer<typeof MemberRecord>;

export const MemberRaft = open({
  /** leader, follower, learner, or removed (in the state machine, no longer in the Raft configuration). */
  role: z.string(),
  voter: z.boolean(),
  matchIndex: z.number().nullable(),
  lagEntries: z.number().nullable(),
  lastContactMs: z.number().nullable(),
  term: z.number().optional(),
}).meta({ id: 'MemberRaft', description: 'per-peer Raft progress; known only to the leader (null elsewhere)' });

/** A member in GET /v1/status and GET /v1/members: the record plus Raft progress. */
export const Member = open({
  id: nodeId,
  /** null for a Raft peer that neither the state machine nor the config knows. */
  addresses: MemberAddresses.nullable(),
  raft: MemberRaft.optional(),
  health: MemberHealth.nullable().optional(),
}).meta({ id: 'Member' });
export type Member = z.infer<typeof Member>;

export const NodeReplication = open({
  source: z.enum(['live', 'reported']),
  state: z.string().nullable(),
  syncState: z.string().nullable(),
  lagBytes: z.number().nullable(),
  lagSeconds: z.number().nullable(),
}).meta({ id: 'NodeReplication', description: "how far a standby is behind: 'live' from the primary's pg_stat_replication, 'reported' from the agents' LSNs" });
export type NodeReplication = z.infer<typeof NodeReplication>;

export const SlotView = open({ walStatus: z.string().nullable(), safeWalBytes: z.number().nullable(), active: z.boolean() }).meta({ id: 'SlotView' });

export const PostgresNode = open({
  node: nodeId.optional(),
  role: z.string().optional(),
  reportedRole: z.string().optional(),
  timeline: z.number().optional(),
  lsn: open({ received: lsn, flushed: lsn, replayed: lsn }).optional(),
  reportedAtMs: z.number().nullable().optional(),
  replication: NodeReplication.nullable().optional(),
  slot: SlotView.nullable().optional(),
}).meta({ id: 'PostgresNode' });
export type PostgresNode = z.infer<typeof PostgresNode>;

export const Lease = open({
  holder: nodeId,
  generation: z.number().optional(),
  durationMs: z.number().optional(),
  renewalSeq: z.number().optional(),
  /** Time left as the answering node sees it (negative: overdue); null when unknown. */
  remainingMs: z.number().nullable().optional(),
}).meta({ id: 'Lease' });
export type Lease = z.infer<typeof Lease>;

export const ScheduledSwitchover = open({
  to: nodeId.nullable(),
  notBeforeMs: z.number(),
  requestedAtMs: z.number().optional(),
  at: z.string().optional(),
}).meta({ id: 'ScheduledSwitchover', description: 'to null: the most caught-up standby at that time; at: notBeforeMs as ISO 8601' });
export type ScheduledSwitchover = z.infer<typeof ScheduledSwitchover>;

export const ReplicationSummary = open({
  source: z.enum(['live', 'reported']),
  from: nodeId,
  currentLsn: lsn.nullable(),
  measuredAtMs: z.number().nullable(),
  error: z.string().nullable(),
}).meta({ id: 'ReplicationSummary' });
export type ReplicationSummary = z.infer<typeof ReplicationSummary>;

export const FailoverBlocked = open({ reason: z.string(), atMs: z.number().optional() }).meta({
  id: 'FailoverBlocked',
  description: 'why automatic failover refuses',
});

export const PostgresStatus = open({
  generation: z.number(),
  primary: nodeId.nullable(),
  lease: Lease.nullable(),
  nodes: z.record(z.string(), PostgresNode),
  failoverBlocked: FailoverBlocked.nullable(),
  syncStandbys: z.array(nodeId).optional(),
  syncQuorum: z.number().optional(),
  replication: ReplicationSummary.nullable().optional(),
  scheduledSwitchover: ScheduledSwitchover.nullable().optional(),
}).meta({ id: 'PostgresStatus' });
export type PostgresStatus = z.infer<typeof PostgresStatus>;

export const Maintenance = open({ paused: z.boolean(), reason: z.string().nullable() }).meta({ id: 'Maintenance' });

export const Status = open({
  cluster: z.string(),
  node: nodeId,
  leader: nodeId.nullable(),
  term: z.number(),
  commitIndex: z.number(),
  appliedIndex: z.number(),
  /** The answering node lost its Raft state and has no say in any quorum until it catches up. */
  rejoining: z.boolean().optional(),
  stale: z.boolean(),
  members: z.array(Member),
  postgres: PostgresStatus,
  maintenance: Maintenance,
  /** Absent from older daemons. */
  backups: z.lazy(() => BackupsSummary).optional(),
  /** The continuous WAL archive: the restore window and the primary's archiver. Absent from older daemons. */
  archive: z.lazy(() => ArchiveSummary).optional(),
}).meta({ id: 'Status' });
export type Status = z.infer<typeof Status>;

export const TransferResult = open({ from: nodeId, to: nodeId, durationMs: z.number() }).meta({ id: 'TransferResult' });
export type TransferResult = z.infer<typeof TransferResult>;

export const MembersResponse = open({ members: z.array(Member) }).meta({ id: 'MembersResponse' });
export const AddMemberResponse = open({ member: MemberRecord }).meta({ id: 'AddMemberResponse' });
export const RemoveMemberResponse = open({ removed: nodeId }).meta({ id: 'RemoveMemberResponse' });

export const PauseResult = open({ paused: z.boolean(), reason: z.string().nullable().optional() }).meta({ id: 'PauseResult' });
export type PauseResult = z.infer<typeof PauseResult>;

export const HistoryEntry = open({ generation: z.number(), node: nodeId, reason: z.string(), lsn: lsn.nullable(), atMs: z.number().nullable() }).meta({
  id: 'HistoryEntry',
  description: 'one promotion',
});
export type HistoryEntry = z.infer<typeof HistoryEntry>;
export const HistoryResponse = open({ history: z.array(HistoryEntry) }).meta({ id: 'HistoryResponse' });

export const TenantLimits = open({
  maxConnections: z.number(),
  rateLimitPerSec: z.number(),
  poolSize: z.number().nullable(),
  poolMode: z.enum(['session', 'transaction']).nullable().optional(),
}).meta({
  id: 'TenantLimits',
  description:
    "poolSize null: the proxy's defaultPoolSize; poolMode null: the proxy's poolMode (a client's options pool_mode=... still chooses for its connection)",
});
export type TenantLimits = z.infer<typeof TenantLimits>;

/** A tenant, never with its SCRAM verifier (a password equivalent for offline guessing). */
export const Tenant = open({
  id: z.string(),
  name: z.string(),
  database: z.string(),
  role: z.string(),
  state: z.string(),
  limits: TenantLimits,
  /** The size in effect when limits.poolSize is null. */
  defaultPoolSize: z.number().optional(),
  /** The mode in effect when limits.poolMode is null. */
  defaultPoolMode: z.string().optional(),
  placement: nodeId.nullable(),
  createdAtMs: z.number().nullable(),
}).meta({ id: 'Tenant' });
export type Tenant = z.infer<typeof Tenant>;

export const TenantsResponse = open({ tenants: z.array(Tenant) }).meta({ id: 'TenantsResponse' });
export const TenantResponse = open({ tenant: Tenant }).meta({ id: 'TenantResponse' });
export type TenantResponse = z.infer<typeof TenantResponse>;
export const CreateTenantResult = open({ tenant: Tenant, password: z.string(), url: z.string() }).meta({
  id: 'CreateTenantResult',
  description: 'the password is shown once: the cluster keeps only its SCRAM verifier',
});
export type CreateTenantResult = z.infer<typeof CreateTenantResult>;
export const DeleteTenantResponse = open({ deleted: z.string() }).meta({ id: 'DeleteTenantResponse' });

export const StepDownResult = open({
  generation: z.number(),
  to: nodeId,
  lastLsn: lsn,
  targetFlushedLsn: lsn,
  readOnlyMs: z.number(),
  drainMs: z.number(),
  catchUpMs: z.number(),
  shutdownMs: z.number(),
  releaseMs: z.number(),
}).meta({ id: 'StepDownResult', description: "the old primary's half of a switchover, phases in ms on its clock" });
export type StepDownResult = z.infer<typeof StepDownResult>;

export const SwitchoverResult = open({ from: nodeId, to: nodeId, generation: z.number(), pauseMs: z.number(), stepDown: StepDownResult.nullable() }).meta({
  id: 'SwitchoverResult',
});
export type SwitchoverResult = z.infer<typeof SwitchoverResult>;

export const ScheduleResult = open({ scheduled: open({ to: nodeId.nullable(), at: z.string(), notBeforeMs: z.number() }) }).meta({ id: 'ScheduleResult' });
export type ScheduleResult = z.infer<typeof ScheduleResult>;

/** POST /v1/switchover answers one of these: scheduled when the request had scheduledAt. */
export const SwitchoverResponse = z.union([SwitchoverResult, ScheduleResult]).meta({ id: 'SwitchoverResponse' });

export const CancelResult = open({ cancelled: z.boolean() }).meta({ id: 'CancelResult', description: 'false when nothing was scheduled' });
export type CancelResult = z.infer<typeof CancelResult>;

export const FailoverResult = open({ from: nodeId.nullable(), to: nodeId, generation: z.number(), forced: z.boolean(), durationMs: z.number() }).meta({
  id: 'FailoverResult',
});
export type FailoverResult = z.infer<typeof FailoverResult>;

export const ReinitResult = open({ node: nodeId, role: z.string(), generation: z.number() }).meta({ id: 'ReinitResult' });
export type ReinitResult = z.infer<typeof ReinitResult>;

export const StopReceiverResult = open({ flushedLsn: lsn, replayedLsn: lsn }).meta({ id: 'StopReceiverResult' });
export type StopReceiverResult = z.infer<typeof StopReceiverResult>;

/** One proxy pool (src/proxy/pool.ts PoolStats): the fields clients show; the proxy reports more. */
export const ProxyPool = open({
  node: nodeId,
  generation: z.number(),
  primary: z.boolean(),
  database: z.string(),
  role: z.string(),
  size: count,
  active: count,
  idle: count,
  connecting: count,
  waiting: count,
  maxWaitMs: z.number(),
  served: count,
}).meta({ id: 'ProxyPool' });
export type ProxyPool = z.infer<typeof ProxyPool>;

/** What a node's proxy reports of itself (ProxyServer.stats()), in the spirit of PgBouncer's SHOW POOLS. */
export const ProxyStats = open({
  mode: z.string(),
  defaultPoolSize: count,
  clients: open({ total: count, maxClientConnections: count, byTenant: z.record(z.string(), count) }),
  pools: z.array(ProxyPool),
  /** Since the proxy started; the proxy reports more than these. */
  counters: open({
    accepted: count,
    held: count,
    holdTimeouts: count,
    retried: count,
    failedInFlight: count,
    cancels: count,
    authFailures: count,
    refusedLimit: count,
    protocolErrors: count,
  }),
}).meta({ id: 'ProxyStats' });
export type ProxyStats = z.infer<typeof ProxyStats>;

/** GET /v1/proxy/pools: the answering node's proxy. */
export const ProxyPools = ProxyStats.extend({ node: nodeId, address: z.string() }).meta({ id: 'ProxyPools' });
export type ProxyPools = z.infer<typeof ProxyPools>;

/** GET /v1/internal/pg/replication (the primary's pg_stat_replication); src/postgres/replication-stats.ts checks it strictly. */
export const ReplicationAnswer = open({
  node: nodeId,
  primary: z.boolean(),
  currentLsn: lsn.nullable(),
  standbys: z.array(open({ standby: nodeId, state: z.string(), syncState: z.string(), lagBytes: z.number().nullable(), lagSeconds: z.number().nullable() })),
  slots: z.array(open({ slot: z.string(), active: z.boolean(), walStatus: z.string().nullable(), safeWalBytes: z.number().nullable() })),
  measuredAtMs: z.number(),
  /** This node's WAL archiver; absent from older daemons. */
  archive: z
    .lazy(() => ArchiveReport)
    .nullable()
    .optional(),
}).meta({ id: 'ReplicationAnswer' });

/** POST /v1/internal/commands: the state machine's result (fsm/errors.ts); a rejection is an answer, not an HTTP error. */
export const ApplyResultBody = open({ ok: z.boolean(), error: open({ code: z.string(), message: z.string(), field: z.string().optional() }).optional() }).meta({
  id: 'ApplyResult',
});

/**
 * GET /v1/config: the cluster config as loaded, secrets redacted. Opaque here:
 * its schema is the config's own (src/config/schema.ts), which this contract does
 * not repeat.
 */
export const ConfigResponse = z
  .record(z.string(), z.unknown())
  .meta({ id: 'Config', description: 'the cluster config (src/config/schema.ts), secrets redacted' });

export const Health = open({
  node: nodeId,
  status: z.string(),
  role: z.string(),
  term: z.number(),
  primary: z.boolean(),
  replicaLagBytes: z.number().nullable(),
}).meta({ id: 'Health' });
export type Health = z.infer<typeof Health>;
export const LeaderCheck = open({ node: nodeId, role: z.string(), term: z.number() }).meta({ id: 'LeaderCheck' });
export const PrimaryCheck = open({ node: nodeId, primary: z.boolean() }).meta({ id: 'PrimaryCheck' });
export const ReplicaCheck = open({ node: nodeId, replica: z.boolean(), lagBytes: z.number().nullable() }).meta({ id: 'ReplicaCheck' });

export const ErrorBody = open({ error: open({ code: z.string(), message: z.string(), hint: z.string().optional() }) }).meta({
  id: 'Error',
  description: 'every error: a code, a message naming the field and the value, and a hint with the fix',
});

export type ReplicationAnswerBody = z.infer<typeof ReplicationAnswer>;
export type ApplyResultBody = z.infer<typeof ApplyResultBody>;
export type ConfigBody = z.infer<typeof ConfigResponse>;

/** Status: the newest complete backup, the one running, the newest failure, and the store's startup check on the answering node. */
export const BackupsSummary = open({
  store: z.string(),
  storeProblem: z.string().nullable(),
  newest: z.lazy(() => Backup).nullable(),
  running: z.lazy(() => Backup).nullable(),
  lastFailed: z.lazy(() => Backup).nullable(),
  count: z.number(),
}).meta({ id: 'BackupsSummary' });
export type BackupsSummary = z.infer<typeof BackupsSummary>;

/** A base backup as the state machine's index records it (docs/backups.md). */
export const Backup = open({
  id: z.string(),
  kind: z.enum(['full', 'incremental']),
  parent: z.string().nullable(),
  node: nodeId.nullable(),
  timeline: z.number(),
  startLsn: lsn,
  endLsn: lsn.nullable(),
  tarBytes: z.number().nullable(),
  storedBytes: z.number(),
  checksum: z.string().nullable(),
  prefix: z.string(),
  state: z.enum(['running', 'complete', 'failed']),
  failureReason: z.string().nullable(),
  verification: open({
    state: z.enum(['unverified', 'verified', 'failed']),
    atMs: z.number().nullable(),
    detail: z.string().nullable(),
    kind: z.string().nullable(),
  }),
  atMs: z.number(),
  finishedAtMs: z.number().nullable(),
}).meta({ id: 'Backup' });
export type Backup = z.infer<typeof Backup>;
export const BackupsResponse = open({ store: z.string(), backups: z.array(Backup) }).meta({
  id: 'BackupsResponse',
  description: 'oldest first; store: where the objects are',
});
export type BackupsResponse = z.infer<typeof BackupsResponse>;
/** How far a running backup has streamed, as its node sees it (node-local, not in the index). */
export const BackupProgress = open({
  node: nodeId,
  tarBytes: z.number(),
  totalBytes: z.number().nullable(),
  elapsedMs: z.number(),
}).meta({ id: 'BackupProgress', description: "tar bytes streamed so far, Postgres's estimate of the whole (null until known), time since it started" });
export type BackupProgress = z.infer<typeof BackupProgress>;
export const BackupResponse = open({
  backup: Backup,
  progress: BackupProgress.nullable().optional(),
}).meta({ id: 'BackupResponse', description: "progress: while it runs, from its node's worker; null when that node did not answer" });
export const BackupProgressResponse = open({ progress: BackupProgress.nullable() }).meta({
  id: 'BackupProgressResponse',
  description: 'null when the backup is not running on this node',
});
export type BackupResponse = z.infer<typeof BackupResponse>;
export const DeleteBackupResponse = open({ deleted: z.string() }).meta({
  id: 'DeleteBackupResponse',
  description: 'forgotten by the index; the leader deletes its objects shortly after',
});
export const VerifyBackupResponse = open({
  backup: Backup,
  verdict: open({ ok: z.boolean(), kind: z.enum(['checksums', 'restore']), detail: z.string() }),
}).meta({ id: 'VerifyBackupResponse', description: 'the verdict, also recorded in the index (backup.verification)' });
export type VerifyBackupResponse = z.infer<typeof VerifyBackupResponse>;

/** One node's WAL archiver (src/daemon/archive.ts): what it streams, and its failures since its daemon started. */
export const ArchiveReport = open({
  state: z.string(),
  timeline: z.number().nullable(),
  archivedLsn: lsn.nullable(),
  lagMs: z.number().nullable(),
  lastError: z.string().nullable(),
  gaps: z.number(),
  conflicts: z.number(),
  uploadedObjects: z.number(),
  uploadedBytes: z.number(),
}).meta({
  id: 'ArchiveReport',
  description:
    "state: archiving (streaming the primary's WAL into the store), retrying (it stopped on an error and resumes from the last stored position), conflict (the store holds different bytes for WAL it was about to store: archiving stopped), starting, standby or off; lagMs: how long the oldest WAL received but not stored has waited; gaps and conflicts since the daemon started",
});
export type ArchiveReport = z.infer<typeof ArchiveReport>;

/** The primary's archiver as status shows it, with the archive's replication slot there. */
export const ArchiveLive = ArchiveReport.extend({
  node: nodeId,
  slot: open({ slot: z.string(), walStatus: z.string().nullable(), safeWalBytes: z.number().nullable(), active: z.boolean() }).nullable(),
  measuredAtMs: z.number(),
}).meta({
  id: 'ArchiveLive',
  description:
    "slot: the archive's replication slot on the primary; walStatus unreserved or lost means WAL not yet archived is (about to be) freed: a gap in the archive",
});
export type ArchiveLive = z.infer<typeof ArchiveLive>;

export const RestoreWindow = open({
  backup: z.string(),
  timeline: z.number(),
  fromLsn: lsn,
  fromAtMs: z.number(),
  fromAt: z.string(),
  toLsn: lsn,
  toAtMs: z.number(),
  toAt: z.string(),
}).meta({
  id: 'RestoreWindow',
  description: 'from the end of the backup it starts from to the end of the archived WAL after it, on one timeline; fromAt and toAt: the instants as ISO 8601',
});
export type RestoreWindow = z.infer<typeof RestoreWindow>;

/** Status: what is restorable (from the index, the same on every node) and the primary's archiver (asked of its daemon). */
export const ArchiveSummary = open({
  timeline: z.number().nullable(),
  window: RestoreWindow.nullable(),
  reason: z.string().nullable(),
  note: z.string().nullable(),
  ranges: z.number(),
  timelineRanges: z.number(),
  live: ArchiveLive.nullable(),
  liveError: z.string().nullable(),
}).meta({
  id: 'ArchiveSummary',
  description:
    "window: the restore window on the newest timeline (null, with reason, when nothing is restorable); note: a gap beside it; ranges: the archive's ranges over all timelines, timelineRanges: on the newest (more than one: a gap); live: the primary's archiver, null with liveError when it could not be asked",
});
export type ArchiveSummary = z.infer<typeof ArchiveSummary>;

/** A named restore point (pg_create_restore_point on the primary), as recorded in the object store. */
export const RestorePoint = open({ name: z.string(), lsn, timeline: z.number(), atMs: z.number(), at: z.string() }).meta({
  id: 'RestorePoint',
  description: "where the restore point landed: its LSN, its timeline, and the primary's clock when it was made (atMs, and at as ISO 8601)",
});
export type RestorePoint = z.infer<typeof RestorePoint>;
export const RestorePointResponse = open({ restorePoint: RestorePoint }).meta({ id: 'RestorePointResponse' });
export type RestorePointResponse = z.infer<typeof RestorePointResponse>;
export const RestorePointsResponse = open({ store: z.string(), restorePoints: z.array(RestorePoint) }).meta({
  id: 'RestorePointsResponse',
  description: 'oldest first; store: where they are recorded',
});
export type RestorePointsResponse = z.infer<typeof RestorePointsResponse>;
