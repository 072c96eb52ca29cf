// The cluster state: the single source of truth for who may write (generation and
// lease), who the tenants are and where they live, and what snapshots and computes
// exist.
//
// The state is immutable: apply() returns a new state that shares the parts it did
// not change, so a rejected command trivially leaves the old state as it was.
// Collections are Maps keyed by id (typed lookups, no prototype keys). Their
// iteration order depends on arrival order, so nothing that is stored or encoded may
// depend on it: the snapshot codec sorts by id.

import { compareLsn, type Lsn } from './lsn.js';

export type NodeId = string;
export type TenantId = string;
export type BackupId = string;
export type ComputeId = string;

/** Bounds on every collection (TIGER_STYLE: put a limit on everything). */
export const LIMITS = {
  members: 32,
  tenants: 10_000, // including deleted ones until tenant.purge
  backups: 1_000,
  walSegments: 50_000,
  /** Ranges of the continuous WAL archive (walArchive.ranges), over all timelines. */
  walRanges: 1_000,
  /** Timelines whose history file is archived (walArchive.historyTimelines). */
  walHistories: 1_000,
  computes: 10_000,
  /** Promotion history keeps the newest entries only. */
  history: 1_000,
  /** wal.delete names at most this many segments per command. */
  walDeleteBatch: 1_000,
  /** Free text (reasons, details). */
  textChars: 1_000,
} as const;

export const PG_ROLES = ['primary', 'standby', 'fenced', 'recloning', 'absent'] as const;
export type PgRole = (typeof PG_ROLES)[number];

export interface MemberAddresses {
  /** host:port of the Raft peer transport. */
  readonly raft: string;
  readonly api: string;
  readonly proxy: string;
  readonly postgres: string;
}

export interface MemberHealth {
  readonly healthy: boolean;
  /** The reporter's time (member.add's time until the first report). */
  readonly reportedAtMs: number;
  readonly detail: string | null;
}

export interface Member {
  readonly id: NodeId;
  readonly addresses: MemberAddresses;
  readonly health: MemberHealth;
  readonly addedAtMs: number;
}

export interface LsnPositions {
  readonly received: Lsn;
  readonly flushed: Lsn;
  readonly replayed: Lsn;
}

/** One node's Postgres. Exists exactly for every member. */
export interface PgNode {
  readonly node: NodeId;
  /**
   * The role the cluster wants (level-triggered: the node's agent converges to it).
   * Changed only by pg.promote, pg.fence, pg.setRole and lease.release.
   */
  readonly role: PgRole;
  /** What the node's agent last observed (pg.report); 'absent' until the first report. */
  readonly reportedRole: PgRole;
  /** Reported timeline; 0 until the first report. */
  readonly timeline: number;
  /** Reported LSNs; '0/0' until the first report. */
  readonly lsn: LsnPositions;
  /** The agent's time of its last report; null until the first report. */
  readonly reportedAtMs: number | null;
}

/**
 * The primary's lease (I5). A duration, never an instant: the holder measures it from
 * when it sent the renewal, everyone else from when they saw it committed (a change
 * of renewalSeq). No wall-clock time is stored here on purpose.
 */
export interface Lease {
  readonly holder: NodeId;
  readonly generation: number;
  readonly durationMs: number;
  /** Raised by every committed lease.renew; 0 right after the promotion. */
  readonly renewalSeq: number;
}

/** One promotion, like a line of `patronictl history`. */
export interface HistoryEntry {
  readonly generation: number;
  readonly node: NodeId;
  readonly reason: string;
  /** The promoted node's LSN at promotion, as the proposer measured it. */
  readonly lsn: Lsn;
  readonly atMs: number;
}

export interface FailoverBlocked {
  readonly reason: string;
  readonly atMs: number;
}

/**
 * An operator's switchover for later (`ogel switchover --scheduled TIME`), kept
 * here rather than in the leader's memory so that it survives a leader change.
 * The instants are the proposer's wall clock, carried as data (I2): apply never
 * compares them with a clock; the leader's failover controller does.
 */
