// The commands: a discriminated union on `type`, each `{ v, type, atMs, ...fields }`.
//
// `atMs` is the proposer's clock, carried as data (I2: apply reads no clock). The
// version `v` is the command format: changing the fields or the meaning of a command
// means a new version with a migration (COMMAND_MIGRATIONS), never an edit of
// version 1, because a log written today must replay to the same state in every
// later build. A new command type is a new version too, because of what an older
// build does with it (see COMMAND_VERSION).
//
// validateCommand checks the shape and ranges of a command (independent of the
// state) and returns a normalized copy: only known fields, LSNs in canonical text,
// optional nullable fields made explicit, sets sorted. apply() checks it against the
// state.

import { FieldError, Fields, WAL_NAME_RE, isPlainObject, items, show } from './fields.js';
import { reject, type ValidationError } from './errors.js';
import { compareLsn, type Lsn } from './lsn.js';
import {
  BACKUP_STATES,
  COMPUTE_STATES,
  LIMITS,
  PG_ROLES,
  type BackupState,
  type ComputeState,
  type LsnPositions,
  type MemberAddresses,
  type NodeId,
  type PgRole,
  type ScramVerifier,
  type TenantLimits,
} from './state.js';

/**
 * The newest command version this build reads.
 *
 * Version 2 added pg.scheduleSwitchover and changed no version-1 command. A build
 * that knows only version 1 would reject that command as an unknown type while
 * upgraded replicas apply it: the replicas would diverge silently (I2). Written as
 * version 2, it makes such a build stop with UnsupportedVersionError instead (see
 * machine.ts), which is the failure the version rules are for.
 *
 * Every command is written with the version that introduced its type
 * (commandVersionOf), not with COMMAND_VERSION: the version-1 commands that every
 * node proposes all the time (lease renewals, reports) stay readable by a
 * version-1 node during a rolling upgrade, and only a switchover scheduled before
 * every node runs this build stops the older ones.
 *
 * Version 3 added tenant.setLimits (and with it TenantLimits.poolSize) for the same
 * reason, and changed no older command: a version-1 tenant.create still creates a
 * tenant with the limits it names and poolSize null (the proxy's default).
 */
export const COMMAND_VERSION = 3;

/** Command types added after version 1, and the version that added each. */
const TYPE_VERSIONS: Readonly<Partial<Record<CommandType, number>>> = { 'pg.scheduleSwitchover': 2, 'tenant.setLimits': 3 };

/** The version a command of this type is written with: the version that introduced the type. */
export function commandVersionOf(type: CommandType): number {
  return TYPE_VERSIONS[type] ?? 1;
}

/**
 * COMMAND_MIGRATIONS[i] turns a command of version i + 1 into version i + 2. Each must
 * be pure and total on any object (it runs inside apply on every replica, before
 * validation).
 */
const COMMAND_MIGRATIONS: readonly ((c: Record<string, unknown>) => Record<string, unknown>)[] = [
  // 1 -> 2: version 2 only added a command type; every version-1 command means the
  // same in version 2, so it passes unchanged (and keeps v: 1 once normalized).
  (c) => c,
  // 2 -> 3: version 3 only added tenant.setLimits; older commands pass unchanged.
  (c) => c,
];
if (COMMAND_MIGRATIONS.length !== COMMAND_VERSION - 1) throw new Error('COMMAND_VERSION was bumped without its migration');

const VERSION_DESC = `the command version 1${Object.entries(TYPE_VERSIONS)
  .map(([type, v]) => `, or ${v} for ${type}`)
  .join('')}`;

interface Base<T extends string, V extends number = 1> {
  readonly v: V;
  readonly type: T;
  /** The proposer's clock. */
  readonly atMs: number;
}

// --- members --------------------------------------------------------------------------

export interface MemberAdd extends Base<'member.add'> {
  readonly id: NodeId;
  readonly addresses: MemberAddresses;
}
export interface MemberRemove extends Base<'member.remove'> {
  readonly id: NodeId;
}
export interface MemberHealthReport extends Base<'member.health'> {
  readonly id: NodeId;
  readonly healthy: boolean;
  readonly detail: string | null;
}

