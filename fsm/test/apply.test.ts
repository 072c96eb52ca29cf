// apply(): each command's effect and its rejections against the state (code, clear
// message, state untouched).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { apply, applyAll } from '../apply.js';
import { COMMAND_VERSION } from '../commands.js';
import { InvariantError } from '../errors.js';
import { decodeSnapshot, encodeSnapshot } from '../codec.js';
import { checkState } from '../invariants.js';
import { initialState, LIMITS, mapWith, mapWithout, UNVERIFIED, type ClusterState } from '../state.js';
import { C, clusterOf3, expectReject, run } from './helpers.js';

function ok(state: ClusterState, c: Parameters<typeof apply>[1]) {
  const out = apply(state, c);
  assert.equal(out.result.ok, true, JSON.stringify(out.result));
  checkState(out.state);
  return out;
}

test('a malformed command is rejected by apply too, with the same state object', () => {
  const s = clusterOf3();
  expectReject(s, C.promote({ generation: 'two' }), 'invalid_command', 'generation', '"two"');
  expectReject(s, { v: COMMAND_VERSION + 1 } as never, 'unsupported_version', `version ${COMMAND_VERSION + 1}`);
});

test('member.add: creates member and postgres node; refuses duplicates, reused addresses, and past the limit', () => {
  const s = run([C.memberAdd('n1', 1)]);
  const m = s.members.get('n1')!;
  assert.deepEqual(m.health, { healthy: false, reportedAtMs: 1_700_000_000_000, detail: 'no health report yet' });
  assert.equal(s.postgres.nodes.get('n1')!.role, 'absent');
  assert.equal(s.postgres.nodes.get('n1')!.reportedAtMs, null);
  expectReject(s, C.memberAdd('n1', 9), 'member_exists', '"n1"', 'already exists');
  expectReject(
    s,
    { ...C.memberAdd('n2', 2), addresses: { raft: '10.0.0.2:7000', api: '10.0.0.2:8080', proxy: '10.0.0.2:6432', postgres: '10.0.0.1:5432' } },
    'address_taken',
    'addresses.postgres',
    '"10.0.0.1:5432"',
    'member "n1"',
  );
  let full = initialState();
  for (let i = 0; i < LIMITS.members; i++) full = run([C.memberAdd(`m${i}`, i)], full);
  expectReject(full, C.memberAdd('n99', 99), 'limit_reached', `${LIMITS.members} members`);
});

test('member.remove: refuses the primary, a sync standby and a member with tenants placed on it', () => {
  let s = clusterOf3();
  expectReject(s, C.memberRemove({ id: 'n9' }), 'unknown_member', '"n9"', 'n1, n2, n3');
  expectReject(s, C.memberRemove({ id: 'n1' }), 'member_in_use', 'primary of generation 1');
  expectReject(s, C.memberRemove({ id: 'n2' }), 'member_in_use', 'synchronous standby', 'pg.syncStandbys');
  s = run([C.syncStandbys({ nodes: ['n3'], quorum: 1 }), C.tenantCreate(), C.tenantPlace({ node: 'n2' })], s);
  expectReject(s, C.memberRemove({ id: 'n2' }), 'member_in_use', '1 tenant(s)', '"t1"', 'tenant.place');
  s = run([C.tenantPlace({ node: null }), C.memberRemove({ id: 'n2' })], s);
  assert.equal(s.members.has('n2'), false);
  assert.equal(s.postgres.nodes.has('n2'), false);
  checkState(s);
});

test('member.health and pg.report record observations of a member only', () => {
  let s = clusterOf3();
  expectReject(s, C.memberHealth({ id: 'n7' }), 'unknown_member', '"n7"');
  expectReject(s, C.pgReport({ node: 'n7' }), 'unknown_member', 'node', '"n7"');
  s = run(
    [C.memberHealth({ id: 'n2', healthy: false, detail: 'postgres not running', atMs: 5 }), C.pgReport({ node: 'n2', role: 'standby', timeline: 3, atMs: 6 })],
    s,
  );
  assert.deepEqual(s.members.get('n2')!.health, { healthy: false, reportedAtMs: 5, detail: 'postgres not running' });
  const n2 = s.postgres.nodes.get('n2')!;
  assert.equal(n2.reportedRole, 'standby');
  assert.equal(n2.role, 'absent', 'a report does not change the wanted role');
  assert.equal(n2.timeline, 3);
  assert.equal(n2.reportedAtMs, 6);
});

