// Canonical encodings of commands and snapshots (msgpack via msgpackr), and version
// migration.
//
// Canonical: object keys are sorted, undefined fields dropped, -0 written as 0, and
// keyed collections written as arrays sorted by id. Equal states therefore give
// byte-identical snapshots, whatever order their commands arrived in (I2).
//
// Versions: a command carries `v`, a snapshot `format`. Decoding an older version
// migrates it step by step to the current one; a newer one is refused with an error
// naming both versions. Older versions keep decoding through the migration tables
// (the frozen fixtures in test/fixtures.ts, checked by test/codec.test.ts, guard
// that).
//
// Snapshots are always written in the newest format. Unlike a command, which
// reaches every follower, a snapshot is sent only to a follower too far behind the
// leader's log, so a node on an older build meets one rarely; when it does, it
// stops (UnsupportedVersionError) rather than guess.

import { Packr, Unpackr } from 'msgpackr';
import { validateCommand, type Command } from './commands.js';
import { InvariantError, SnapshotFormatError, UnsupportedVersionError, reject, type Rejection } from './errors.js';
import { FieldError, Fields, isPlainObject, items, show } from './fields.js';
import { checkState } from './invariants.js';
import { compareLsn } from './lsn.js';
import {
  BACKUP_KINDS,
  BACKUP_STATES,
  UNVERIFIED,
  VERIFICATION_KINDS,
  VERIFICATION_STATES,
  COMPUTE_STATES,
  LIMITS,
  PG_ROLES,
  TENANT_STATES,
  initialState,
  sortedValues,
  type Backup,
  type ClusterState,
  type Compute,
  type HistoryEntry,
  type Member,
  type PgNode,
  type Tenant,
  type WalArchiveState,
  type WalRange,
  type WalSegment,
  POOL_MODES,
} from './state.js';

/**
 * The snapshot format this build writes, and the newest it reads.
 * 2: postgres.scheduledSwitchover (pg.scheduleSwitchover, command version 2).
 * 3: tenants[].limits.poolSize (tenant.setLimits, command version 3).
 * 4: backups[] in the backup index's shape (command version 4): kind, parent, node,
 *    tarBytes, storedBytes (was sizeBytes), prefix (was objectKey), failureReason,
 *    verification.
 * 5: tenants[].limits.poolMode (tenant.setLimits, command version 6).
 * 6: walArchive { ranges, historyTimelines } (wal.archived, wal.history,
 *    wal.forget, command version 7).
 */
export const SNAPSHOT_FORMAT_VERSION = 6;

/**
 * SNAPSHOT_MIGRATIONS[i] turns a plain snapshot of format i + 1 into format i + 2.
 * Pure; a malformed input is left for readState to report.
 */
const SNAPSHOT_MIGRATIONS: readonly ((s: Record<string, unknown>) => Record<string, unknown>)[] = [
  // 1 -> 2: nothing could be scheduled before the field existed.
  (s) => {
    const pg = s['postgres'];
    if (!isPlainObject(pg)) return s;
    return { ...s, format: 2, postgres: { ...pg, scheduledSwitchover: null } };
  },
  // 2 -> 3: no pool size could be set before the field existed: every tenant uses
  // the proxy's default (null), exactly what replaying its commands gives.
  (s) => {
    const tenants = s['tenants'];
    if (!Array.isArray(tenants)) return s;
    return { ...s, format: 3, tenants: tenants.map((t) => withLimit(t, 'poolSize')) };
  },
  // 3 -> 4: every backup was recorded by version-1 commands, so it becomes what the
  // version-1 handlers now write: exactly what replaying its commands gives.
  (s) => {
    const backups = s['backups'];
    if (!Array.isArray(backups)) return s;
    return { ...s, format: 4, backups: backups.map(backupFromFormat3) };
  },
  // 4 -> 5: no pool mode could be set before the field existed: every tenant uses
  // the proxy's (null), exactly what replaying its commands gives.
  (s) => {
    const tenants = s['tenants'];
    if (!Array.isArray(tenants)) return s;
    return { ...s, format: 5, tenants: tenants.map((t) => withLimit(t, 'poolMode')) };
  },
  // 5 -> 6: nothing could be archived as ranges before the field existed: an empty
  // index, exactly what replaying its commands gives (wal.record writes walSegments).
  (s) => ({ ...s, format: 6, walArchive: { ranges: [], historyTimelines: [] } }),
];