// --- postgres, generation, lease ----------------------------------------------------

/** An agent's observation of its own Postgres. */
export interface PgReport extends Base<'pg.report'> {
  readonly node: NodeId;
  readonly role: PgRole;
  readonly timeline: number;
  readonly lsn: LsnPositions;
}
/** Makes `node` the primary of generation state.generation + 1, with a fresh lease. */
export interface PgPromote extends Base<'pg.promote'> {
  readonly node: NodeId;
  /** Must equal state.generation + 1: a promotion decided on a stale view is refused. */
  readonly generation: number;
  readonly reason: string;
  /** The candidate's LSN when promoted (recorded in history). */
  readonly lsn: Lsn;
  readonly leaseDurationMs: number;
  /** True when the failover controller decided it; refused while maintenance is paused. */
  readonly automatic: boolean;
  /**
   * While another node holds a lease, the lease the proposer observed lapsing: its
   * holder and renewal sequence. A renewal committed after that observation voids
   * the promotion (I3, I5): the proposer's clock started at the old renewal, the
   * holder's at the new one, so the holder may still be writing.
   */
  readonly lapsedLease: { readonly holder: NodeId; readonly renewalSeq: number } | null;
}
/** Sets the wanted role of a node that is not the primary (not 'primary': use pg.promote). */
export interface PgSetRole extends Base<'pg.setRole'> {
  readonly node: NodeId;
  readonly role: Exclude<PgRole, 'primary'>;
  readonly generation: number;
}
/** Fences a node; fencing the primary leaves the cluster without one (and without a lease). */
export interface PgFence extends Base<'pg.fence'> {
  readonly node: NodeId;
  readonly generation: number;
  readonly reason: string;
}
export interface LeaseRenew extends Base<'lease.renew'> {
  readonly holder: NodeId;
  readonly generation: number;
  /** Must exceed lease.renewalSeq. */
  readonly seq: number;
}
/** The holder gives up its lease (planned switchover): no primary until the next promotion. */
export interface LeaseRelease extends Base<'lease.release'> {
  readonly holder: NodeId;
  readonly generation: number;
}
export interface PgSyncStandbys extends Base<'pg.syncStandbys'> {
  /** Sorted, distinct. Empty means asynchronous replication (quorum 0). */
  readonly nodes: readonly NodeId[];
  readonly quorum: number;
  readonly generation: number;
}
export interface PgFailoverBlocked extends Base<'pg.failoverBlocked'> {
  /** Why automatic failover refuses, or null to clear. */
  readonly reason: string | null;
  readonly generation: number;
}
/**
 * `ogel switchover --scheduled TIME` (and `--cancel`): the leader's failover
 * controller runs the switchover once its own clock reaches notBeforeMs. Version 2
 * (see COMMAND_VERSION).
 */
export interface PgScheduleSwitchover extends Base<'pg.scheduleSwitchover', 2> {
  /** The standby to promote, or null for the most caught-up one at that time; null in a cancel. */
  readonly to: NodeId | null;
  /** Not before this instant (ms since the epoch, the proposer's clock); null cancels. */
  readonly notBeforeMs: number | null;
  readonly generation: number;
}

// --- tenants --------------------------------------------------------------------------

/** The limits tenant.create sets; poolSize came later (tenant.setLimits) and starts null. */
export type TenantCreateLimits = Omit<TenantLimits, 'poolSize'>;

export interface TenantCreate extends Base<'tenant.create'> {
  readonly id: string;
  readonly name: string;
  readonly database: string;
  readonly role: string;
  readonly limits: TenantCreateLimits;
  readonly scram: ScramVerifier;
}
/** Marks the tenant deleted and frees its name, database and role names. */
export interface TenantDelete extends Base<'tenant.delete'> {
  readonly id: string;
}
/** Removes a deleted tenant's record for good (once its database is dropped). */
export interface TenantPurge extends Base<'tenant.purge'> {
  readonly id: string;
}
export interface TenantSetState extends Base<'tenant.setState'> {
  readonly id: string;
  readonly state: 'active' | 'suspended';
}
/**
 * Replaces a live tenant's limits, all three given (poolSize null: the proxy's
 * default). Version 3 (see COMMAND_VERSION).
 */
