// Storage commands: the snapshot index (backup.*), archived WAL (wal.*: the continuous
// archive's ranges, and the per-segment records of older logs) and computes (compute.*).

import { FieldError, WAL_NAME_RE, type Fields, items } from '../fields.js';
import { compareLsn, type Lsn } from '../lsn.js';
import {
  BACKUP_KINDS,
  BACKUP_STATES,
  COMPUTE_STATES,
  LIMITS,
  VERIFICATION_KINDS,
  type BackupKind,
  type BackupState,
  type ComputeState,
  type VerificationKind,
} from '../state.js';
import { MAX_TIMELINE, TEXT, base, fieldsOf, generation, item, rawVersion, sortedDistinct, type Base, type ParserOf } from './shared.js';

// --- snapshot index -------------------------------------------------------------------

/**
 * Version 1 (frozen; what logs written before version 4 hold): records a backup in
 * any state, with one object key. Read for command versions 1 to 3 and applied as a
 * full backup of an unrecorded node (see the handler); new backups use BackupRecord.
 */
export interface BackupRecordV1 extends Base<'backup.record'> {
  readonly id: string;
  readonly timeline: number;
  readonly startLsn: Lsn;
  readonly endLsn: Lsn | null;
  readonly sizeBytes: number;
  readonly checksum: string | null;
  readonly objectKey: string;
  readonly state: BackupState;
}
/** Version 1 (frozen): any transition out of running, sizes and end optional. */
export interface BackupUpdateV1 extends Base<'backup.update'> {
  readonly id: string;
  readonly state: BackupState;
  readonly endLsn?: Lsn;
  readonly sizeBytes?: number;
  readonly checksum?: string;
}
/**
 * Version 4: starts a backup, in state 'running'. An incremental names its parent,
 * which must be recorded, complete and not have failed verification.
 */
export interface BackupRecord extends Base<'backup.record', 4> {
  readonly id: string;
  readonly kind: BackupKind;
  /** Required (non-null) for an incremental, null for a full backup. */
  readonly parent: string | null;
  /** The node whose Postgres is copied (a member). */
  readonly node: string;
  readonly timeline: number;
  readonly startLsn: Lsn;
  /** Where its objects go, e.g. `<cluster>/basebackups/<id>/`; shared with no other backup. */
  readonly prefix: string;
}
/**
 * Finishes a running backup: complete with its end and sizes, or failed with a
 * reason. Version 5 (written now) completes with the exact start too, which
 * replaces the estimate recorded at the start; version 4 (frozen) did not carry
 * it and checked the end against the estimate.
 */
export type BackupUpdate = BackupUpdateComplete | BackupUpdateCompleteV5 | BackupUpdateFailed;
/** Version 4 (frozen). */
export interface BackupUpdateComplete extends Base<'backup.update', 4> {
  readonly id: string;
  readonly state: 'complete';
  readonly endLsn: Lsn;
  readonly tarBytes: number;
  readonly storedBytes: number;
  readonly checksum: string;
}
export interface BackupUpdateCompleteV5 extends Base<'backup.update', 5> {
  readonly id: string;
  readonly state: 'complete';
  /** The exact start (BASE_BACKUP's), from the backup's backup.json. */
  readonly startLsn: Lsn;
  readonly endLsn: Lsn;
  readonly tarBytes: number;
  readonly storedBytes: number;
  readonly checksum: string;
}
/** The same in versions 4 and 5. */
export interface BackupUpdateFailed extends Base<'backup.update', 4 | 5> {
  readonly id: string;
  readonly state: 'failed';
  readonly reason: string;
}
/** Version 4: records the result of verifying a complete backup (the latest result wins). */
export interface BackupVerify extends Base<'backup.verify', 4> {
  readonly id: string;
  readonly result: 'verified' | 'failed';
  readonly kind: VerificationKind;
  /** What was checked or found; required when failed. */
  readonly detail: string | null;
}
/** Refused while a compute starts from it or another backup is an incremental of it. */
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

// The continuous WAL archive (walArchive), command version 7: new types, so that a
// build without them stops on them instead of rejecting what upgraded nodes apply.

/**
 * Version 7: WAL of `timeline` from startLsn up to endLsn (exclusive) is in the
 * object store. Proposed by the primary's archiver about once a second. Merged
 * into a range of that timeline it overlaps or touches, otherwise a new range (a
 * gap shows as two); a report already covered changes nothing (existed: true).
 *
 * Refused (stale_generation) unless `generation` is the current one: a fenced old
 * primary still streaming must not extend the index with WAL of a history the
 * cluster left. Report what is new (start at the end of the last report, or where
 * streaming resumed), not the whole session: a report reaching back before a
 * wal.forget position would bring the forgotten part back into the index.
 */