function backupFromFormat3(b: unknown): unknown {
  if (!isPlainObject(b)) return b;
  const { sizeBytes, objectKey, ...rest } = b;
  return {
    ...rest,
    kind: 'full',
    parent: null,
    node: null,
    tarBytes: null,
    storedBytes: sizeBytes,
    prefix: objectKey,
    failureReason: null,
    verification: UNVERIFIED,
  };
}

/** The tenant with limits[name] null (the default), a limit added by a later format. */
function withLimit(t: unknown, name: 'poolSize' | 'poolMode'): unknown {
  if (!isPlainObject(t) || !isPlainObject(t['limits'])) return t;
  return { ...t, limits: { ...t['limits'], [name]: null } };
}

if (SNAPSHOT_MIGRATIONS.length !== SNAPSHOT_FORMAT_VERSION - 1) {
  throw new InvariantError('the snapshot format was bumped without its migration');
}

// useRecords: false keeps the bytes plain msgpack, independent of msgpackr's
// structure-sharing state, readable by any msgpack implementation.
const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

/** A value in canonical form: sorted keys, no undefined, no -0. Throws on anything not encodable. */
export function canonicalize(v: unknown): unknown {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new InvariantError(`cannot encode the number ${v}`);
    return v === 0 ? 0 : v;
  }
  if (Array.isArray(v)) return v.map(canonicalize);
  if (isPlainObject(v)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const x = v[k];
      if (x !== undefined) out[k] = canonicalize(x);
    }
    return out;
  }
  throw new InvariantError(`cannot encode ${v instanceof Map ? 'a Map (convert it with toPlain)' : typeof v} canonically`);
}

/** Canonical msgpack bytes of a plain value (a copy: msgpackr reuses its buffer). */
export function canonicalBytes(v: unknown): Uint8Array {
  return new Uint8Array(packr.pack(canonicalize(v)));
}

// --- commands -------------------------------------------------------------------------

/** Canonical bytes of a command, for proposing. Validate it first (validateCommand). */
export function encodeCommand(c: Command): Uint8Array {
  return canonicalBytes(c);
}

/**
 * Decodes and validates (which migrates) a command from the log. Never throws: undecodable
 * or invalid bytes give an 'invalid_command' Rejection, a newer version an
 * 'unsupported_version' one (which ClusterStateMachine turns into a stop).
 */
export function decodeCommand(bytes: Uint8Array): Command | Rejection {
  let raw: unknown;
  try {
    raw = unpackr.unpack(bytes);
  } catch (e) {
    return reject('invalid_command', `not a msgpack-encoded command (${bytes.byteLength} bytes): ${e instanceof Error ? e.message : String(e)}`);
  }
  return validateCommand(raw);
}

// --- snapshots ------------------------------------------------------------------------

/** The state as plain, JSON-friendly data: collections as arrays sorted by id. */
export interface PlainState {
  readonly members: Member[];
  readonly postgres: Omit<ClusterState['postgres'], 'nodes'> & { readonly nodes: PgNode[] };
  readonly tenants: Tenant[];
  readonly backups: Backup[];
  readonly walSegments: WalSegment[];
  /** Already plain: arrays in their order. */
  readonly walArchive: WalArchiveState;
  readonly computes: Compute[];
  readonly maintenance: ClusterState['maintenance'];
}