export interface TenantSetLimits extends Base<'tenant.setLimits', 3> {
  readonly id: string;
  readonly limits: TenantLimits;
}
export interface TenantPlace extends Base<'tenant.place'> {
  readonly id: string;
  readonly node: NodeId | null;
}

// --- snapshot index -------------------------------------------------------------------

export interface BackupRecord extends Base<'backup.record'> {
  readonly id: string;
  readonly timeline: number;
  readonly startLsn: Lsn;
  readonly endLsn: Lsn | null;
  readonly sizeBytes: number;
  readonly checksum: string | null;
  readonly objectKey: string;
  readonly state: BackupState;
}
export interface BackupUpdate extends Base<'backup.update'> {
  readonly id: string;
  readonly state: BackupState;
  readonly endLsn?: Lsn;
  readonly sizeBytes?: number;
  readonly checksum?: string;
}
export interface BackupDelete extends Base<'backup.delete'> {
  readonly id: string;
}
/** Idempotent: recording an identical segment again succeeds with existed: true. */
export interface WalRecord extends Base<'wal.record'> {
  readonly name: string;
  readonly timeline: number;
  readonly startLsn: Lsn;
  readonly endLsn: Lsn;
  readonly sizeBytes: number;
  readonly checksum: string;
  readonly objectKey: string;
}
export interface WalDelete extends Base<'wal.delete'> {
  /** Sorted, distinct, 1..LIMITS.walDeleteBatch. */
  readonly names: readonly string[];
}

// --- computes -------------------------------------------------------------------------

export interface ComputeCreate extends Base<'compute.create'> {
  readonly id: string;
  readonly tenantId: string | null;
  readonly branchOf: string | null;
  readonly sourceSnapshot: string | null;
  readonly sourceLsn: Lsn | null;
}
export interface ComputeUpdate extends Base<'compute.update'> {
  readonly id: string;
  readonly state?: ComputeState;
  /** null clears it. Leaving 'running' without an address given clears it too. */
  readonly address?: string | null;
  readonly lastActivityMs?: number;
}
export interface ComputeDelete extends Base<'compute.delete'> {
  readonly id: string;
}

// --- maintenance ----------------------------------------------------------------------

export interface MaintenanceSet extends Base<'maintenance.set'> {
  readonly paused: boolean;
  readonly reason: string | null;
}

export type Command =
  | MemberAdd
  | MemberRemove
  | MemberHealthReport
  | PgReport
  | PgPromote
  | PgSetRole
  | PgFence
  | LeaseRenew
  | LeaseRelease
  | PgSyncStandbys
  | PgFailoverBlocked
  | PgScheduleSwitchover
  | TenantCreate
  | TenantDelete
  | TenantPurge
  | TenantSetState
  | TenantSetLimits
  | TenantPlace
  | BackupRecord
  | BackupUpdate
  | BackupDelete
  | WalRecord
  | WalDelete
  | ComputeCreate
  | ComputeUpdate
  | ComputeDelete
  | MaintenanceSet;

export type CommandType = Command['type'];
export type CommandOf<T extends CommandType> = Extract<Command, { type: T }>;

// --- validation -----------------------------------------------------------------------

const TEXT = { maxChars: LIMITS.textChars };
const MAX_GENERATION = Number.MAX_SAFE_INTEGER;
const MAX_TIMELINE = 0xffffffff;
const MAX_BYTES = Number.MAX_SAFE_INTEGER;
/** Leases outside 100 ms .. 10 min are surely a unit mistake. */
export const LEASE_DURATION_MS = { min: 100, max: 600_000 } as const;
/** Postgres' default is 4096; fewer is refused as too weak. */
export const SCRAM_ITERATIONS = { min: 4096, max: 10_000_000 } as const;
export const TENANT_LIMITS = {
  maxConnections: { min: 1, max: 10_000 },
  rateLimitPerSec: { min: 1, max: 1_000_000 },
  /** Server connections per pool; above maxConnections is allowed but never used. */
  poolSize: { min: 1, max: 10_000 },
} as const;