test('pg.promote: generation + 1 exactly; sets primary, lease, history; fences the old primary; clears failoverBlocked', () => {
  let s = clusterOf3();
  assert.equal(s.postgres.primary, 'n1');
  assert.deepEqual(s.postgres.lease, { holder: 'n1', generation: 1, durationMs: 3000, renewalSeq: 0 });
  expectReject(s, C.promote({ node: 'n2', generation: 1 }), 'stale_generation', 'current generation is 1', 'must carry 2');
  expectReject(s, C.promote({ node: 'n2', generation: 3 }), 'stale_generation', 'must carry 2');
  expectReject(s, C.promote({ node: 'n9', generation: 2 }), 'unknown_member', '"n9"');
  s = run([C.failoverBlocked({ reason: 'n3 unreachable' })], s);
  // n1 holds the lease: a promotion must name the renewal it saw lapse, exactly.
  const failover = { node: 'n2', generation: 2, reason: 'failover: n1 unreachable', lsn: '0/5000000', leaseDurationMs: 2000, automatic: true, atMs: 42 };
  expectReject(s, C.promote(failover), 'stale_renewal', 'lapsedLease: null', '"n1" holds the lease');
  s = run([C.renew({ seq: 1 })], s);
  expectReject(s, C.promote({ ...failover, lapsedLease: { holder: 'n1', renewalSeq: 0 } }), 'stale_renewal', 'renewed after the observation');
  const out = ok(s, C.promote({ ...failover, lapsedLease: { holder: 'n1', renewalSeq: 1 } }));
  assert.deepEqual(out.result, { ok: true, type: 'pg.promote', generation: 2 });
  const pg = out.state.postgres;
  assert.equal(pg.primary, 'n2');
  assert.equal(pg.generation, 2);
  assert.deepEqual(pg.lease, { holder: 'n2', generation: 2, durationMs: 2000, renewalSeq: 0 });
  assert.equal(pg.nodes.get('n1')!.role, 'fenced');
  assert.equal(pg.nodes.get('n2')!.role, 'primary');
  assert.deepEqual(pg.syncStandbys, ['n3'], 'the new primary leaves the sync set');
  assert.equal(pg.syncQuorum, 1);
  assert.equal(pg.failoverBlocked, null);
  assert.deepEqual(pg.history.at(-1), { generation: 2, node: 'n2', reason: 'failover: n1 unreachable', lsn: '0/5000000', atMs: 42 });
});

test('pg.promote: refuses a recloning node, and an automatic promotion while paused (manual is allowed)', () => {
  let s = run([C.setRole({ node: 'n3', role: 'recloning' })], clusterOf3());
  expectReject(s, C.promote({ node: 'n3', generation: 2 }), 'not_promotable', '"n3"', 'recloning');
  s = run([C.maintenance({ paused: true, reason: 'upgrading n2' })], s);
  const lapsedLease = { holder: 'n1', renewalSeq: 0 };
  expectReject(s, C.promote({ node: 'n2', generation: 2, automatic: true, lapsedLease }), 'maintenance_paused', 'upgrading n2', 'automatic: false');
  ok(s, C.promote({ node: 'n2', generation: 2, automatic: false, lapsedLease }));
});

test('pg.promote: history keeps only the newest entries', () => {
  let s = run([C.memberAdd('n1', 1), C.memberAdd('n2', 2)]);
  const n = LIMITS.history + 5;
  for (let g = 1; g <= n; g++) {
    const lease = s.postgres.lease;
    s = apply(s, C.promote({ node: g % 2 ? 'n1' : 'n2', generation: g, lapsedLease: lease && { holder: lease.holder, renewalSeq: lease.renewalSeq } })).state;
  }
  assert.equal(s.postgres.history.length, LIMITS.history);
  assert.equal(s.postgres.history[0]!.generation, 6);
  assert.equal(s.postgres.history.at(-1)!.generation, n);
  checkState(s);
});

test('pg.setRole: current generation only; never the primary; never "primary"', () => {
  const s = clusterOf3();
  expectReject(s, C.setRole({ generation: 0 }), 'stale_generation', '0 is stale', 'current generation is 1');
  expectReject(s, C.setRole({ generation: 5 }), 'stale_generation', 'ahead');
  expectReject(s, C.setRole({ node: 'n1' }), 'is_primary', '"n1"', 'pg.fence');
  expectReject(s, C.setRole({ node: 'n8' }), 'unknown_member', '"n8"');
  const out = ok(s, C.setRole({ node: 'n2', role: 'standby' }));
  assert.equal(out.state.postgres.nodes.get('n2')!.role, 'standby');
});

test('pg.fence: fencing the primary removes primary and lease, keeps the generation', () => {
  const s = clusterOf3();
  expectReject(s, C.fence({ generation: 0 }), 'stale_generation');
  const out = ok(s, C.fence({ node: 'n1' }));
  assert.equal(out.state.postgres.primary, null);
  assert.equal(out.state.postgres.lease, null);
  assert.equal(out.state.postgres.generation, 1);
  assert.equal(out.state.postgres.nodes.get('n1')!.role, 'fenced');
  const other = ok(s, C.fence({ node: 'n3' }));
  assert.equal(other.state.postgres.primary, 'n1');
  assert.equal(other.state.postgres.nodes.get('n3')!.role, 'fenced');
});

test('lease.renew: holder and generation must match, seq must increase', () => {
  let s = clusterOf3();
  expectReject(s, C.renew({ holder: 'n2' }), 'not_lease_holder', '"n2"', '"n1" holds it');
  expectReject(s, C.renew({ generation: 0 }), 'stale_generation');
  const out = ok(s, C.renew({ seq: 5 }));
  assert.deepEqual(out.result, { ok: true, type: 'lease.renew', generation: 1, renewalSeq: 5 });
  s = out.state;
  expectReject(s, C.renew({ seq: 5 }), 'stale_renewal', 'seq: 5', 'last renewal 5');
  expectReject(s, C.renew({ seq: 4 }), 'stale_renewal');
  ok(s, C.renew({ seq: 6 }));
  s = run([C.fence({ node: 'n1' })], s);
  expectReject(s, C.renew({ seq: 7 }), 'no_lease', 'pg.promote');
  s = run([C.promote({ node: 'n2', generation: 2 })], s);
  expectReject(s, C.renew({ holder: 'n1', generation: 1, seq: 7 }), 'stale_generation', 'current generation is 2');
});