export interface WalArchived extends Base<'wal.archived', 7> {
  readonly generation: number;
  readonly timeline: number;
  readonly startLsn: Lsn;
  /** At or after startLsn. */
  readonly endLsn: Lsn;
}
/**
 * Version 7: the history file of `timeline` (2 or more; timeline 1 has none) is in
 * the object store, which a restore onto that timeline needs. Idempotent (existed:
 * true). Same generation rule as wal.archived.
 */
export interface WalHistory extends Base<'wal.history', 7> {
  readonly generation: number;
  readonly timeline: number;
}
/**
 * Version 7: retention forgets all archived WAL before the position (timeline,
 * beforeLsn): every range and history file of an older timeline, and the part of
 * each range of `timeline` before beforeLsn (a range ending at or before it goes, a
 * range straddling it now starts there, its startAtMs unchanged). Later timelines
 * are kept whole. That is what a restore from a backup starting at that position
 * (or later) no longer needs. The index is forgotten before the objects are
 * deleted. No generation: the leader decides retention, not the primary.
 */
export interface WalForget extends Base<'wal.forget', 7> {
  readonly timeline: number;
  readonly beforeLsn: Lsn;
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

export type StorageCommand =
  | BackupRecordV1
  | BackupRecord
  | BackupUpdateV1
  | BackupUpdate
  | BackupVerify
  | BackupDelete
  | WalRecord
  | WalDelete
  | WalArchived
  | WalHistory
  | WalForget
  | ComputeCreate
  | ComputeUpdate
  | ComputeDelete;
export type StorageCommandType = StorageCommand['type'];
type Parser<T extends StorageCommandType> = ParserOf<StorageCommand, T>;

const MAX_BYTES = Number.MAX_SAFE_INTEGER;

const walNameItem = item((f, k) => f.walName(k));

function walTimeline(f: Fields, name: string): number {
  const timeline = f.int('timeline', 1, MAX_TIMELINE);
  const fromName = parseInt(WAL_NAME_RE.exec(name)![1]!, 16);
  if (timeline !== fromName) {
    throw new FieldError(f.at('timeline'), `${timeline} does not match the segment name ${JSON.stringify(name)}, which is on timeline ${fromName}`);
  }
  return timeline;
}

function backupRecordV1(x: unknown): BackupRecordV1 {
  const f = fieldsOf(x, ['id', 'timeline', 'startLsn', 'endLsn', 'sizeBytes', 'checksum', 'objectKey', 'state']);
  const c: BackupRecordV1 = {
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
}

function backupUpdateV1(x: unknown): BackupUpdateV1 {
  const f = fieldsOf(x, ['id', 'state', 'endLsn', 'sizeBytes', 'checksum']);
  const c: { -readonly [K in keyof BackupUpdateV1]: BackupUpdateV1[K] } = {
    ...base(f, 'backup.update'),
    id: f.id('id'),
    state: f.oneOf('state', BACKUP_STATES),
  };
  const endLsn = f.optional('endLsn', (k) => f.lsn(k));
  if (endLsn !== undefined) c.endLsn = endLsn;
  const sizeBytes = f.optional('sizeBytes', (k) => f.int(k, 0, MAX_BYTES, 'bytes'));
  if (sizeBytes !== undefined) c.sizeBytes = sizeBytes;
  const checksum = f.optional('checksum', (k) => f.checksum(k));
  if (checksum !== undefined) c.checksum = checksum;
  return c;
}

function backupRecord(x: unknown): BackupRecord {
  const f = fieldsOf(x, ['id', 'kind', 'parent', 'node', 'timeline', 'startLsn', 'prefix'], {
    objectKey: 'version 4 records a "prefix" (where all of the backup\'s objects go, e.g. "c1/basebackups/b1/"), not one objectKey',
    state: 'a backup is recorded when it starts ("running"); finish it with backup.update',
  });
  const id = f.id('id');
  const kind = f.oneOf('kind', BACKUP_KINDS);
  // Present either way: a missing parent read as null would turn a malformed incremental into a full backup.
  const parent = f.raw('parent', 'null for a full backup, or the id of the backup an incremental is taken against') === null ? null : f.id('parent');
  if (kind === 'full' && parent !== null)
    throw new FieldError(f.at('parent'), `is ${JSON.stringify(parent)}, but a full backup has no parent; expected null (or kind "incremental")`);
  if (kind === 'incremental' && parent === null)
    throw new FieldError(f.at('parent'), 'is null, but an incremental backup needs one; expected the id of the backup it is taken against');
  if (parent === id) throw new FieldError(f.at('parent'), `is the backup itself (${JSON.stringify(id)}); expected an earlier backup`);
  return {
    v: 4,
    type: 'backup.record',
    atMs: f.timeMs('atMs'),
    id,
    kind,
    parent,
    node: f.id('node'),
    timeline: f.int('timeline', 1, MAX_TIMELINE),
    startLsn: f.lsn('startLsn'),
    prefix: f.objectPrefix('prefix'),
  };
}

function backupUpdate(x: unknown): BackupUpdate {
  const v = rawVersion(x) >= 5 ? 5 : 4;
  const all = ['id', 'state', 'startLsn', 'endLsn', 'tarBytes', 'storedBytes', 'checksum', 'reason'];
  const state = fieldsOf(x, all).oneOf('state', ['complete', 'failed'] as const);
  if (state === 'failed') {
    const f = fieldsOf(x, ['id', 'state', 'reason']);
    return { v, type: 'backup.update', atMs: f.timeMs('atMs'), id: f.id('id'), state, reason: f.text('reason', TEXT) };
  }
  const f = fieldsOf(
    x,
    v === 5 ? ['id', 'state', 'startLsn', 'endLsn', 'tarBytes', 'storedBytes', 'checksum'] : ['id', 'state', 'endLsn', 'tarBytes', 'storedBytes', 'checksum'],
  );
  const rest = {
    type: 'backup.update' as const,
    atMs: f.timeMs('atMs'),
    id: f.id('id'),
    state,
    endLsn: f.lsn('endLsn'),
    tarBytes: f.int('tarBytes', 0, MAX_BYTES, 'bytes'),
    storedBytes: f.int('storedBytes', 0, MAX_BYTES, 'bytes'),
    checksum: f.checksum('checksum'),
  };
  if (v === 4) return { v, ...rest };
  const startLsn = f.lsn('startLsn');
  if (compareLsn(rest.endLsn, startLsn) < 0)
    throw new FieldError(f.at('endLsn'), `${rest.endLsn} is before startLsn ${startLsn}; expected an LSN at or after it`);
  return { v, ...rest, startLsn };
}

export const storageParsers: { [T in StorageCommandType]: Parser<T> } = {
  // backup.record and backup.update have two shapes: versions 1 to 3 read the frozen
  // version-1 fields, version 4 the current ones (see COMMAND_VERSION).
  'backup.record': (x) => (rawVersion(x) < 4 ? backupRecordV1(x) : backupRecord(x)),
  'backup.update': (x) => (rawVersion(x) < 4 ? backupUpdateV1(x) : backupUpdate(x)),
  'backup.verify': (x) => {
    const f = fieldsOf(x, ['id', 'result', 'kind', 'detail']);
    const result = f.oneOf('result', ['verified', 'failed'] as const);
    const detail = f.raw('detail', 'null or a description of what was checked or found') === null ? null : f.text('detail', TEXT);
    if (result === 'failed' && detail === null) throw new FieldError(f.at('detail'), 'is required when result is "failed"; say what did not match');
    return { v: 4, type: 'backup.verify', atMs: f.timeMs('atMs'), id: f.id('id'), result, kind: f.oneOf('kind', VERIFICATION_KINDS), detail };
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
  'wal.archived': (x) => {
    const f = fieldsOf(x, ['generation', 'timeline', 'startLsn', 'endLsn']);
    const c: WalArchived = {
      v: 7,
      type: 'wal.archived',
      atMs: f.timeMs('atMs'),
      generation: generation(f),
      timeline: f.int('timeline', 1, MAX_TIMELINE),
      startLsn: f.lsn('startLsn'),
      endLsn: f.lsn('endLsn'),
    };
    if (compareLsn(c.endLsn, c.startLsn) < 0) {
      throw new FieldError(f.at('endLsn'), `${c.endLsn} is before startLsn ${c.startLsn}; expected an LSN at or after it`);
    }
    return c;
  },
  'wal.history': (x) => {
    const f = fieldsOf(x, ['generation', 'timeline']);
    return {
      v: 7,
      type: 'wal.history',
      atMs: f.timeMs('atMs'),
      generation: generation(f),
      timeline: f.int('timeline', 2, MAX_TIMELINE, '(timeline 1 has no history file)'),
    };
  },
  'wal.forget': (x) => {
    const f = fieldsOf(x, ['timeline', 'beforeLsn']);
    return { v: 7, type: 'wal.forget', atMs: f.timeMs('atMs'), timeline: f.int('timeline', 1, MAX_TIMELINE), beforeLsn: f.lsn('beforeLsn') };
  },
  'compute.create': (x) => {
    const f = fieldsOf(x, ['id', 'tenantId', 'branchOf', 'sourceSnapshot', 'sourceLsn']);
    const tenantId = f.nullable('tenantId', (k) => f.id(k));
    const branchOf = f.nullable('branchOf', (k) => f.id(k));
    if ((tenantId === null) === (branchOf === null)) {
      throw new FieldError(
        'tenantId',
        `${tenantId === null ? 'neither' : 'both'} tenantId and branchOf given; expected exactly one: tenantId (the tenant it serves) or branchOf (the tenant a branch starts from)`,
      );
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
};