const RESERVED_DATABASES = ['postgres', 'template0', 'template1'];
const RESERVED_ROLES = ['postgres', 'public', 'none', 'current_user', 'session_user', 'current_role', 'system_user'];

type Parser<T extends CommandType> = (x: unknown) => CommandOf<T>;

function fieldsOf(x: unknown, keys: readonly string[], hints?: Readonly<Record<string, string>>): Fields {
  return Fields.of(x, '', ['v', 'type', 'atMs', ...keys], hints);
}

function base<T extends CommandType>(f: Fields, type: T): Base<T> {
  return { v: 1, type, atMs: f.timeMs('atMs') };
}

function generation(f: Fields, key = 'generation'): number {
  return f.int(key, 0, MAX_GENERATION, '(the fencing token)');
}

function sortedDistinct(list: string[], path: string): string[] {
  const sorted = [...list].sort();
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i] === sorted[i - 1]) throw new FieldError(path, `lists ${JSON.stringify(sorted[i])} twice; each may appear once`);
  }
  return sorted;
}

/** Adapts a Fields reader to the items of an array, with the item's path in messages. */
function item<T>(read: (f: Fields, key: string) => T): (v: unknown, path: string) => T {
  return (v, path) => {
    try {
      return read(Fields.of({ item: v }, '', ['item']), 'item');
    } catch (e) {
      if (e instanceof FieldError) throw new FieldError(path, e.detail, e.code);
      throw e;
    }
  };
}

const idItem = item((f, k) => f.id(k));
const walNameItem = item((f, k) => f.walName(k));

function walTimeline(f: Fields, name: string): number {
  const timeline = f.int('timeline', 1, MAX_TIMELINE);
  const fromName = parseInt(WAL_NAME_RE.exec(name)![1]!, 16);
  if (timeline !== fromName) {
    throw new FieldError(f.at('timeline'), `${timeline} does not match the segment name ${JSON.stringify(name)}, which is on timeline ${fromName}`);
  }
  return timeline;
}