test('lease.release: the holder gives up lease and primary; a promotion follows', () => {
  const s = clusterOf3();
  expectReject(s, C.release({ holder: 'n3' }), 'not_lease_holder', '"n3"');
  expectReject(s, C.release({ generation: 2 }), 'stale_generation');
  const out = ok(s, C.release());
  assert.equal(out.state.postgres.lease, null);
  assert.equal(out.state.postgres.primary, null);
  assert.equal(out.state.postgres.nodes.get('n1')!.role, 'fenced');
  expectReject(out.state, C.release(), 'no_lease');
  ok(out.state, C.promote({ node: 'n2', generation: 2, reason: 'switchover' }));
});

test('pg.syncStandbys: members only, never the primary', () => {
  const s = clusterOf3();
  expectReject(s, C.syncStandbys({ nodes: ['n2', 'n5'] }), 'unknown_member', '"n5"');
  expectReject(s, C.syncStandbys({ nodes: ['n1', 'n2'] }), 'is_primary', '"n1"');
  expectReject(s, C.syncStandbys({ generation: 0 }), 'stale_generation');
  const out = ok(s, C.syncStandbys({ nodes: [], quorum: 0 }));
  assert.deepEqual(out.state.postgres.syncStandbys, []);
  assert.equal(out.state.postgres.syncQuorum, 0);
});

test('pg.failoverBlocked: set and clear, current generation only', () => {
  const s = clusterOf3();
  expectReject(s, C.failoverBlocked({ generation: 0 }), 'stale_generation');
  const set = ok(s, C.failoverBlocked({ reason: 'n1 and n3 unreachable', atMs: 9 }));
  assert.deepEqual(set.state.postgres.failoverBlocked, { reason: 'n1 and n3 unreachable', atMs: 9 });
  assert.equal(ok(set.state, C.failoverBlocked({ reason: null })).state.postgres.failoverBlocked, null);
});

test('pg.scheduleSwitchover: set, read back, refused while one is set; cancel is idempotent', () => {
  const s = clusterOf3();
  const set = ok(s, C.scheduleSwitchover({ to: 'n2', notBeforeMs: 5_000, atMs: 1_000 }));
  assert.deepEqual(set.result, { ok: true, type: 'pg.scheduleSwitchover', generation: 1 });
  assert.deepEqual(set.state.postgres.scheduledSwitchover, { to: 'n2', notBeforeMs: 5_000, requestedAtMs: 1_000 });
  // The instant is data: apply does not compare it with any clock (I2), so one in the
  // proposer's past is stored as given (the API refuses those before proposing).
  assert.deepEqual(ok(s, C.scheduleSwitchover({ to: null, notBeforeMs: 1, atMs: 2 })).state.postgres.scheduledSwitchover, {
    to: null,
    notBeforeMs: 1,
    requestedAtMs: 2,
  });
  expectReject(set.state, C.scheduleSwitchover({ to: 'n3', notBeforeMs: 9_000 }), 'switchover_scheduled', 'to "n2" is already scheduled', 'cancel it first');

  const cancel = ok(set.state, C.scheduleSwitchover({ to: null, notBeforeMs: null }));
  assert.deepEqual(cancel.result, { ok: true, type: 'pg.scheduleSwitchover', generation: 1, cancelled: true });
  assert.equal(cancel.state.postgres.scheduledSwitchover, null);
  assert.deepEqual(encodeSnapshot(cancel.state), encodeSnapshot(s), 'a cancel restores the state exactly');
  const again = apply(cancel.state, C.scheduleSwitchover({ to: null, notBeforeMs: null }));
  assert.deepEqual(again.result, { ok: true, type: 'pg.scheduleSwitchover', generation: 1, cancelled: false });
  assert.equal(again.state, cancel.state, 'cancelling nothing changes nothing');
});

test('pg.scheduleSwitchover: stale generation, unknown or primary target, no primary', () => {
  const s = clusterOf3();
  expectReject(s, C.scheduleSwitchover({ generation: 0 }), 'stale_generation', 'generation: 0 is stale', 'current generation is 1');
  expectReject(s, C.scheduleSwitchover({ generation: 2 }), 'stale_generation', 'ahead of the current generation 1');
  expectReject(s, C.scheduleSwitchover({ to: null, notBeforeMs: null, generation: 0 }), 'stale_generation');
  expectReject(s, C.scheduleSwitchover({ to: 'n9' }), 'unknown_member', 'to: "n9" is not a member', 'n1, n2, n3');
  expectReject(s, C.scheduleSwitchover({ to: 'n1' }), 'is_primary', 'to: "n1" is already the primary');
  const released = run([C.release()], s);
  expectReject(released, C.scheduleSwitchover(), 'no_primary', 'no primary in generation 1');
  expectReject(run([C.memberAdd('n1', 1)]), C.scheduleSwitchover({ generation: 0 }), 'no_primary');
  // A cancel needs no primary: whatever was scheduled can always be withdrawn.
  assert.equal(ok(released, C.scheduleSwitchover({ to: null, notBeforeMs: null })).result.ok, true);
});

