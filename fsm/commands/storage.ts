// Storage commands: the snapshot index (backup.*), archived WAL segments (wal.*) and
// computes (compute.*).

import { FieldError, WAL_NAME_RE, Fields, items } from '../fields.js';
import { compareLsn, type Lsn } from '../lsn.js';
import { BACKUP_STATES, COMPUTE_STATES, LIMITS, type BackupState, type ComputeState } from '../state.js';
import { MAX_TIMELINE, base, fieldsOf, item, sortedDistinct, type Base, type ParserOf } from './shared.js';

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

export type StorageCommand = BackupRecord | BackupUpdate | BackupDelete | WalRecord | WalDelete | ComputeCreate | ComputeUpdate | ComputeDelete;
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

export const storageParsers: { [T in StorageCommandType]: Parser<T> } = {
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
};