export interface ScheduledSwitchover {
  /** The standby to promote, or null for the most caught-up streaming standby at that time. */
  readonly to: NodeId | null;
  /** Not before this instant (ms since the epoch, the proposer's clock). */
  readonly notBeforeMs: number;
  /** When it was scheduled (the proposing command's atMs). */
  readonly requestedAtMs: number;
}

export interface PostgresState {
  readonly nodes: ReadonlyMap<NodeId, PgNode>;
  /** The node allowed to accept writes in this generation; null when there is none. */
  readonly primary: NodeId | null;
  /** The fencing token: raised by exactly 1 by every promotion; 0 = never promoted. */
  readonly generation: number;
  /** Exists exactly when primary does, held by it, for the current generation. */
  readonly lease: Lease | null;
  /** `ANY syncQuorum (syncStandbys...)`; sorted, never contains the primary. */
  readonly syncStandbys: readonly NodeId[];
  /** The k of ANY k: 1..syncStandbys.length, or 0 (asynchronous) when the set is empty. */
  readonly syncQuorum: number;
  /** Promotions, oldest first; only the newest LIMITS.history are kept. */
  readonly history: readonly HistoryEntry[];
  /** Set by the failover controller when automatic failover must refuse; shown by status. */
  readonly failoverBlocked: FailoverBlocked | null;
  /** A switchover the leader carries out at notBeforeMs; cleared by it, by a cancel, or by any promotion. */
  readonly scheduledSwitchover: ScheduledSwitchover | null;
}

export const TENANT_STATES = ['active', 'suspended', 'deleted'] as const;
export type TenantState = (typeof TENANT_STATES)[number];

export interface TenantLimits {
  readonly maxConnections: number;
  readonly rateLimitPerSec: number;
  /**
   * Server connections per pool the proxy keeps for this tenant, or null for the
   * proxy's defaultPoolSize (set by tenant.setLimits, command version 3; a tenant
   * created by tenant.create starts with null).
   */
  readonly poolSize: number | null;
  /**
   * How the proxy pools this tenant's clients, or null for the proxy's poolMode
   * (set by tenant.setLimits version 6; null before). A client's startup
   * options pool_mode=... still chooses for its own connection.
   */
  readonly poolMode: PoolMode | null;
}

export const POOL_MODES = ['session', 'transaction'] as const;
export type PoolMode = (typeof POOL_MODES)[number];

/** A SCRAM-SHA-256 verifier (RFC 7677), as Postgres stores it. Never a password. */
export interface ScramVerifier {
  readonly iterations: number;
  /** base64 */
  readonly salt: string;
  /** base64 of 32 bytes */
  readonly storedKey: string;
  /** base64 of 32 bytes */
  readonly serverKey: string;
}

export interface Tenant {
  readonly id: TenantId;
  /** Unique among tenants that are not deleted. */
  readonly name: string;
  /** Postgres database name; unique among tenants that are not deleted. */
  readonly database: string;
  /** Postgres role name; unique among tenants that are not deleted. */
  readonly role: string;
  readonly limits: TenantLimits;
  readonly state: TenantState;
  readonly placement: NodeId | null;
  readonly scram: ScramVerifier;
  readonly createdAtMs: number;
  readonly deletedAtMs: number | null;
}

export const BACKUP_STATES = ['running', 'complete', 'failed'] as const;
export type BackupState = (typeof BACKUP_STATES)[number];

/** A full backup copies everything; an incremental (PG17) only what changed since its parent. */
export const BACKUP_KINDS = ['full', 'incremental'] as const;
export type BackupKind = (typeof BACKUP_KINDS)[number];

export const VERIFICATION_STATES = ['unverified', 'verified', 'failed'] as const;
export type VerificationState = (typeof VERIFICATION_STATES)[number];
/** checksums: the stored parts re-read against their digests; restore: restored and started. */
export const VERIFICATION_KINDS = ['checksums', 'restore'] as const;
export type VerificationKind = (typeof VERIFICATION_KINDS)[number];