test('pg.scheduleSwitchover: any promotion clears it; fencing the primary does not', () => {
  const s = run([C.scheduleSwitchover({ to: 'n3' })], clusterOf3());
  const promoted = ok(s, C.promote({ node: 'n2', generation: 2, lapsedLease: { holder: 'n1', renewalSeq: 0 }, reason: 'failover: n1 unreachable' }));
  assert.equal(promoted.state.postgres.scheduledSwitchover, null, 'a failover to another node supersedes the schedule');
  const fenced = ok(s, C.fence({ node: 'n1' }));
  assert.deepEqual(fenced.state.postgres.scheduledSwitchover, s.postgres.scheduledSwitchover, 'kept: the controller drops it at its time (no primary)');
  const released = run([C.release()], s);
  const switched = ok(released, C.promote({ node: 'n3', generation: 2, reason: 'switchover: n1 -> n3' }));
  assert.equal(switched.state.postgres.scheduledSwitchover, null, 'the scheduled switchover itself clears it');
});

test('tenant.create: unique id, name, database and role among live tenants; names freed by delete', () => {
  let s = run([C.tenantCreate()]);
  const t = s.tenants.get('t1')!;
  assert.equal(t.state, 'active');
  assert.equal(t.placement, null);
  assert.equal(JSON.stringify(t).includes('password'), false);
  expectReject(s, C.tenantCreate(), 'tenant_exists', '"t1"');
  expectReject(s, C.tenantCreate({ id: 't2' }), 'name_taken', 'name: "acme"', 'tenant "t1"');
  expectReject(s, C.tenantCreate({ id: 't2', name: 'acme2' }), 'name_taken', 'database: "acme_db"');
  expectReject(s, C.tenantCreate({ id: 't2', name: 'acme2', database: 'acme2_db' }), 'name_taken', 'role: "acme_owner"');
  s = run([C.tenantDelete()], s);
  expectReject(s, C.tenantCreate(), 'tenant_exists', 'deleted tenant', 'tenant.purge');
  s = run([C.tenantCreate({ id: 't2' })], s);
  assert.equal(s.tenants.get('t2')!.name, 'acme');
  checkState(s);
});

test('tenant.setLimits: replaces all four limits of a live tenant; tenant.create starts with poolSize and poolMode null; version 3 keeps poolMode', () => {
  let s = run([C.tenantCreate()]);
  assert.deepEqual(
    s.tenants.get('t1')!.limits,
    { maxConnections: 20, rateLimitPerSec: 500, poolSize: null, poolMode: null },
    'version-1 tenant.create keeps its meaning: the default pool size and mode',
  );
  s = ok(s, C.tenantSetLimits({ limits: { maxConnections: 40, rateLimitPerSec: 100, poolSize: 2, poolMode: 'session' } })).state;
  assert.deepEqual(s.tenants.get('t1')!.limits, { maxConnections: 40, rateLimitPerSec: 100, poolSize: 2, poolMode: 'session' });
  // The same limits again change nothing: the same state object.
  const same = ok(s, C.tenantSetLimits({ limits: { maxConnections: 40, rateLimitPerSec: 100, poolSize: 2, poolMode: 'session' } }));
  assert.equal(same.state, s);
  // Version 3 predates poolMode: it sets the other three and leaves poolMode as it is.
  s = ok(s, C.tenantSetLimitsV3({ limits: { maxConnections: 41, rateLimitPerSec: 100, poolSize: 3 } })).state;
  assert.deepEqual(s.tenants.get('t1')!.limits, { maxConnections: 41, rateLimitPerSec: 100, poolSize: 3, poolMode: 'session' });
  assert.equal(ok(s, C.tenantSetLimitsV3({ limits: { maxConnections: 41, rateLimitPerSec: 100, poolSize: 3 } })).state, s);
  // null goes back to the proxy's defaults.
  s = ok(s, C.tenantSetLimits({ limits: { maxConnections: 40, rateLimitPerSec: 100, poolSize: null, poolMode: null } })).state;
  assert.equal(s.tenants.get('t1')!.limits.poolSize, null);
  assert.equal(s.tenants.get('t1')!.limits.poolMode, null);
  // Unknown or deleted tenants: rejected, state unchanged (expectReject checks the bytes).
  expectReject(s, C.tenantSetLimits({ id: 't9' }), 'unknown_tenant', '"t9"');
  const deleted = run([C.tenantDelete()], s);
  expectReject(deleted, C.tenantSetLimits(), 'tenant_deleted', '"t1"', 'deleted');
  // Survives a snapshot round trip.
  const withPool = run([C.tenantSetLimits({ limits: { maxConnections: 20, rateLimitPerSec: 500, poolSize: 5, poolMode: 'transaction' } })], s);
  assert.deepEqual(decodeSnapshot(encodeSnapshot(withPool)).tenants.get('t1')!.limits, {
    maxConnections: 20,
    rateLimitPerSec: 500,
    poolSize: 5,
    poolMode: 'transaction',
  });
});