export function toPlain(s: ClusterState): PlainState {
  return {
    members: sortedValues(s.members),
    postgres: { ...s.postgres, nodes: sortedValues(s.postgres.nodes) },
    tenants: sortedValues(s.tenants),
    backups: sortedValues(s.backups),
    walSegments: sortedValues(s.walSegments),
    walArchive: s.walArchive,
    computes: sortedValues(s.computes),
    maintenance: s.maintenance,
  };
}

/** Canonical snapshot bytes: equal states give equal bytes. */
export function encodeSnapshot(s: ClusterState): Uint8Array {
  return canonicalBytes({ format: SNAPSHOT_FORMAT_VERSION, ...toPlain(s) });
}

/**
 * Decodes (and migrates) a snapshot; empty bytes mean the initial state. Throws
 * UnsupportedVersionError for a newer format and SnapshotFormatError for anything
 * malformed or violating an invariant.
 */
export function decodeSnapshot(bytes: Uint8Array): ClusterState {
  if (bytes.byteLength === 0) return initialState();
  let raw: unknown;
  try {
    raw = unpackr.unpack(bytes);
  } catch (e) {
    throw new SnapshotFormatError(`snapshot (${bytes.byteLength} bytes) is not valid msgpack: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!isPlainObject(raw)) throw new SnapshotFormatError('snapshot is not a msgpack map');
  const format = raw['format'];
  if (typeof format !== 'number' || !Number.isSafeInteger(format) || format < 1) {
    throw new SnapshotFormatError(`snapshot format is ${JSON.stringify(format)}; expected a version from 1 to ${SNAPSHOT_FORMAT_VERSION}`);
  }
  if (format > SNAPSHOT_FORMAT_VERSION) {
    throw new UnsupportedVersionError(
      `snapshot format ${format} is newer than this build reads (formats 1..${SNAPSHOT_FORMAT_VERSION}); upgrade ogel on this node`,
    );
  }
  let plain: Record<string, unknown> = raw;
  for (let from = format; from < SNAPSHOT_FORMAT_VERSION; from++) plain = SNAPSHOT_MIGRATIONS[from - 1]!(plain);
  let state: ClusterState;
  try {
    state = readState(plain);
  } catch (e) {
    if (e instanceof FieldError) throw new SnapshotFormatError(`snapshot ${e.message}`);
    throw e;
  }
  try {
    checkState(state);
  } catch (e) {
    if (e instanceof InvariantError) throw new SnapshotFormatError(`snapshot is inconsistent: ${e.message}`);
    throw e;
  }
  return state;
}

const TEXT = { maxChars: LIMITS.textChars };
const NAT = Number.MAX_SAFE_INTEGER;

function toMap<V>(list: V[], key: (v: V) => string, path: string): ReadonlyMap<string, V> {
  const m = new Map<string, V>();
  for (const v of list) {
    const k = key(v);
    if (m.has(k)) throw new FieldError(path, `lists ${JSON.stringify(k)} twice`);
    m.set(k, v);
  }
  return m;
}

function readState(v: unknown): ClusterState {
  const f = Fields.of(v, '', ['format', 'members', 'postgres', 'tenants', 'backups', 'walSegments', 'walArchive', 'computes', 'maintenance']);
  const pg = f.obj('postgres', ['nodes', 'primary', 'generation', 'lease', 'syncStandbys', 'syncQuorum', 'history', 'failoverBlocked', 'scheduledSwitchover']);
  const mt = f.obj('maintenance', ['paused', 'reason', 'atMs']);
  return {
    members: toMap(items(f.array('members', LIMITS.members), 'members', readMember), (m) => m.id, 'members'),
    postgres: {
      nodes: toMap(items(pg.array('nodes', LIMITS.members), 'postgres.nodes', readPgNode), (n) => n.node, 'postgres.nodes'),
      primary: pg.nullable('primary', (k) => pg.id(k)),
      generation: pg.int('generation', 0, NAT),
      lease: pg.nullable('lease', (k) => {
        const l = pg.obj(k, ['holder', 'generation', 'durationMs', 'renewalSeq']);
        return {
          holder: l.id('holder'),
          generation: l.int('generation', 1, NAT),
          durationMs: l.int('durationMs', 1, NAT),
          renewalSeq: l.int('renewalSeq', 0, NAT),
        };
      }),
      syncStandbys: items(pg.array('syncStandbys', LIMITS.members), 'postgres.syncStandbys', (x, p) => Fields.of({ id: x }, p, ['id']).id('id')),
      syncQuorum: pg.int('syncQuorum', 0, LIMITS.members),
      history: items(pg.array('history', LIMITS.history), 'postgres.history', readHistory),
      failoverBlocked: pg.nullable('failoverBlocked', (k) => {
        const b = pg.obj(k, ['reason', 'atMs']);
        return { reason: b.text('reason', TEXT), atMs: b.timeMs('atMs') };
      }),
      // Required (null when none): the format-1 migration adds it.
      scheduledSwitchover:
        pg.raw('scheduledSwitchover', 'null or an object with to, notBeforeMs, requestedAtMs') === null
          ? null
          : (() => {
              const x = pg.obj('scheduledSwitchover', ['to', 'notBeforeMs', 'requestedAtMs']);
              return { to: x.nullable('to', (k) => x.id(k)), notBeforeMs: x.timeMs('notBeforeMs'), requestedAtMs: x.timeMs('requestedAtMs') };
            })(),
    },
    tenants: toMap(items(f.array('tenants', LIMITS.tenants), 'tenants', readTenant), (t) => t.id, 'tenants'),
    backups: toMap(items(f.array('backups', LIMITS.backups), 'backups', readBackup), (b) => b.id, 'backups'),
    walSegments: toMap(items(f.array('walSegments', LIMITS.walSegments), 'walSegments', readWal), (w) => w.name, 'walSegments'),
    // Required: the format-5 migration adds it.
    walArchive: readWalArchive(f.obj('walArchive', ['ranges', 'historyTimelines'])),
    computes: toMap(items(f.array('computes', LIMITS.computes), 'computes', readCompute), (c) => c.id, 'computes'),
    maintenance: { paused: mt.bool('paused'), reason: mt.nullable('reason', (k) => mt.text(k, TEXT)), atMs: mt.nullable('atMs', (k) => mt.timeMs(k)) },
  };
}

function readMember(v: unknown, path: string): Member {
  const f = Fields.of(v, path, ['id', 'addresses', 'health', 'addedAtMs']);
  const a = f.obj('addresses', ['raft', 'api', 'proxy', 'postgres']);
  const h = f.obj('health', ['healthy', 'reportedAtMs', 'detail']);
  return {
    id: f.id('id'),
    addresses: { raft: a.address('raft'), api: a.address('api'), proxy: a.address('proxy'), postgres: a.address('postgres') },
    health: { healthy: h.bool('healthy'), reportedAtMs: h.timeMs('reportedAtMs'), detail: h.nullable('detail', (k) => h.text(k, TEXT)) },
    addedAtMs: f.timeMs('addedAtMs'),
  };
}

function readPgNode(v: unknown, path: string): PgNode {
  const f = Fields.of(v, path, ['node', 'role', 'reportedRole', 'timeline', 'lsn', 'reportedAtMs']);
  const l = f.obj('lsn', ['received', 'flushed', 'replayed']);
  return {
    node: f.id('node'),
    role: f.oneOf('role', PG_ROLES),
    reportedRole: f.oneOf('reportedRole', PG_ROLES),
    timeline: f.int('timeline', 0, 0xffffffff),
    lsn: { received: l.lsn('received'), flushed: l.lsn('flushed'), replayed: l.lsn('replayed') },
    reportedAtMs: f.nullable('reportedAtMs', (k) => f.timeMs(k)),
  };
}

function readHistory(v: unknown, path: string): HistoryEntry {
  const f = Fields.of(v, path, ['generation', 'node', 'reason', 'lsn', 'atMs']);
  return { generation: f.int('generation', 1, NAT), node: f.id('node'), reason: f.text('reason', TEXT), lsn: f.lsn('lsn'), atMs: f.timeMs('atMs') };
}

function readTenant(v: unknown, path: string): Tenant {
  const f = Fields.of(v, path, ['id', 'name', 'database', 'role', 'limits', 'state', 'placement', 'scram', 'createdAtMs', 'deletedAtMs']);
  const l = f.obj('limits', ['maxConnections', 'rateLimitPerSec', 'poolSize', 'poolMode']);
  const s = f.obj('scram', ['iterations', 'salt', 'storedKey', 'serverKey']);
  return {
    id: f.id('id'),
    name: f.pgIdent('name'),
    database: f.pgIdent('database'),
    role: f.pgIdent('role'),
    limits: {
      maxConnections: l.int('maxConnections', 1, NAT),
      rateLimitPerSec: l.int('rateLimitPerSec', 1, NAT),
      // Required (null for the default): the format-2 migration adds it.
      poolSize: l.raw('poolSize', 'null or a pool size') === null ? null : l.int('poolSize', 1, NAT),
      // Required too: the format-4 migration adds it.
      poolMode: l.raw('poolMode', 'null or a pool mode') === null ? null : l.oneOf('poolMode', POOL_MODES),
    },
    state: f.oneOf('state', TENANT_STATES),
    placement: f.nullable('placement', (k) => f.id(k)),
    scram: {
      iterations: s.int('iterations', 1, NAT),
      salt: s.base64('salt', 1, 1024),
      storedKey: s.base64('storedKey', 32, 32),
      serverKey: s.base64('serverKey', 32, 32),
    },
    createdAtMs: f.timeMs('createdAtMs'),
    deletedAtMs: f.nullable('deletedAtMs', (k) => f.timeMs(k)),
  };
}

function readBackup(v: unknown, path: string): Backup {
  const f = Fields.of(v, path, [
    'id',
    'kind',
    'parent',
    'node',
    'timeline',
    'startLsn',
    'endLsn',
    'tarBytes',
    'storedBytes',
    'checksum',
    'prefix',
    'state',
    'failureReason',
    'verification',
    'atMs',
    'finishedAtMs',
  ]);
  const ver = f.obj('verification', ['state', 'atMs', 'detail', 'kind']);
  // Nullable fields are required (null or a value) since format 4: the migration writes them all.
  const req = <T>(x: Fields, key: string, read: (k: string) => T): T | null => (x.raw(key, 'null or a value') === null ? null : read(key));
  return {
    id: f.id('id'),
    kind: f.oneOf('kind', BACKUP_KINDS),
    parent: req(f, 'parent', (k) => f.id(k)),
    node: req(f, 'node', (k) => f.id(k)),
    timeline: f.int('timeline', 1, 0xffffffff),
    startLsn: f.lsn('startLsn'),
    endLsn: f.nullable('endLsn', (k) => f.lsn(k)),
    tarBytes: req(f, 'tarBytes', (k) => f.int(k, 0, NAT)),
    storedBytes: f.int('storedBytes', 0, NAT),
    checksum: f.nullable('checksum', (k) => f.checksum(k)),
    prefix: f.objectPrefix('prefix'),
    state: f.oneOf('state', BACKUP_STATES),
    failureReason: req(f, 'failureReason', (k) => f.text(k, TEXT)),
    verification: {
      state: ver.oneOf('state', VERIFICATION_STATES),
      atMs: req(ver, 'atMs', (k) => ver.timeMs(k)),
      detail: req(ver, 'detail', (k) => ver.text(k, TEXT)),
      kind: req(ver, 'kind', (k) => ver.oneOf(k, VERIFICATION_KINDS)),
    },
    atMs: f.timeMs('atMs'),
    finishedAtMs: f.nullable('finishedAtMs', (k) => f.timeMs(k)),
  };
}

function readWal(v: unknown, path: string): WalSegment {
  const f = Fields.of(v, path, ['name', 'timeline', 'startLsn', 'endLsn', 'sizeBytes', 'checksum', 'objectKey', 'atMs']);
  return {
    name: f.walName('name'),
    timeline: f.int('timeline', 1, 0xffffffff),
    startLsn: f.lsn('startLsn'),
    endLsn: f.lsn('endLsn'),
    sizeBytes: f.int('sizeBytes', 0, NAT),
    checksum: f.checksum('checksum'),
    objectKey: f.objectKey('objectKey'),
    atMs: f.timeMs('atMs'),
  };
}

function readWalArchive(f: Fields): WalArchiveState {
  const ranges = items(f.array('ranges', LIMITS.walRanges), f.at('ranges'), readWalRange);
  // The order rule, named at the range that breaks it (checkState would only say "inconsistent").
  for (let i = 1; i < ranges.length; i++) {
    const [p, r] = [ranges[i - 1]!, ranges[i]!];
    const at = `${f.at('ranges')}[${i}]`;
    if (r.timeline < p.timeline) {
      throw new FieldError(`${at}.timeline`, `${r.timeline} follows a range of timeline ${p.timeline}; expected ranges sorted by timeline, then startLsn`);
    }
    if (r.timeline === p.timeline && compareLsn(r.startLsn, p.endLsn) <= 0) {
      throw new FieldError(
        `${at}.startLsn`,
        `${r.startLsn} is not after the end of the range before it on timeline ${r.timeline} (${p.startLsn} to ${p.endLsn}); expected ranges of a timeline sorted, apart, and merged where they touch`,
      );
    }
  }
  const historyTimelines = items(f.array('historyTimelines', LIMITS.walHistories), f.at('historyTimelines'), (x, path) => {
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 2 || x > 0xffffffff) {
      throw new FieldError(path, `${show(x)} is not valid; expected a timeline from 2 to 4294967295 (timeline 1 has no history file)`);
    }
    return x;
  });
  for (let i = 1; i < historyTimelines.length; i++) {
    if (historyTimelines[i]! <= historyTimelines[i - 1]!) {
      throw new FieldError(
        `${f.at('historyTimelines')}[${i}]`,
        `${historyTimelines[i]} follows ${historyTimelines[i - 1]}; expected ascending, distinct timelines`,
      );
    }
  }
  return { ranges, historyTimelines };
}

function readWalRange(v: unknown, path: string): WalRange {
  const f = Fields.of(v, path, ['timeline', 'startLsn', 'endLsn', 'startAtMs', 'endAtMs']);
  const r: WalRange = {
    timeline: f.int('timeline', 1, 0xffffffff),
    startLsn: f.lsn('startLsn'),
    endLsn: f.lsn('endLsn'),
    startAtMs: f.timeMs('startAtMs'),
    endAtMs: f.timeMs('endAtMs'),
  };
  if (compareLsn(r.endLsn, r.startLsn) < 0)
    throw new FieldError(f.at('endLsn'), `${r.endLsn} is before startLsn ${r.startLsn}; expected an LSN at or after it`);
  return r;
}

function readCompute(v: unknown, path: string): Compute {
  const f = Fields.of(v, path, ['id', 'tenantId', 'branchOf', 'sourceSnapshot', 'sourceLsn', 'state', 'address', 'lastActivityMs', 'createdAtMs']);
  return {
    id: f.id('id'),
    tenantId: f.nullable('tenantId', (k) => f.id(k)),
    branchOf: f.nullable('branchOf', (k) => f.id(k)),
    sourceSnapshot: f.nullable('sourceSnapshot', (k) => f.id(k)),
    sourceLsn: f.nullable('sourceLsn', (k) => f.lsn(k)),
    state: f.oneOf('state', COMPUTE_STATES),
    address: f.nullable('address', (k) => f.address(k)),
    lastActivityMs: f.timeMs('lastActivityMs'),
    createdAtMs: f.timeMs('createdAtMs'),
  };
}