const parsers: { [T in CommandType]: Parser<T> } = {
  'member.add': (x) => {
    const f = fieldsOf(x, ['id', 'addresses']);
    const a = f.obj('addresses', ['raft', 'api', 'proxy', 'postgres']);
    const addresses = { raft: a.address('raft'), api: a.address('api'), proxy: a.address('proxy'), postgres: a.address('postgres') };
    const seen = new Map<string, string>();
    for (const [k, v] of Object.entries(addresses)) {
      const other = seen.get(v);
      if (other !== undefined) throw new FieldError(a.at(k), `${JSON.stringify(v)} is also addresses.${other}; each service needs its own host:port`);
      seen.set(v, k);
    }
    return { ...base(f, 'member.add'), id: f.id('id'), addresses };
  },
  'member.remove': (x) => {
    const f = fieldsOf(x, ['id']);
    return { ...base(f, 'member.remove'), id: f.id('id') };
  },
  'member.health': (x) => {
    const f = fieldsOf(x, ['id', 'healthy', 'detail']);
    return { ...base(f, 'member.health'), id: f.id('id'), healthy: f.bool('healthy'), detail: f.nullable('detail', (k) => f.text(k, TEXT)) };
  },
  'pg.report': (x) => {
    const f = fieldsOf(x, ['node', 'role', 'timeline', 'lsn']);
    const l = f.obj('lsn', ['received', 'flushed', 'replayed']);
    return {
      ...base(f, 'pg.report'),
      node: f.id('node'),
      role: f.oneOf('role', PG_ROLES),
      timeline: f.int('timeline', 0, MAX_TIMELINE, '(0 when not known)'),
      lsn: { received: l.lsn('received'), flushed: l.lsn('flushed'), replayed: l.lsn('replayed') },
    };
  },
  'pg.promote': (x) => {
    const f = fieldsOf(x, ['node', 'generation', 'reason', 'lsn', 'leaseDurationMs', 'automatic', 'lapsedLease']);
    return {
      ...base(f, 'pg.promote'),
      node: f.id('node'),
      generation: f.int('generation', 1, MAX_GENERATION, '(the current generation + 1)'),
      reason: f.text('reason', TEXT),
      lsn: f.lsn('lsn'),
      leaseDurationMs: f.int('leaseDurationMs', LEASE_DURATION_MS.min, LEASE_DURATION_MS.max, 'ms'),
      automatic: f.bool('automatic'),
      // Absent in commands written before the field existed: read as null.
      lapsedLease: f.nullable('lapsedLease', (k) => {
        const l = f.obj(k, ['holder', 'renewalSeq']);
        return { holder: l.id('holder'), renewalSeq: l.int('renewalSeq', 0, Number.MAX_SAFE_INTEGER) };
      }),
    };
  },
  'pg.setRole': (x) => {
    const f = fieldsOf(x, ['node', 'role', 'generation']);
    if (f.raw('role', 'a role') === 'primary') {
      throw new FieldError(f.at('role'), '"primary" cannot be set directly; use pg.promote, which raises the generation');
    }
    const role = f.oneOf('role', ['standby', 'fenced', 'recloning', 'absent'] as const);
    return { ...base(f, 'pg.setRole'), node: f.id('node'), role, generation: generation(f) };
  },
  'pg.fence': (x) => {
    const f = fieldsOf(x, ['node', 'generation', 'reason']);
    return { ...base(f, 'pg.fence'), node: f.id('node'), generation: generation(f), reason: f.text('reason', TEXT) };
  },
  'lease.renew': (x) => {
    const f = fieldsOf(x, ['holder', 'generation', 'seq']);
    return { ...base(f, 'lease.renew'), holder: f.id('holder'), generation: generation(f), seq: f.int('seq', 1, Number.MAX_SAFE_INTEGER) };
  },
  'lease.release': (x) => {
    const f = fieldsOf(x, ['holder', 'generation']);
    return { ...base(f, 'lease.release'), holder: f.id('holder'), generation: generation(f) };
  },
  'pg.syncStandbys': (x) => {
    const f = fieldsOf(x, ['nodes', 'quorum', 'generation']);
    const nodes = sortedDistinct(items(f.array('nodes', LIMITS.members), f.at('nodes'), idItem), f.at('nodes'));
    const quorum = nodes.length === 0
      ? f.int('quorum', 0, 0, '(no synchronous standbys means asynchronous replication)')
      : f.int('quorum', 1, nodes.length, `(the k of ANY k over the ${nodes.length} listed nodes)`);
    return { ...base(f, 'pg.syncStandbys'), nodes, quorum, generation: generation(f) };
  },
  'pg.failoverBlocked': (x) => {
    const f = fieldsOf(x, ['reason', 'generation']);
    return { ...base(f, 'pg.failoverBlocked'), reason: f.nullable('reason', (k) => f.text(k, TEXT)), generation: generation(f) };
  },
  'pg.scheduleSwitchover': (x) => {
    const f = fieldsOf(x, ['to', 'notBeforeMs', 'generation']);
    // Both must be present, null or not: a missing notBeforeMs read as null would
    // turn a malformed schedule into a cancel.
    const notBeforeMs = f.raw('notBeforeMs', 'the time to switch over (ms since the epoch), or null to cancel') === null ? null : f.timeMs('notBeforeMs');
    const to = f.raw('to', 'the standby to promote (a node id), or null for the most caught-up one') === null ? null : f.id('to');
    if (notBeforeMs === null && to !== null) {
      throw new FieldError(f.at('to'), `${show(to)} with notBeforeMs: null (a cancel); a cancel names no target, so expected null`);
    }
    return { v: 2, type: 'pg.scheduleSwitchover', atMs: f.timeMs('atMs'), to, notBeforeMs, generation: generation(f) };
  },
  'tenant.create': (x) => {
    const f = fieldsOf(x, ['id', 'name', 'database', 'role', 'limits', 'scram'], {
      password: 'a password is never accepted or stored; send a SCRAM-SHA-256 verifier in "scram" ({ iterations, salt, storedKey, serverKey })',
    });
    const database = f.pgIdent('database');
    if (RESERVED_DATABASES.includes(database)) f.fail('database', database, `a database name other than ${RESERVED_DATABASES.join(', ')} (reserved)`);
    const role = f.pgIdent('role');
    if (RESERVED_ROLES.includes(role) || role.startsWith('pg_')) f.fail('role', role, `a role name not starting with "pg_" and other than ${RESERVED_ROLES.join(', ')} (reserved by Postgres)`);
    const l = f.obj('limits', ['maxConnections', 'rateLimitPerSec']);
    const s = f.obj('scram', ['iterations', 'salt', 'storedKey', 'serverKey'], {
      password: 'a password is never accepted or stored; send only the verifier',
    });
    return {
      ...base(f, 'tenant.create'),
      id: f.id('id'),
      name: f.pgIdent('name'),
      database,
      role,
      limits: {
        maxConnections: l.int('maxConnections', TENANT_LIMITS.maxConnections.min, TENANT_LIMITS.maxConnections.max),
        rateLimitPerSec: l.int('rateLimitPerSec', TENANT_LIMITS.rateLimitPerSec.min, TENANT_LIMITS.rateLimitPerSec.max, 'queries per second'),
      },
      scram: {
        iterations: s.int('iterations', SCRAM_ITERATIONS.min, SCRAM_ITERATIONS.max),
        salt: s.base64('salt', 8, 64),
        storedKey: s.base64('storedKey', 32, 32),
        serverKey: s.base64('serverKey', 32, 32),
      },
    };
  },
  'tenant.setLimits': (x) => {
    const f = fieldsOf(x, ['id', 'limits']);
    const l = f.obj('limits', ['maxConnections', 'rateLimitPerSec', 'poolSize']);
    // poolSize must be present, null or not: a missing one read as null would turn a
    // malformed command into "back to the default".
    const poolSize = l.raw('poolSize', `server connections per pool (${TENANT_LIMITS.poolSize.min}-${TENANT_LIMITS.poolSize.max}), or null for the proxy's default`) === null
      ? null
      : l.int('poolSize', TENANT_LIMITS.poolSize.min, TENANT_LIMITS.poolSize.max, 'server connections per pool, or null for the proxy\'s default');
    return {
      v: 3,
      type: 'tenant.setLimits',
      atMs: f.timeMs('atMs'),
      id: f.id('id'),
      limits: {
        maxConnections: l.int('maxConnections', TENANT_LIMITS.maxConnections.min, TENANT_LIMITS.maxConnections.max),
        rateLimitPerSec: l.int('rateLimitPerSec', TENANT_LIMITS.rateLimitPerSec.min, TENANT_LIMITS.rateLimitPerSec.max, 'queries per second'),
        poolSize,
      },
    };
  },
  'tenant.delete': (x) => {
    const f = fieldsOf(x, ['id']);
    return { ...base(f, 'tenant.delete'), id: f.id('id') };
  },
  'tenant.purge': (x) => {
    const f = fieldsOf(x, ['id']);
    return { ...base(f, 'tenant.purge'), id: f.id('id') };
  },
  'tenant.setState': (x) => {
    const f = fieldsOf(x, ['id', 'state']);
    if (f.raw('state', 'a state') === 'deleted') {
      throw new FieldError(f.at('state'), '"deleted" is set by tenant.delete; expected "active" or "suspended"');
    }
    const state = f.oneOf('state', ['active', 'suspended'] as const);
    return { ...base(f, 'tenant.setState'), id: f.id('id'), state };
  },
  'tenant.place': (x) => {
    const f = fieldsOf(x, ['id', 'node']);
    return { ...base(f, 'tenant.place'), id: f.id('id'), node: f.nullable('node', (k) => f.id(k)) };
  },
  'backup.record': (x) => {
    const f = fieldsOf(x, ['id', 'timeline', 'startLsn', 'endLsn', 'sizeBytes', 'checksum', 'objectKey', 'state']);
    const c: BackupRecord = {
      ...base(f, 'backup.record'),
      id: f.id('id'),
      timeline: f.int('timeline', 1, MAX_TIMELINE),
      startLsn: f.lsn('startLsn'),
      endLsn: f.nullable('endLsn', (k) => f.lsn(k)),
      sizeBytes: f.int('sizeBytes', 0, MAX_BYTES, 'bytes'),
      checksum: f.nullable('checksum', (k) => f.checksum(k)),
      objectKey: f.objectKey('objectKey'),
      state: f.oneOf('state', BACKUP_STATES),
    };
    if (c.endLsn !== null && compareLsn(c.endLsn, c.startLsn) < 0) {
      throw new FieldError('endLsn', `${c.endLsn} is before startLsn ${c.startLsn}; expected an LSN at or after it`);
    }
    if (c.state === 'complete' && (c.endLsn === null || c.checksum === null)) {
      throw new FieldError(c.endLsn === null ? 'endLsn' : 'checksum', 'is required when state is "complete"');
    }
    return c;
  },
  'backup.update': (x) => {
    const f = fieldsOf(x, ['id', 'state', 'endLsn', 'sizeBytes', 'checksum']);
    const c: { -readonly [K in keyof BackupUpdate]: BackupUpdate[K] } = { ...base(f, 'backup.update'), id: f.id('id'), state: f.oneOf('state', BACKUP_STATES) };
    const endLsn = f.optional('endLsn', (k) => f.lsn(k));
    if (endLsn !== undefined) c.endLsn = endLsn;
    const sizeBytes = f.optional('sizeBytes', (k) => f.int(k, 0, MAX_BYTES, 'bytes'));
    if (sizeBytes !== undefined) c.sizeBytes = sizeBytes;
    const checksum = f.optional('checksum', (k) => f.checksum(k));
    if (checksum !== undefined) c.checksum = checksum;
    return c;
  },
  'backup.delete': (x) => {
    const f = fieldsOf(x, ['id']);
    return { ...base(f, 'backup.delete'), id: f.id('id') };
  },
  'wal.record': (x) => {
    const f = fieldsOf(x, ['name', 'timeline', 'startLsn', 'endLsn', 'sizeBytes', 'checksum', 'objectKey']);
    const name = f.walName('name');
    const c: WalRecord = {
      ...base(f, 'wal.record'),
      name,
      timeline: walTimeline(f, name),
      startLsn: f.lsn('startLsn'),
      endLsn: f.lsn('endLsn'),
      sizeBytes: f.int('sizeBytes', 0, MAX_BYTES, 'bytes'),
      checksum: f.checksum('checksum'),
      objectKey: f.objectKey('objectKey'),
    };
    if (compareLsn(c.endLsn, c.startLsn) < 0) {
      throw new FieldError('endLsn', `${c.endLsn} is before startLsn ${c.startLsn}; expected an LSN at or after it`);
    }
    return c;
  },
  'wal.delete': (x) => {
    const f = fieldsOf(x, ['names']);
    const arr = f.array('names', LIMITS.walDeleteBatch);
    if (arr.length === 0) throw new FieldError(f.at('names'), `is empty; expected 1-${LIMITS.walDeleteBatch} segment names`);
    return { ...base(f, 'wal.delete'), names: sortedDistinct(items(arr, f.at('names'), walNameItem), f.at('names')) };
  },
  'compute.create': (x) => {
    const f = fieldsOf(x, ['id', 'tenantId', 'branchOf', 'sourceSnapshot', 'sourceLsn']);
    const tenantId = f.nullable('tenantId', (k) => f.id(k));
    const branchOf = f.nullable('branchOf', (k) => f.id(k));
    if ((tenantId === null) === (branchOf === null)) {
      throw new FieldError('tenantId', `${tenantId === null ? 'neither' : 'both'} tenantId and branchOf given; expected exactly one: tenantId (the tenant it serves) or branchOf (the tenant a branch starts from)`);
    }
    return {
      ...base(f, 'compute.create'),
      id: f.id('id'),
      tenantId,
      branchOf,
      sourceSnapshot: f.nullable('sourceSnapshot', (k) => f.id(k)),
      sourceLsn: f.nullable('sourceLsn', (k) => f.lsn(k)),
    };
  },
  'compute.update': (x) => {
    const f = fieldsOf(x, ['id', 'state', 'address', 'lastActivityMs']);
    const c: { -readonly [K in keyof ComputeUpdate]: ComputeUpdate[K] } = { ...base(f, 'compute.update'), id: f.id('id') };
    const state = f.optional('state', (k) => f.oneOf(k, COMPUTE_STATES));
    if (state !== undefined) c.state = state;
    const address = f.optionalNullable('address', (k) => f.address(k));
    if (address !== undefined) c.address = address;
    const lastActivityMs = f.optional('lastActivityMs', (k) => f.timeMs(k));
    if (lastActivityMs !== undefined) c.lastActivityMs = lastActivityMs;
    if (state === undefined && address === undefined && lastActivityMs === undefined) {
      throw new FieldError('', 'changes nothing; expected at least one of state, address, lastActivityMs');
    }
    return c;
  },
  'compute.delete': (x) => {
    const f = fieldsOf(x, ['id']);
    return { ...base(f, 'compute.delete'), id: f.id('id') };
  },
  'maintenance.set': (x) => {
    const f = fieldsOf(x, ['paused', 'reason']);
    return { ...base(f, 'maintenance.set'), paused: f.bool('paused'), reason: f.nullable('reason', (k) => f.text(k, TEXT)) };
  },
};