test('tenant.delete / setState / place / purge', () => {
  let s = run([C.memberAdd('n1', 1), C.tenantCreate()]);
  expectReject(s, C.tenantDelete({ id: 't9' }), 'unknown_tenant', '"t9"');
  expectReject(s, C.tenantPlace({ node: 'n4' }), 'unknown_member', '"n4"');
  expectReject(s, C.tenantPurge(), 'tenant_not_deleted', 'active', 'tenant.delete');
  s = run([C.tenantPlace(), C.tenantSetState({ state: 'suspended' })], s);
  assert.equal(s.tenants.get('t1')!.placement, 'n1');
  assert.equal(s.tenants.get('t1')!.state, 'suspended');
  s = run([C.tenantDelete({ atMs: 77 })], s);
  assert.equal(s.tenants.get('t1')!.state, 'deleted');
  assert.equal(s.tenants.get('t1')!.deletedAtMs, 77);
  expectReject(s, C.tenantDelete(), 'tenant_deleted', 'was deleted');
  expectReject(s, C.tenantSetState({ state: 'active' }), 'tenant_deleted');
  expectReject(s, C.tenantPlace(), 'tenant_deleted');
  s = run([C.tenantPurge()], s);
  assert.equal(s.tenants.has('t1'), false);
});

test('backup.record / update / delete', () => {
  let s = run([C.backupRecordV1()]);
  expectReject(s, C.backupRecordV1(), 'backup_exists', '"b1"', 'backup.update');
  expectReject(s, C.backupUpdateV1({ id: 'b2' }), 'unknown_backup', '"b2"');
  expectReject(s, C.backupUpdateV1({ endLsn: undefined, checksum: undefined }), 'invalid_value', 'endLsn: required to complete');
  expectReject(s, C.backupUpdateV1({ endLsn: '0/1' }), 'invalid_value', "before the backup's startLsn 0/2000028");
  s = run([C.backupUpdateV1({ state: 'running', sizeBytes: 100 }), C.backupUpdateV1({ atMs: 50 })], s);
  const b = s.backups.get('b1')!;
  assert.equal(b.state, 'complete');
  assert.equal(b.endLsn, '0/2000100');
  assert.equal(b.finishedAtMs, 50);
  expectReject(s, C.backupUpdateV1({ state: 'failed' }), 'invalid_transition', 'already "complete"', 'final');
  s = run([C.tenantCreate(), C.computeCreate({ sourceSnapshot: 'b1' })], s);
  expectReject(s, C.backupDelete(), 'backup_in_use', 'compute "c1"');
  s = run([C.computeUpdate({ state: 'failed', address: undefined }), C.computeDelete(), C.backupDelete()], s);
  assert.equal(s.backups.size, 0);
});

test('wal.record is idempotent for an identical segment and refuses a different one; wal.delete', () => {
  let s = run([C.walRecord()]);
  const again = ok(s, C.walRecord({ atMs: 99 }));
  assert.equal(again.state, s);
  assert.deepEqual(again.result, { ok: true, type: 'wal.record', generation: 0, existed: true });
  expectReject(s, C.walRecord({ checksum: 'sha256:' + 'ee'.repeat(32), sizeBytes: 1 }), 'wal_segment_conflict', 'different checksum, sizeBytes', 'immutable');
  expectReject(
    s,
    C.walDelete({ names: ['000000010000000000000002', '000000010000000000000003'] }),
    'unknown_wal_segment',
    '000000010000000000000003',
    'nothing was deleted',
  );
  s = run([C.walDelete()], s);
  assert.equal(s.walSegments.size, 0);
});

test('compute.create: needs a live tenant and a complete backup whose end is at or before sourceLsn', () => {
  let s = run([C.tenantCreate(), C.backupRecordV1()]);
  expectReject(s, C.computeCreate({ tenantId: 't9' }), 'unknown_tenant', 'tenantId: no tenant has id "t9"');
  expectReject(s, C.computeCreate({ tenantId: null, branchOf: 't9' }), 'unknown_tenant', 'branchOf');
  expectReject(s, C.computeCreate({ sourceSnapshot: 'b9' }), 'unknown_backup', '"b9"');
  expectReject(s, C.computeCreate({ sourceSnapshot: 'b1' }), 'invalid_value', '"running"', 'complete backup');
  s = run([C.backupUpdateV1()], s);
  expectReject(s, C.computeCreate({ sourceSnapshot: 'b1', sourceLsn: '0/2000050' }), 'invalid_value', '0/2000050 is before the end of backup "b1" (0/2000100)');
  s = run([C.computeCreate({ sourceSnapshot: 'b1', sourceLsn: '0/2000100', atMs: 10 })], s);
  const c = s.computes.get('c1')!;
  assert.equal(c.state, 'starting');
  assert.equal(c.address, null);
  assert.equal(c.lastActivityMs, 10);
  expectReject(s, C.computeCreate(), 'compute_exists', '"c1"');
  s = run([C.tenantSetState({ state: 'suspended' })], s);
  expectReject(s, C.computeCreate({ id: 'c2' }), 'tenant_not_active', 'suspended');
  ok(s, C.computeCreate({ id: 'c2', tenantId: null, branchOf: 't1' }));
  s = run([C.tenantDelete()], s);
  expectReject(s, C.computeCreate({ id: 'c2' }), 'tenant_deleted');
  expectReject(s, C.tenantPurge(), 'tenant_in_use', 'compute "c1"');
});