/** The latest verification of a complete backup (backup.verify); the latest result wins. */
export interface BackupVerification {
  readonly state: VerificationState;
  /** The verifier's time (the command's atMs); null while unverified. */
  readonly atMs: number | null;
  /** What was found; required when failed, null while unverified. */
  readonly detail: string | null;
  /** null while unverified. */
  readonly kind: VerificationKind | null;
}

export const UNVERIFIED: BackupVerification = { state: 'unverified', atMs: null, detail: null, kind: null };

/**
 * One base backup in the index (the FSM is the backup index: its objects are written
 * before it is recorded here and it is forgotten here before they are deleted).
 *
 * Shape since snapshot format 4 / command version 4. Records made by a version-1
 * backup.record (and format 1-3 snapshots) read as: kind 'full', parent null, node
 * null (not recorded then), tarBytes null, storedBytes = the old sizeBytes, prefix =
 * the old objectKey, failureReason null, unverified.
 */
export interface Backup {
  readonly id: BackupId;
  readonly kind: BackupKind;
  /** The backup an incremental was taken against (exists and is complete: I7); null for a full one. */
  readonly parent: BackupId | null;
  /** The node whose Postgres was copied; null for a record from version-1 backup.record, which did not say. */
  readonly node: NodeId | null;
  readonly timeline: number;
  readonly startLsn: Lsn;
  /** Known once the backup is complete. */
  readonly endLsn: Lsn | null;
  /** Uncompressed tar bytes; null until complete, and for version-1 records (never recorded). */
  readonly tarBytes: number | null;
  /** Bytes in the object store (compressed parts); 0 until complete (version 1: its sizeBytes). */
  readonly storedBytes: number;
  /** 'algorithm:hex', e.g. 'sha256:...'; known once complete. */
  readonly checksum: string | null;
  /**
   * Object-key prefix of everything the backup stored, normally
   * `<cluster>/basebackups/<id>/`; a version-1 record's objectKey (one object).
   */
  readonly prefix: string;
  readonly state: BackupState;
  /** Why it failed (backup.update version 4); null otherwise, and for a failure recorded by version 1. */
  readonly failureReason: string | null;
  readonly verification: BackupVerification;
  /** When it was recorded (started). */
  readonly atMs: number;
  /** When it reached complete or failed. */
  readonly finishedAtMs: number | null;
}

export interface WalSegment {
  /** 24 uppercase hex digits (timeline, log, segment), optionally '.partial'. */
  readonly name: string;
  readonly timeline: number;
  readonly startLsn: Lsn;
  readonly endLsn: Lsn;
  readonly sizeBytes: number;
  readonly checksum: string;
  readonly objectKey: string;
  readonly atMs: number;
}

/**
 * A stretch of one timeline's WAL that is in the object store without a gap
 * (the continuous archive). Every instant is the proposer's wall clock, carried
 * as data (I2): apply never compares them with a clock.
 */
export interface WalRange {
  /** 1..0xffffffff. */
  readonly timeline: number;
  /** The first archived byte. */
  readonly startLsn: Lsn;
  /** Archived up to here, exclusive; at or after startLsn (equal: nothing yet). */
  readonly endLsn: Lsn;
  /**
   * When the range began: the atMs of the report whose start is the range's start
   * (with merged ranges, the earlier-starting one's). wal.forget moving the start
   * later leaves it as it was.
   */
  readonly startAtMs: number;
  /** When endLsn was reached (the atMs of the report that last moved it): the newest restorable instant on this range. */
  readonly endAtMs: number;
}

/**
 * The index of the continuous WAL archive (snapshot format 6), kept small however
 * long the cluster runs: ranges per timeline, not one entry per segment. Written
 * by wal.archived, wal.history and wal.forget (command version 7).
 */