export const COMMAND_TYPES: readonly CommandType[] = Object.keys(parsers).sort() as CommandType[];

/**
 * Checks a command's shape and ranges (not against the state) and returns a
 * normalized copy, or a Rejection ('invalid_command', or 'unsupported_version' for a
 * `v` newer than COMMAND_VERSION). Never throws on bad input.
 */
export function validateCommand(x: unknown): Command | ValidationError {
  try {
    return parseCommand(x);
  } catch (e) {
    if (e instanceof FieldError) return reject(e.code, e.message, e.field || undefined);
    throw e;
  }
}

function parseCommand(x: unknown): Command {
  if (!isPlainObject(x)) throw new FieldError('', `a command must be an object like { v: 1, type, atMs, ... }; got ${show(x)}`);
  const f: Fields = Fields.of(x, '', Object.keys(x));
  const v = f.raw('v', VERSION_DESC);
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) f.fail('v', v, VERSION_DESC);
  if (v > COMMAND_VERSION) {
    throw new FieldError('v', `command version ${v} is newer than this build understands (versions 1..${COMMAND_VERSION}); upgrade ogel on every node`, 'unsupported_version');
  }
  let c: Record<string, unknown> = x;
  for (let from = v; from < COMMAND_VERSION; from++) c = COMMAND_MIGRATIONS[from - 1]!(c);
  if (c !== x) return parseCommand(c);
  const type = f.raw('type', `one of ${COMMAND_TYPES.join(', ')}`);
  if (typeof type !== 'string' || !Object.hasOwn(parsers, type)) f.fail('type', type, `one of ${COMMAND_TYPES.join(', ')}`);
  // Never written with an older version: a version-1 build would not stop on it.
  const since = commandVersionOf(type as CommandType);
  if (v < since) f.fail('v', v, `${since} (${type} was added in command version ${since})`);
  return parsers[type as CommandType](x);
}