test('compute.update: legal transitions, address while running, lastActivityMs never decreases; compute.delete', () => {
  let s = run([C.tenantCreate(), C.computeCreate({ atMs: 100 })]);
  expectReject(s, C.computeUpdate({ id: 'c9' }), 'unknown_compute', '"c9"');
  expectReject(s, C.computeUpdate({ address: undefined }), 'invalid_value', 'needs an address');
  expectReject(
    s,
    C.computeUpdate({ state: 'suspended', address: undefined }),
    'invalid_transition',
    'from "starting" to "suspended"',
    '"running", "suspending", "failed"',
  );
  expectReject(s, C.computeDelete(), 'compute_active', '"starting"');
  s = run([C.computeUpdate({ lastActivityMs: 500 })], s);
  assert.equal(s.computes.get('c1')!.address, '10.0.1.5:5432');
  s = run([C.computeUpdate({ state: undefined, address: undefined, lastActivityMs: 200 })], s);
  assert.equal(s.computes.get('c1')!.lastActivityMs, 500);
  s = run([C.computeUpdate({ state: 'suspending', address: undefined })], s);
  assert.equal(s.computes.get('c1')!.address, null, 'leaving running clears the address');
  s = run([C.computeUpdate({ state: 'suspended', address: undefined }), C.computeDelete()], s);
  assert.equal(s.computes.size, 0);
});

test('maintenance.set pauses and resumes', () => {
  const s = run([C.maintenance({ atMs: 3 })]);
  assert.deepEqual(s.maintenance, { paused: true, reason: 'upgrading n2', atMs: 3 });
  assert.deepEqual(run([C.maintenance({ paused: false, reason: null, atMs: 4 })], s).maintenance, { paused: false, reason: null, atMs: 4 });
});

test('a state that breaks an invariant makes apply crash with InvariantError (programmer error)', () => {
  const s = clusterOf3();
  // Simulate a bug: n2 wanted as primary too while n1 is the primary.
  const broken: ClusterState = {
    ...s,
    postgres: { ...s.postgres, nodes: mapWith(s.postgres.nodes, 'n2', { ...s.postgres.nodes.get('n2')!, role: 'primary' }) },
  };
  assert.throws(() => apply(broken, C.renew()), InvariantError);
  assert.throws(() => checkState(broken), /n2 has role primary but the primary is n1/);
  // A schedule naming the primary cannot arise (scheduling refuses it, promotion clears it).
  const aimedAtPrimary: ClusterState = { ...s, postgres: { ...s.postgres, scheduledSwitchover: { to: 'n1', notBeforeMs: 5, requestedAtMs: 1 } } };
  assert.throws(() => apply(aimedAtPrimary, C.renew()), /a switchover to n1 is scheduled, but it is already the primary/);
});

// --- the backup index (command version 4) -----------------------------------------------

const SHA = 'sha256:' + 'ab'.repeat(32);

/** n1..n3, and b1 (full, of n2) complete at 0/2000100. */
function withCompleteFull(): ClusterState {
  return run([C.backupRecord(), C.backupComplete({ atMs: 60 })], clusterOf3());
}

/** An incremental `id` of `parent`, starting at `startLsn`. */
const incremental = (id: string, parent: string, startLsn: string, atMs = T1) =>
  C.backupRecord({ id, kind: 'incremental', parent, startLsn, prefix: `c1/basebackups/${id}/`, atMs });
const T1 = 1_700_000_100_000;

test('backup.record (v4) starts a running backup with kind, parent, node and prefix; complete records end and sizes', () => {
  let s = run([C.backupRecord({ atMs: 50 })], clusterOf3());
  assert.deepEqual(s.backups.get('b1'), {
    id: 'b1',
    kind: 'full',
    parent: null,
    node: 'n2',
    timeline: 1,
    startLsn: '0/2000028',
    endLsn: null,
    tarBytes: null,
    storedBytes: 0,
    checksum: null,
    prefix: 'c1/basebackups/b1/',
    state: 'running',
    failureReason: null,
    verification: UNVERIFIED,
    atMs: 50,
    finishedAtMs: null,
  });
  expectReject(s, C.backupRecord(), 'backup_exists', '"b1"');
  expectReject(s, C.backupRecord({ id: 'b2', node: 'n9' }), 'unknown_member', 'node: "n9" is not a member');
  // Prefixes never overlap: deleting one backup's objects must not delete another's (I7).
  expectReject(s, C.backupRecord({ id: 'b2' }), 'backup_exists', 'prefix', 'overlaps backup "b1"');
  expectReject(s, C.backupRecord({ id: 'b2', prefix: 'c1/basebackups/' }), 'backup_exists', 'prefix');
  expectReject(s, C.backupRecord({ id: 'b2', prefix: 'c1/basebackups/b1/x/' }), 'backup_exists', 'prefix');
  s = run([C.backupComplete({ atMs: 60 })], s);
  const b = s.backups.get('b1')!;
  assert.deepEqual([b.state, b.endLsn, b.tarBytes, b.storedBytes, b.checksum, b.finishedAtMs], ['complete', '0/2000100', 190_000_000, 40_000_000, SHA, 60]);
  expectReject(s, C.backupComplete(), 'invalid_transition', 'already "complete"');
  expectReject(s, C.backupFail(), 'invalid_transition', 'already "complete"');
});

test('backup.update (v4): failed records the reason; the end may not precede the start', () => {
  let s = run([C.backupRecord()], clusterOf3());
  expectReject(s, C.backupComplete({ endLsn: '0/1' }), 'invalid_value', "before the backup's startLsn 0/2000028");
  expectReject(s, C.backupComplete({ id: 'b7' }), 'unknown_backup', '"b7"');
  s = run([C.backupFail({ atMs: 70 })], s);
  const b = s.backups.get('b1')!;
  assert.deepEqual([b.state, b.failureReason, b.finishedAtMs, b.endLsn], ['failed', 'connection to n2 lost', 70, null]);
  expectReject(s, C.backupComplete(), 'invalid_transition', 'already "failed"', 'final');
});

