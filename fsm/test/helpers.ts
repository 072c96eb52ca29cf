// Builders of valid commands (override any field) and small test utilities.

import assert from 'node:assert/strict';
import { apply, type ApplyResult } from '../apply.js';
import {
  commandVersionOf,
  type BackupRecord,
  type BackupRecordV1,
  type BackupUpdateComplete,
  type BackupUpdateCompleteV5,
  type BackupUpdateFailed,
  type BackupUpdateV1,
  type Command,
  type CommandOf,
  type CommandType,
  type TenantSetLimitsV3,
} from '../commands.js';
import { encodeSnapshot } from '../codec.js';
import type { Rejection } from '../errors.js';
import { initialState, type ClusterState, type MemberAddresses } from '../state.js';

export const SCRAM = {
  iterations: 4096,
  salt: Buffer.alloc(16, 7).toString('base64'),
  storedKey: Buffer.alloc(32, 1).toString('base64'),
  serverKey: Buffer.alloc(32, 2).toString('base64'),
};

/** Member n<i>'s addresses on 10.0.0.<i>. */
export function addresses(i: number): MemberAddresses {
  return { raft: `10.0.0.${i}:7000`, api: `10.0.0.${i}:8080`, proxy: `10.0.0.${i}:6432`, postgres: `10.0.0.${i}:5432` };
}

type Fields<T extends CommandType> = Omit<CommandOf<T>, 'v' | 'type'>;

function make<T extends CommandType>(type: T, defaults: Fields<T>) {
  return (over: Partial<Record<keyof Fields<T> | string, unknown>> = {}): CommandOf<T> =>
    ({ v: commandVersionOf(type), type, ...defaults, ...over }) as unknown as CommandOf<T>;
}

/** Like make, for one shape of a type with several (backup.record and backup.update: version 1 and version 4). */
function makeShape<X extends Command>(type: X['type'], v: X['v'], defaults: Omit<X, 'v' | 'type'>) {
  return (over: Partial<Record<keyof X | string, unknown>> = {}): X => ({ v, type, ...defaults, ...over }) as unknown as X;
}

const T0 = 1_700_000_000_000;