export interface WalArchiveState {
  /**
   * Sorted by (timeline, startLsn); ranges of one timeline never overlap or touch
   * (touching ones are merged), so a gap in the archive shows as two ranges. At
   * most LIMITS.walRanges.
   */
  readonly ranges: readonly WalRange[];
  /**
   * Timelines whose history file is archived, ascending, each at least 2 (timeline 1
   * has none). A timeline > 1 is restorable only when its history is archived.
   * At most LIMITS.walHistories.
   */
  readonly historyTimelines: readonly number[];
}

export const COMPUTE_STATES = ['starting', 'running', 'suspending', 'suspended', 'failed'] as const;
export type ComputeState = (typeof COMPUTE_STATES)[number];

export interface Compute {
  readonly id: ComputeId;
  /** The tenant it serves; exactly one of tenantId and branchOf is set. */
  readonly tenantId: TenantId | null;
  /** A branch: the tenant whose data it starts from. */
  readonly branchOf: TenantId | null;
  /** A complete backup it starts from, or null. */
  readonly sourceSnapshot: BackupId | null;
  /** Recovery target, or null for the latest. */
  readonly sourceLsn: Lsn | null;
  readonly state: ComputeState;
  /** host:port; set while running. */
  readonly address: string | null;
  /** Never decreases (compute.update keeps the maximum). */
  readonly lastActivityMs: number;
  readonly createdAtMs: number;
}

export interface Maintenance {
  /** No automatic failover while paused (pg.promote with automatic: true is refused). */
  readonly paused: boolean;
  readonly reason: string | null;
  readonly atMs: number | null;
}

export interface ClusterState {
  readonly members: ReadonlyMap<NodeId, Member>;
  readonly postgres: PostgresState;
  readonly tenants: ReadonlyMap<TenantId, Tenant>;
  readonly backups: ReadonlyMap<BackupId, Backup>;
  /** One entry per segment (wal.record, wal.delete): kept for old logs; nothing proposes them now. */
  readonly walSegments: ReadonlyMap<string, WalSegment>;
  readonly walArchive: WalArchiveState;
  readonly computes: ReadonlyMap<ComputeId, Compute>;
  readonly maintenance: Maintenance;
}

export function initialState(): ClusterState {
  return {
    members: new Map(),
    postgres: {
      nodes: new Map(),
      primary: null,
      generation: 0,
      lease: null,
      syncStandbys: [],
      syncQuorum: 0,
      history: [],
      failoverBlocked: null,
      scheduledSwitchover: null,
    },
    tenants: new Map(),
    backups: new Map(),
    walSegments: new Map(),
    walArchive: { ranges: [], historyTimelines: [] },
    computes: new Map(),
    maintenance: { paused: false, reason: null, atMs: null },
  };
}

/** The archived WAL ranges of `timeline`, oldest first. */
export function walRangesOf(s: ClusterState, timeline: number): readonly WalRange[] {
  return s.walArchive.ranges.filter((r) => r.timeline === timeline);
}

/**
 * The range of `timeline` holding all WAL from `fromLsn` up to `toLsn` (a restore
 * from a backup starting at fromLsn can replay to toLsn without a gap), or undefined.
 */
export function walRangeCovering(s: ClusterState, timeline: number, fromLsn: Lsn, toLsn: Lsn): WalRange | undefined {
  return s.walArchive.ranges.find((r) => r.timeline === timeline && compareLsn(r.startLsn, fromLsn) <= 0 && compareLsn(toLsn, r.endLsn) <= 0);
}

/** A copy of `m` with `key` set to `value` (the original is not touched). */
export function mapWith<K, V>(m: ReadonlyMap<K, V>, key: K, value: V): ReadonlyMap<K, V> {
  const out = new Map(m);
  out.set(key, value);
  return out;
}

/** A copy of `m` without `keys`. */
export function mapWithout<K, V>(m: ReadonlyMap<K, V>, ...keys: K[]): ReadonlyMap<K, V> {
  const out = new Map(m);
  for (const k of keys) out.delete(k);
  return out;
}

/** Values sorted by key: the only order in which a Map may be observed where order could leak. */
export function sortedValues<V>(m: ReadonlyMap<string, V>): V[] {
  return [...m.keys()].sort().map((k) => m.get(k)!);
}