test('backup.update (v5): the exact start replaces the estimate; the end is checked against it, and an incremental still starts after its parent ends', () => {
  // Recorded with an estimate (0/2000028) above where the standby's backup really started and ended.
  let s = run([C.backupRecord()], clusterOf3());
  expectReject(s, C.backupComplete({ endLsn: '0/2000000' }), 'invalid_value', "before the backup's startLsn 0/2000028");
  s = run([C.backupCompleteV5({ startLsn: '0/1FFFF00', endLsn: '0/2000000', atMs: 60 })], s);
  const b = s.backups.get('b1')!;
  assert.deepEqual([b.state, b.startLsn, b.endLsn], ['complete', '0/1FFFF00', '0/2000000']);
  // An incremental on b1 (ends 0/2000000) whose exact start comes before that end is refused.
  s = run([incremental('b2', 'b1', '0/3000000')], s);
  expectReject(s, C.backupCompleteV5({ id: 'b2', startLsn: '0/1FFFFFF', endLsn: '0/3000100' }), 'invalid_value', 'before the end of the parent "b1"');
  s = run([C.backupCompleteV5({ id: 'b2', startLsn: '0/2000000', endLsn: '0/2000000' })], s);
  assert.equal(s.backups.get('b2')!.startLsn, '0/2000000');
});

test('backup.record (v4): an incremental needs a recorded, complete parent that did not fail verification', () => {
  let s = run([C.backupRecord()], clusterOf3());
  expectReject(s, incremental('b2', 'b9', '0/3000000'), 'unknown_backup', 'parent: no backup has id "b9"');
  const running = expectReject(
    s,
    incremental('b2', 'b1', '0/3000000'),
    'backup_unusable',
    'parent: backup "b1" is "running"',
    'only against a complete backup',
  );
  assert.equal(running.error.field, 'parent');
  const failed = run([C.backupFail()], s);
  expectReject(failed, incremental('b2', 'b1', '0/3000000'), 'backup_unusable', 'parent: backup "b1" is "failed"');
  s = run([C.backupComplete()], s);
  expectReject(s, incremental('b2', 'b1', '0/2000050'), 'invalid_value', 'startLsn: 0/2000050 is before the end of the parent "b1" (0/2000100)');
  const onTimeline2 = run([C.backupRecord({ id: 'b5', timeline: 2, prefix: 'c1/basebackups/b5/' }), C.backupComplete({ id: 'b5' })], s);
  expectReject(onTimeline2, incremental('b2', 'b5', '0/3000000'), 'invalid_value', 'timeline: 1 is before the parent "b5"\'s timeline 2');
  const badParent = run([C.backupVerify({ result: 'failed', kind: 'checksums', detail: 'part 2: sha256 mismatch' })], s);
  expectReject(badParent, incremental('b2', 'b1', '0/3000000'), 'backup_unusable', 'failed verification', 'part 2: sha256 mismatch', 'take a full backup');
  // Verified again (the latest result wins), it can be a parent again.
  const reverified = run([C.backupVerify({ kind: 'restore' })], badParent);
  assert.equal(run([incremental('b2', 'b1', '0/3000000')], reverified).backups.get('b2')!.parent, 'b1');
  s = run([incremental('b2', 'b1', '0/3000000', 80)], s);
  const b2 = s.backups.get('b2')!;
  assert.deepEqual([b2.kind, b2.parent, b2.state, b2.prefix], ['incremental', 'b1', 'running', 'c1/basebackups/b2/']);
  // An incremental of an incremental: a chain.
  s = run([C.backupComplete({ id: 'b2', endLsn: '0/3000100' }), incremental('b3', 'b2', '0/4000000')], s);
  assert.equal(s.backups.get('b3')!.parent, 'b2');
  checkState(s);
});

test('backup.delete: refused (backup_in_use) while another backup is an incremental of it; a chain is deleted newest first (I7)', () => {
  let s = run(
    [C.backupComplete({ id: 'b2', endLsn: '0/3000100' }), incremental('b3', 'b2', '0/4000000')],
    run([incremental('b2', 'b1', '0/3000000')], withCompleteFull()),
  );
  const r = expectReject(s, C.backupDelete({ id: 'b1' }), 'backup_in_use', 'backup "b2" is an incremental of backup "b1"', 'delete "b2" first', 'newest first');
  assert.equal(r.error.field, 'id');
  expectReject(s, C.backupDelete({ id: 'b2' }), 'backup_in_use', 'backup "b3" is an incremental of backup "b2"');
  s = run([C.backupDelete({ id: 'b3' })], s);
  expectReject(s, C.backupDelete({ id: 'b1' }), 'backup_in_use', '"b2"');
  s = run([C.backupDelete({ id: 'b2' }), C.backupDelete({ id: 'b1' })], s);
  assert.equal(s.backups.size, 0);
  // A running incremental holds its parent too.
  s = run([incremental('b2', 'b1', '0/3000000')], withCompleteFull());
  expectReject(s, C.backupDelete({ id: 'b1' }), 'backup_in_use', '"b2"');
});