/** Valid commands (against a suitable state) with sensible defaults. */
export const C = {
  memberAdd: (id: string, i: number, atMs = T0) => make('member.add', { atMs, id, addresses: addresses(i) })(),
  memberRemove: make('member.remove', { atMs: T0, id: 'n1' }),
  memberHealth: make('member.health', { atMs: T0, id: 'n1', healthy: true, detail: null }),
  pgReport: make('pg.report', {
    atMs: T0,
    node: 'n1',
    role: 'standby',
    timeline: 1,
    lsn: { received: '0/3000148', flushed: '0/3000148', replayed: '0/3000100' },
  }),
  promote: make('pg.promote', {
    atMs: T0,
    node: 'n1',
    generation: 1,
    reason: 'bootstrap',
    lsn: '0/3000148',
    leaseDurationMs: 3000,
    automatic: false,
    lapsedLease: null,
  }),
  setRole: make('pg.setRole', { atMs: T0, node: 'n2', role: 'standby', generation: 1 }),
  fence: make('pg.fence', { atMs: T0, node: 'n1', generation: 1, reason: 'lease lapsed' }),
  renew: make('lease.renew', { atMs: T0, holder: 'n1', generation: 1, seq: 1 }),
  release: make('lease.release', { atMs: T0, holder: 'n1', generation: 1 }),
  syncStandbys: make('pg.syncStandbys', { atMs: T0, nodes: ['n2', 'n3'], quorum: 1, generation: 1 }),
  failoverBlocked: make('pg.failoverBlocked', { atMs: T0, reason: 'n1 and n3 unreachable', generation: 1 }),
  scheduleSwitchover: make('pg.scheduleSwitchover', { atMs: T0, to: 'n2', notBeforeMs: T0 + 3_600_000, generation: 1 }),
  tenantCreate: make('tenant.create', {
    atMs: T0,
    id: 't1',
    name: 'acme',
    database: 'acme_db',
    role: 'acme_owner',
    limits: { maxConnections: 20, rateLimitPerSec: 500 },
    scram: SCRAM,
  }),
  tenantDelete: make('tenant.delete', { atMs: T0, id: 't1' }),
  tenantPurge: make('tenant.purge', { atMs: T0, id: 't1' }),
  tenantSetState: make('tenant.setState', { atMs: T0, id: 't1', state: 'suspended' }),
  tenantPlace: make('tenant.place', { atMs: T0, id: 't1', node: 'n1' }),
  tenantSetLimits: make('tenant.setLimits', { atMs: T0, id: 't1', limits: { maxConnections: 20, rateLimitPerSec: 500, poolSize: 5, poolMode: null } }),
  /** Version 3 (frozen): no poolMode, which it leaves as it is. */
  tenantSetLimitsV3: makeShape<TenantSetLimitsV3>('tenant.setLimits', 3, {
    atMs: T0,
    id: 't1',
    limits: { maxConnections: 20, rateLimitPerSec: 500, poolSize: 5 },
  }),
  /** Version 1 (frozen shape): records a backup in any state. */
  backupRecordV1: makeShape<BackupRecordV1>('backup.record', 1, {
    atMs: T0,
    id: 'b1',
    timeline: 1,
    startLsn: '0/2000028',
    endLsn: null,
    sizeBytes: 0,
    checksum: null,
    objectKey: 'backups/b1/base.tar',
    state: 'running',
  }),
  backupUpdateV1: makeShape<BackupUpdateV1>('backup.update', 1, {
    atMs: T0,
    id: 'b1',
    state: 'complete',
    endLsn: '0/2000100',
    sizeBytes: 190_000_000,
    checksum: 'sha256:' + 'ab'.repeat(32),
  }),
  /** Version 4: starts a full backup of n2 (an incremental: kind 'incremental', parent). */
  backupRecord: makeShape<BackupRecord>('backup.record', 4, {
    atMs: T0,
    id: 'b1',
    kind: 'full',
    parent: null,
    node: 'n2',
    timeline: 1,
    startLsn: '0/2000028',
    prefix: 'c1/basebackups/b1/',
  }),
  /** Version 4: completes it. */
  backupComplete: makeShape<BackupUpdateComplete>('backup.update', 4, {
    atMs: T0,
    id: 'b1',
    state: 'complete',
    endLsn: '0/2000100',
    tarBytes: 190_000_000,
    storedBytes: 40_000_000,
    checksum: 'sha256:' + 'ab'.repeat(32),
  }),
  /** Version 5: completes it with its exact start. */
  backupCompleteV5: makeShape<BackupUpdateCompleteV5>('backup.update', 5, {
    atMs: T0,
    id: 'b1',
    state: 'complete',
    startLsn: '0/2000028',
    endLsn: '0/2000100',
    tarBytes: 190_000_000,
    storedBytes: 40_000_000,
    checksum: 'sha256:' + 'ab'.repeat(32),
  }),
  /** Version 4: fails it. */
  backupFail: makeShape<BackupUpdateFailed>('backup.update', 4, { atMs: T0, id: 'b1', state: 'failed', reason: 'connection to n2 lost' }),
  backupVerify: make('backup.verify', { atMs: T0, id: 'b1', result: 'verified', kind: 'checksums', detail: null }),
  backupDelete: make('backup.delete', { atMs: T0, id: 'b1' }),
  walRecord: make('wal.record', {
    atMs: T0,
    name: '000000010000000000000002',
    timeline: 1,
    startLsn: '0/2000000',
    endLsn: '0/3000000',
    sizeBytes: 16 * 1024 * 1024,
    checksum: 'sha256:' + 'cd'.repeat(32),
    objectKey: 'wal/000000010000000000000002',
  }),
  walDelete: make('wal.delete', { atMs: T0, names: ['000000010000000000000002'] }),
  /** Version 7: the continuous archive (generation 1: the primary of clusterOf3). */
  walArchived: make('wal.archived', { atMs: T0, generation: 1, timeline: 1, startLsn: '0/3000000', endLsn: '0/5000000' }),
  walHistory: make('wal.history', { atMs: T0, generation: 1, timeline: 2 }),
  walForget: make('wal.forget', { atMs: T0, timeline: 1, beforeLsn: '0/4000000' }),
  computeCreate: make('compute.create', { atMs: T0, id: 'c1', tenantId: 't1', branchOf: null, sourceSnapshot: null, sourceLsn: null }),
  computeUpdate: make('compute.update', { atMs: T0, id: 'c1', state: 'running', address: '10.0.1.5:5432' }),
  computeDelete: make('compute.delete', { atMs: T0, id: 'c1' }),
  maintenance: make('maintenance.set', { atMs: T0, paused: true, reason: 'upgrading n2' }),
};

/** Applies commands that must all succeed; returns the final state. */
export function run(commands: Command[], state: ClusterState = initialState()): ClusterState {
  for (const c of commands) {
    const out = apply(state, c);
    assert.equal(out.result.ok, true, `${c.type} failed: ${JSON.stringify(out.result)}`);
    state = out.state;
  }
  return state;
}

/** Three members n1..n3, n1 primary of generation 1, sync standbys n2, n3 (ANY 1). */
export function clusterOf3(): ClusterState {
  return run([C.memberAdd('n1', 1), C.memberAdd('n2', 2), C.memberAdd('n3', 3), C.promote(), C.syncStandbys()]);
}

/**
 * Applies a command that must be rejected with `code`, checks the state is the same
 * object and encodes identically, and that the message mentions every `mentions`.
 */
export function expectReject(state: ClusterState, c: Command, code: string, ...mentions: string[]): Rejection {
  const before = encodeSnapshot(state);
  const out = apply(state, c);
  const r: ApplyResult = out.result;
  assert.equal(r.ok, false, `${c.type} unexpectedly succeeded`);
  if (r.ok) throw new Error('unreachable');
  assert.equal(r.error.code, code, `code for ${c.type}: ${r.error.message}`);
  for (const m of mentions) assert.ok(r.error.message.includes(m), `message ${JSON.stringify(r.error.message)} should mention ${JSON.stringify(m)}`);
  assert.equal(out.state, state);
  assert.deepEqual(encodeSnapshot(out.state), before);
  return r;
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}