test('backup.verify: only a complete backup; records the latest result, kind, detail and time', () => {
  let s = run([C.backupRecord()], clusterOf3());
  expectReject(s, C.backupVerify(), 'backup_unusable', 'backup "b1" is "running"', 'only a complete backup can be verified');
  expectReject(run([C.backupFail()], s), C.backupVerify(), 'backup_unusable', '"failed"');
  expectReject(s, C.backupVerify({ id: 'b5' }), 'unknown_backup', '"b5"');
  s = run([C.backupComplete(), C.backupVerify({ atMs: 90, detail: '12 parts match' })], s);
  assert.deepEqual(s.backups.get('b1')!.verification, { state: 'verified', atMs: 90, detail: '12 parts match', kind: 'checksums' });
  s = run([C.backupVerify({ atMs: 95, result: 'failed', kind: 'restore', detail: 'recovery stopped at 0/2000090' })], s);
  assert.deepEqual(s.backups.get('b1')!.verification, { state: 'failed', atMs: 95, detail: 'recovery stopped at 0/2000090', kind: 'restore' });
});

test('version-1 backup.record and backup.update keep their meaning, written in the new shape (full, node and tar size unknown, unverified)', () => {
  let s = run([C.backupRecordV1({ sizeBytes: 7, atMs: 40 })]);
  assert.deepEqual(s.backups.get('b1'), {
    id: 'b1',
    kind: 'full',
    parent: null,
    node: null,
    timeline: 1,
    startLsn: '0/2000028',
    endLsn: null,
    tarBytes: null,
    storedBytes: 7,
    checksum: null,
    prefix: 'backups/b1/base.tar',
    state: 'running',
    failureReason: null,
    verification: UNVERIFIED,
    atMs: 40,
    finishedAtMs: null,
  });
  // Version 1 may record a finished backup in one command, and update running -> running.
  s = run([C.backupUpdateV1({ state: 'running', sizeBytes: 100 }), C.backupRecordV1({ id: 'b2', state: 'failed', objectKey: 'backups/b2.tar', atMs: 41 })], s);
  assert.equal(s.backups.get('b1')!.storedBytes, 100);
  assert.deepEqual([s.backups.get('b2')!.state, s.backups.get('b2')!.failureReason, s.backups.get('b2')!.finishedAtMs], ['failed', null, 41]);
  // A version-1 full backup, once complete, can be the parent of a version-4 incremental.
  s = run([C.backupUpdateV1({ atMs: 50 }), C.memberAdd('n2', 2), incremental('b3', 'b1', '0/3000000')], s);
  assert.equal(s.backups.get('b3')!.parent, 'b1');
  checkState(s);
});

test('LIMITS.backups: at the bound backup.record is refused (limit_reached) until some are deleted', () => {
  let s = clusterOf3();
  const cmds = Array.from({ length: LIMITS.backups }, (_, i) => C.backupRecord({ id: `b${i}`, prefix: `c1/basebackups/b${i}/` }));
  s = applyAll(s, cmds).state;
  assert.equal(s.backups.size, LIMITS.backups);
  expectReject(s, C.backupRecord({ id: 'bx', prefix: 'c1/basebackups/bx/' }), 'limit_reached', `${LIMITS.backups} backups`);
  expectReject(s, C.backupRecordV1({ id: 'bx' }), 'limit_reached');
  s = run([C.backupDelete({ id: 'b0' }), C.backupRecord({ id: 'bx', prefix: 'c1/basebackups/bx/' })], s);
  assert.equal(s.backups.size, LIMITS.backups);
});

test('checkState catches a broken backup index: a dangling or unfinished parent, a kind without its parent, a verified running backup', () => {
  const s = run([C.backupComplete({ id: 'b2', endLsn: '0/3000100' })], run([incremental('b2', 'b1', '0/3000000')], withCompleteFull()));
  checkState(s);
  const b1 = s.backups.get('b1')!;
  const b2 = s.backups.get('b2')!;
  const broken: [ClusterState, RegExp][] = [
    [{ ...s, backups: mapWithout(s.backups, 'b1') }, /incremental backup b2's parent b1 is not in the index \(I7\)/],
    [{ ...s, backups: mapWith(s.backups, 'b1', { ...b1, state: 'running', finishedAtMs: null }) }, /parent b1 is running/],
    [{ ...s, backups: mapWith(s.backups, 'b2', { ...b2, parent: null }) }, /backup b2 is incremental with parent null/],
    [{ ...s, backups: mapWith(s.backups, 'b1', { ...b1, parent: 'b2' }) }, /backup b1 is full with parent b2/],
    [{ ...s, backups: mapWith(s.backups, 'b1', { ...b1, kind: 'incremental', parent: 'b2' }) }, /starts before its parent|loops/],
    [
      {
        ...s,
        backups: mapWith(s.backups, 'b2', {
          ...b2,
          state: 'running',
          finishedAtMs: null,
          verification: { state: 'verified', atMs: 1, detail: null, kind: 'checksums' },
        }),
      },
      /b2 is running but was verified/,
    ],
    [{ ...s, backups: mapWith(s.backups, 'b2', { ...b2, verification: { ...UNVERIFIED, atMs: 5 } }) }, /unverified with a verification time/],
    [{ ...s, backups: mapWith(s.backups, 'b2', { ...b2, failureReason: 'x' }) }, /complete with a failure reason/],
  ];
  for (const [state, re] of broken)
    assert.throws(
      () => checkState(state),
      (e: unknown) => e instanceof InvariantError && re.test(e.message),
      String(re),
    );
});
