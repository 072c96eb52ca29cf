// validateCommand: every command's shape errors name the field, the value and what
// would be valid.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { COMMAND_TYPES, COMMAND_VERSION, commandVersionOf, validateCommand } from '../commands.js';
import { isRejection } from '../errors.js';
import { C, SCRAM } from './helpers.js';

function expectInvalid(x: unknown, field: string | undefined, ...mentions: string[]): void {
  const r = validateCommand(x);
  assert.ok(isRejection(r), `expected a rejection for ${JSON.stringify(x)}`);
  assert.equal(r.error.code, 'invalid_command', r.error.message);
  assert.equal(r.error.field, field, r.error.message);
  for (const m of mentions) assert.ok(r.error.message.includes(m), `${JSON.stringify(r.error.message)} should mention ${JSON.stringify(m)}`);
}

test('every builder in the helpers is a valid command, and every command type has one', () => {
  const built = [
    C.memberAdd('n1', 1),
    C.memberRemove(),
    C.memberHealth(),
    C.pgReport(),
    C.promote(),
    C.setRole(),
    C.fence(),
    C.renew(),
    C.release(),
    C.syncStandbys(),
    C.failoverBlocked(),
    C.scheduleSwitchover(),
    C.tenantCreate(),
    C.tenantDelete(),
    C.tenantPurge(),
    C.tenantSetState(),
    C.tenantPlace(),
    C.backupRecordV1(),
    C.backupUpdateV1(),
    C.backupRecord(),
    C.backupRecord({ kind: 'incremental', parent: 'b0' }),
    C.backupComplete(),
    C.backupFail(),
    C.backupVerify(),
    C.backupVerify({ result: 'failed', kind: 'restore', detail: 'pg_ctl start failed' }),
    C.backupDelete(),
    C.walRecord(),
    C.walDelete(),
    C.walArchived(),
    C.walArchived({ startLsn: '0/5000000', endLsn: '0/5000000' }),
    C.walHistory(),
    C.walForget(),
    C.computeCreate(),
    C.computeUpdate(),
    C.computeDelete(),
    C.maintenance(),
    C.tenantSetLimits(),
    C.tenantSetLimits({ limits: { maxConnections: 1, rateLimitPerSec: 1, poolSize: null, poolMode: 'session' } }),
    C.tenantSetLimitsV3(),
  ];
  for (const c of built) assert.deepEqual(validateCommand(c), c, c.type);
  assert.deepEqual(new Set(built.map((c) => c.type)), new Set(COMMAND_TYPES));
});

test('envelope: object, version, type, atMs, unknown fields', () => {
  expectInvalid('hello', undefined, 'must be an object', '"hello"');
  expectInvalid(null, undefined, 'null');
  expectInvalid([1], undefined, 'an array');
  expectInvalid({ type: 'member.remove', atMs: 1, id: 'n1' }, 'v', 'missing', 'command version 1');
  expectInvalid({ ...C.memberRemove(), v: 0 }, 'v', '0', 'command version 1');
  expectInvalid({ ...C.memberRemove(), v: '1' }, 'v', '"1"');
  const newer = validateCommand({ ...C.memberRemove(), v: COMMAND_VERSION + 1 });
  assert.ok(isRejection(newer));
  assert.equal(newer.error.code, 'unsupported_version');
  assert.match(newer.error.message, new RegExp(`version ${COMMAND_VERSION + 1} is newer .*versions 1\\.\\.${COMMAND_VERSION}`));
  expectInvalid({ v: 1, type: 'member.explode', atMs: 1 }, 'type', '"member.explode"', 'member.add', 'tenant.create');
  expectInvalid({ v: 1, type: 'toString', atMs: 1 }, 'type', '"toString"');
  expectInvalid({ ...C.memberRemove(), atMs: -1 }, 'atMs', '-1', 'milliseconds since the epoch');
  expectInvalid({ ...C.memberRemove(), atMs: 1.5 }, 'atMs', '1.5');
  expectInvalid({ ...C.memberRemove(), atMs: undefined }, 'atMs', 'missing');
  expectInvalid({ ...C.memberRemove(), force: true }, 'force', 'unknown field', 'expected only v, type, atMs, id');
  // Inherited properties are not fields.
  const proto = Object.create({ id: 'n1' }) as Record<string, unknown>;
  Object.assign(proto, { v: 1, type: 'member.remove', atMs: 1 });
  expectInvalid(proto, undefined, 'must be an object');
});

test('versions: each type is written with the version that introduced it; version-1 types read under any known version', () => {
  // Version 2 only added pg.scheduleSwitchover, version 3 only tenant.setLimits: every
  // other command stays version 1, so a version-1 node keeps applying them during a
  // rolling upgrade.
  // Version 4 added backup.verify and the current shapes of backup.record and backup.update.
  // Version 5: backup.update completes with the exact start. Version 6: tenant.setLimits carries poolMode.
  // Version 7 added wal.archived, wal.history and wal.forget.
  const added: Record<string, number> = {
    'pg.scheduleSwitchover': 2,
    'tenant.setLimits': 6,
    'backup.verify': 4,
    'backup.record': 4,
    'backup.update': 5,
    'wal.archived': 7,
    'wal.history': 7,
    'wal.forget': 7,
  };
  for (const type of COMMAND_TYPES) assert.equal(commandVersionOf(type), added[type] ?? 1, type);
  assert.deepEqual(validateCommand({ ...C.memberRemove(), v: 4 }), C.memberRemove());
  assert.deepEqual(validateCommand({ ...C.tenantSetLimitsV3(), v: 4 }), C.tenantSetLimitsV3(), 'versions 3 to 5 read the version-3 shape');
  assert.deepEqual(validateCommand({ ...C.tenantSetLimits(), v: 6 }), C.tenantSetLimits());
  // A command labelled with a later known version means the same, and is normalized to the version of its type.
  assert.deepEqual(validateCommand({ ...C.memberRemove(), v: 2 }), C.memberRemove());
  assert.deepEqual(validateCommand({ ...C.memberRemove(), v: 3 }), C.memberRemove());
  assert.deepEqual(validateCommand({ ...C.tenantCreate(), v: 3 }), C.tenantCreate());
  assert.deepEqual(validateCommand({ ...C.scheduleSwitchover(), v: 3 }), C.scheduleSwitchover());
  // tenant.setLimits is never version 1 or 2, for the same reason.
  expectInvalid({ ...C.tenantSetLimitsV3(), v: 2 }, 'v', '2 is not valid', 'tenant.setLimits was added in command version 3');
  expectInvalid({ ...C.tenantSetLimitsV3(), v: 1 }, 'v', '1 is not valid', 'tenant.setLimits was added in command version 3');
  // pg.scheduleSwitchover is never version 1: a version-1 build would reject it as an
  // unknown type instead of stopping, and the replicas would diverge.
  expectInvalid({ ...C.scheduleSwitchover(), v: 1 }, 'v', '1 is not valid', 'pg.scheduleSwitchover was added in command version 2');
  expectInvalid(
    { type: 'pg.scheduleSwitchover', atMs: 1 },
    'v',
    'missing',
    'command version 1, or 2 for pg.scheduleSwitchover, or 3 for tenant.setLimits, or 4 for backup.verify',
  );
  expectInvalid({ ...C.backupVerify(), v: 3 }, 'v', '3 is not valid', 'backup.verify was added in command version 4');
});

test('versions: backup.record and backup.update read their version-1 shape under 1 to 3 and the version-4 shape under 4', () => {
  // Labelled 2 or 3, the version-1 shape means the same and is normalized to v 1.
  for (const v of [2, 3]) {
    assert.deepEqual(validateCommand({ ...C.backupRecordV1(), v }), C.backupRecordV1());
    assert.deepEqual(validateCommand({ ...C.backupUpdateV1(), v }), C.backupUpdateV1());
  }
  // Each shape under the other's version is invalid, naming the field that gives it away.
  expectInvalid({ ...C.backupRecordV1(), v: 4 }, 'endLsn', 'unknown field', 'kind, parent, node');
  expectInvalid({ ...C.backupRecord(), prefix: undefined, objectKey: 'backups/b1/base.tar' }, 'objectKey', 'version 4 records a "prefix"');
  expectInvalid({ ...C.backupRecord(), v: 3 }, 'kind', 'unknown field');
  expectInvalid({ ...C.backupUpdateV1(), v: 4 }, 'sizeBytes', 'unknown field');
  expectInvalid({ ...C.backupComplete(), v: 1 }, 'tarBytes', 'unknown field');
});

test('backup.record (v4): kind and parent agree; prefix; no state', () => {
  expectInvalid(C.backupRecord({ kind: 'incremental' }), 'parent', 'is null, but an incremental backup needs one');
  expectInvalid(C.backupRecord({ parent: 'b0' }), 'parent', '"b0", but a full backup has no parent');
  expectInvalid(C.backupRecord({ parent: undefined }), 'parent', 'missing');
  expectInvalid(C.backupRecord({ kind: 'incremental', parent: 'b1' }), 'parent', 'the backup itself');
  expectInvalid(C.backupRecord({ kind: 'differential' }), 'kind', '"full", "incremental"');
  expectInvalid(C.backupRecord({ node: undefined }), 'node', 'missing');
  expectInvalid(C.backupRecord({ prefix: '/abs/' }), 'prefix', 'relative');
  expectInvalid(C.backupRecord({ prefix: 'a//b/' }), 'prefix');
  expectInvalid(C.backupRecord({ state: 'complete' }), 'state', 'recorded when it starts');
  assert.ok(!isRejection(validateCommand(C.backupRecord({ prefix: 'c1/basebackups/b1' }))), 'a prefix without the trailing "/" is still a key');
});

test('backup.update (v5): complete needs its exact start, at or before its end; version 4 has no start', () => {
  assert.ok(!isRejection(validateCommand(C.backupCompleteV5())));
  expectInvalid(C.backupCompleteV5({ startLsn: undefined }), 'startLsn', 'missing');
  expectInvalid(C.backupCompleteV5({ startLsn: '0/3000000' }), 'endLsn', 'before startLsn 0/3000000');
  expectInvalid({ ...C.backupCompleteV5(), v: 4 }, 'startLsn', 'unknown field');
  assert.equal((validateCommand({ ...C.backupFail(), v: 5 }) as { v: number }).v, 5);
});

test('backup.update (v4) and backup.verify: complete needs its end, sizes and checksum; failed a reason', () => {
  expectInvalid(C.backupComplete({ state: 'running' }), 'state', '"complete", "failed"');
  expectInvalid(C.backupComplete({ endLsn: undefined }), 'endLsn', 'missing');
  expectInvalid(C.backupComplete({ tarBytes: undefined }), 'tarBytes', 'missing');
  expectInvalid(C.backupComplete({ storedBytes: -1 }), 'storedBytes', '-1');
  expectInvalid(C.backupComplete({ checksum: undefined }), 'checksum', 'missing');
  expectInvalid(C.backupComplete({ reason: 'x' }), 'reason', 'unknown field');
  expectInvalid(C.backupFail({ reason: undefined }), 'reason', 'missing');
  expectInvalid(C.backupFail({ endLsn: '0/1' }), 'endLsn', 'unknown field');
  expectInvalid(C.backupVerify({ result: 'failed' }), 'detail', 'required when result is "failed"');
  expectInvalid(C.backupVerify({ result: 'unverified' }), 'result', '"verified", "failed"');
  expectInvalid(C.backupVerify({ kind: 'vibes' }), 'kind', '"checksums", "restore"');
  expectInvalid(C.backupVerify({ detail: undefined }), 'detail', 'missing');
});

test('normalization: LSNs canonical, sets sorted, nullable fields explicit', () => {
  const r = validateCommand({ ...C.pgReport(), lsn: { received: '00000000/0300014a', flushed: '0/300014A', replayed: '0/0' } });
  assert.ok(!isRejection(r) && r.type === 'pg.report');
  assert.deepEqual(r.lsn, { received: '0/300014A', flushed: '0/300014A', replayed: '0/0' });
  const s = validateCommand({ ...C.syncStandbys(), nodes: ['n3', 'n2'] });
  assert.ok(!isRejection(s) && s.type === 'pg.syncStandbys');
  assert.deepEqual(s.nodes, ['n2', 'n3']);
  const h = validateCommand({ v: 1, type: 'member.health', atMs: 5, id: 'n1', healthy: false });
  assert.ok(!isRejection(h) && h.type === 'member.health');
  assert.equal(h.detail, null);
  const minusZero = validateCommand({ ...C.memberRemove(), atMs: -0 });
  assert.ok(!isRejection(minusZero));
  assert.ok(Object.is(minusZero.atMs, 0));
});

test('member.add / member.remove / member.health', () => {
  expectInvalid({ ...C.memberAdd('n1', 1), id: 'N1' }, 'id', '"N1"', 'a-z');
  expectInvalid({ ...C.memberAdd('n1', 1), id: '__proto__' }, 'id', '"__proto__"');
  expectInvalid({ ...C.memberAdd('n1', 1), id: 'x'.repeat(64) }, 'id', '1-63 characters');
  expectInvalid({ ...C.memberAdd('n1', 1), addresses: { raft: '10.0.0.1:7000' } }, 'addresses.api', 'missing', 'host:port');
  expectInvalid(
    { ...C.memberAdd('n1', 1), addresses: { raft: '10.0.0.1', api: 'a:1', proxy: 'b:1', postgres: 'c:1' } },
    'addresses.raft',
    '"10.0.0.1"',
    'host:port',
  );
  expectInvalid({ ...C.memberAdd('n1', 1), addresses: { raft: 'h:70000', api: 'a:1', proxy: 'b:1', postgres: 'c:1' } }, 'addresses.raft', '1..65535');
  expectInvalid({ ...C.memberAdd('n1', 1), addresses: { raft: 'h:1', api: 'h:1', proxy: 'b:1', postgres: 'c:1' } }, 'addresses.api', 'also addresses.raft');
  assert.ok(
    !isRejection(
      validateCommand({
        ...C.memberAdd('n1', 1),
        addresses: { raft: '[::1]:7000', api: 'n1.railway.internal:8080', proxy: '127.0.0.1:6432', postgres: 'db-1:5432' },
      }),
    ),
  );
  expectInvalid(C.memberRemove({ id: 7 }), 'id', '7');
  expectInvalid(C.memberHealth({ healthy: 'yes' }), 'healthy', '"yes"', 'true or false');
  expectInvalid(C.memberHealth({ detail: 'bad\nline' }), 'detail', 'control characters');
  expectInvalid(C.memberHealth({ detail: 'x'.repeat(1001) }), 'detail', '1-1000 characters');
  expectInvalid(C.memberHealth({ detail: 'lone \ud800 surrogate' }), 'detail');
});

test('pg.report / pg.promote / pg.setRole / pg.fence', () => {
  expectInvalid(C.pgReport({ role: 'leader' }), 'role', '"leader"', '"primary", "standby", "fenced", "recloning", "absent"');
  expectInvalid(C.pgReport({ timeline: -1 }), 'timeline', '-1', '0 to 4294967295');
  expectInvalid(C.pgReport({ lsn: { received: '0/1', flushed: '3000148', replayed: '0/1' } }), 'lsn.flushed', '"3000148"', 'LSN like "0/3000148"');
  expectInvalid(C.pgReport({ lsn: { received: '0/1', flushed: '0/1' } }), 'lsn.replayed', 'missing');
  expectInvalid(C.promote({ generation: 0 }), 'generation', '0', 'current generation + 1');
  expectInvalid(C.promote({ leaseDurationMs: 3 }), 'leaseDurationMs', '3', '100 to 600000 ms');
  expectInvalid(C.promote({ automatic: undefined }), 'automatic', 'missing');
  expectInvalid(C.promote({ reason: '' }), 'reason', '""', '1-1000 characters');
  expectInvalid(C.promote({ lsn: 12 }), 'lsn', '12');
  expectInvalid(C.setRole({ role: 'primary' }), 'role', 'pg.promote', 'raises the generation');
  expectInvalid(C.setRole({ role: 'replica' }), 'role', '"replica"', '"standby"');
  expectInvalid(C.setRole({ generation: undefined }), 'generation', 'missing', 'fencing token');
  expectInvalid(C.fence({ node: '' }), 'node', '""');
  expectInvalid(C.fence({ reason: undefined }), 'reason', 'missing');
});

test('lease.renew / lease.release / pg.syncStandbys / pg.failoverBlocked', () => {
  expectInvalid(C.renew({ seq: 0 }), 'seq', '0', '1 to');
  expectInvalid(C.renew({ holder: null }), 'holder', 'null');
  expectInvalid(C.release({ generation: 1.5 }), 'generation', '1.5');
  expectInvalid(C.syncStandbys({ nodes: ['n2', 'n2'], quorum: 1 }), 'nodes', '"n2" twice');
  expectInvalid(C.syncStandbys({ nodes: ['n2', 'N3'] }), 'nodes[1]', '"N3"');
  expectInvalid(C.syncStandbys({ nodes: ['n2', 'n3'], quorum: 3 }), 'quorum', '3', '1 to 2', 'ANY k');
  expectInvalid(C.syncStandbys({ nodes: ['n2'], quorum: 0 }), 'quorum', '0', '1 to 1');
  expectInvalid(C.syncStandbys({ nodes: [], quorum: 1 }), 'quorum', '0 to 0', 'asynchronous');
  expectInvalid(C.syncStandbys({ nodes: 'n2' }), 'nodes', '"n2"', 'an array');
  expectInvalid(C.syncStandbys({ nodes: Array.from({ length: 33 }, (_, i) => `n${i}`) }), 'nodes', '33 items', 'at most 32');
  expectInvalid(C.failoverBlocked({ reason: 5 }), 'reason', '5');
  assert.ok(!isRejection(validateCommand(C.failoverBlocked({ reason: null }))));
});

test('pg.scheduleSwitchover: a time or null (cancel), a target or null, both always present', () => {
  assert.ok(!isRejection(validateCommand(C.scheduleSwitchover({ to: null }))), 'no target: the best standby then');
  assert.ok(!isRejection(validateCommand(C.scheduleSwitchover({ to: null, notBeforeMs: null }))), 'a cancel');
  expectInvalid(C.scheduleSwitchover({ notBeforeMs: undefined }), 'notBeforeMs', 'missing', 'or null to cancel');
  expectInvalid(C.scheduleSwitchover({ to: undefined }), 'to', 'missing', 'or null for the most caught-up one');
  expectInvalid(C.scheduleSwitchover({ notBeforeMs: -5 }), 'notBeforeMs', '-5', 'milliseconds since the epoch');
  expectInvalid(C.scheduleSwitchover({ notBeforeMs: '2026-11-21T10:00:00Z' }), 'notBeforeMs', '"2026-11-21T10:00:00Z"', 'an integer');
  expectInvalid(C.scheduleSwitchover({ notBeforeMs: 1.5 }), 'notBeforeMs', '1.5');
  expectInvalid(C.scheduleSwitchover({ to: 'N2' }), 'to', '"N2"', 'a-z');
  expectInvalid(C.scheduleSwitchover({ to: 'n2', notBeforeMs: null }), 'to', '"n2"', 'a cancel names no target');
  expectInvalid(C.scheduleSwitchover({ generation: undefined }), 'generation', 'missing', 'fencing token');
  expectInvalid(C.scheduleSwitchover({ at: 5 }), 'at', 'unknown field', 'to, notBeforeMs, generation');
});

test('tenant.create: identifiers, reserved names, limits, SCRAM verifier only', () => {
  expectInvalid(C.tenantCreate({ password: 'hunter2' }), 'password', 'never accepted', 'SCRAM-SHA-256 verifier');
  expectInvalid(C.tenantCreate({ scram: { ...SCRAM, password: 'hunter2' } }), 'scram.password', 'never accepted');
  expectInvalid(C.tenantCreate({ name: 'Acme' }), 'name', '"Acme"', 'Postgres identifier');
  expectInvalid(C.tenantCreate({ name: '1acme' }), 'name', 'not starting with a digit');
  expectInvalid(C.tenantCreate({ name: 'a'.repeat(64) }), 'name', '1-63 characters');
  expectInvalid(C.tenantCreate({ name: 'acme-co' }), 'name', '"acme-co"');
  expectInvalid(C.tenantCreate({ database: 'template1' }), 'database', '"template1"', 'reserved');
  expectInvalid(C.tenantCreate({ role: 'pg_monitor' }), 'role', '"pg_monitor"', 'reserved by Postgres');
  expectInvalid(C.tenantCreate({ role: 'public' }), 'role', '"public"');
  expectInvalid(C.tenantCreate({ limits: { maxConnections: 0, rateLimitPerSec: 1 } }), 'limits.maxConnections', '0', '1 to 10000');
  expectInvalid(C.tenantCreate({ limits: { maxConnections: 5 } }), 'limits.rateLimitPerSec', 'missing');
  expectInvalid(C.tenantCreate({ scram: { ...SCRAM, iterations: 1000 } }), 'scram.iterations', '1000', '4096 to');
  expectInvalid(C.tenantCreate({ scram: { ...SCRAM, storedKey: 'not base64!' } }), 'scram.storedKey', 'base64 of 32 bytes');
  expectInvalid(C.tenantCreate({ scram: { ...SCRAM, serverKey: Buffer.alloc(31).toString('base64') } }), 'scram.serverKey', '32 bytes');
  expectInvalid(C.tenantCreate({ scram: { ...SCRAM, salt: 'AAA=' } }), 'scram.salt', '8-64 bytes');
  expectInvalid(C.tenantCreate({ scram: 'SCRAM-SHA-256$4096:...' }), 'scram', 'expected an object');
});

test('tenant.setLimits: all four limits required, poolSize an integer in range or null, poolMode session, transaction or null', () => {
  const l = { maxConnections: 20, rateLimitPerSec: 500, poolSize: 5, poolMode: null };
  expectInvalid(C.tenantSetLimits({ limits: { ...l, poolSize: 0 } }), 'limits.poolSize', '0 is not valid', '1 to 10000', 'or null');
  expectInvalid(C.tenantSetLimits({ limits: { ...l, poolSize: 10_001 } }), 'limits.poolSize', '10001', '1 to 10000');
  expectInvalid(C.tenantSetLimits({ limits: { ...l, poolSize: 2.5 } }), 'limits.poolSize', '2.5');
  expectInvalid(C.tenantSetLimits({ limits: { ...l, poolSize: '5' } }), 'limits.poolSize', '"5"');
  expectInvalid(
    C.tenantSetLimits({ limits: { maxConnections: 20, rateLimitPerSec: 500, poolMode: null } }),
    'limits.poolSize',
    'missing',
    "or null for the proxy's default",
  );
  expectInvalid(C.tenantSetLimits({ limits: { ...l, poolMode: 'statement' } }), 'limits.poolMode', '"statement"', 'session', 'transaction');
  expectInvalid(
    C.tenantSetLimits({ limits: { maxConnections: 20, rateLimitPerSec: 500, poolSize: 5 } }),
    'limits.poolMode',
    'missing',
    "or null for the proxy's poolMode",
  );
  // Version 3 (frozen) has no poolMode, and refuses one.
  expectInvalid(C.tenantSetLimitsV3({ limits: { ...l, poolMode: 'session' } }), 'limits.poolMode', 'unknown field');
  expectInvalid(C.tenantSetLimits({ limits: { ...l, maxConnections: 0 } }), 'limits.maxConnections', '0', '1 to 10000');
  expectInvalid(C.tenantSetLimits({ limits: { poolSize: 5, maxConnections: 20, poolMode: null } }), 'limits.rateLimitPerSec', 'missing');
  expectInvalid(C.tenantSetLimits({ limits: { ...l, burst: 3 } }), 'limits.burst', 'unknown field');
  expectInvalid(C.tenantSetLimits({ limits: null }), 'limits', 'expected an object');
  expectInvalid(C.tenantSetLimits({ id: 'T1' }), 'id', '"T1"');
  const r = validateCommand(C.tenantSetLimits({ limits: { ...l, poolSize: null } }));
  assert.ok(!isRejection(r) && r.type === 'tenant.setLimits');
  assert.equal(r.limits.poolSize, null);
  // tenant.create takes no pool size: it is a version-1 command and keeps its fields.
  expectInvalid(C.tenantCreate({ limits: { maxConnections: 5, rateLimitPerSec: 1, poolSize: 3 } }), 'limits.poolSize', 'unknown field');
});

test('tenant.delete / purge / setState / place', () => {
  expectInvalid(C.tenantDelete({ id: undefined }), 'id', 'missing');
  expectInvalid(C.tenantPurge({ id: 'T1' }), 'id', '"T1"');
  expectInvalid(C.tenantSetState({ state: 'deleted' }), 'state', 'tenant.delete', '"active" or "suspended"');
  expectInvalid(C.tenantSetState({ state: 'paused' }), 'state', '"paused"');
  expectInvalid(C.tenantPlace({ node: 3 }), 'node', '3');
  assert.ok(!isRejection(validateCommand(C.tenantPlace({ node: null }))));
});

test('backup.record / update / delete, wal.record / delete', () => {
  expectInvalid(C.backupRecordV1({ state: 'done' }), 'state', '"done"', '"running", "complete", "failed"');
  expectInvalid(C.backupRecordV1({ state: 'complete', endLsn: '0/3000000' }), 'checksum', 'required when state is "complete"');
  expectInvalid(C.backupRecordV1({ endLsn: '0/1' }), 'endLsn', '0/1 is before startLsn 0/2000028');
  expectInvalid(C.backupRecordV1({ objectKey: '/etc/passwd' }), 'objectKey', 'relative');
  expectInvalid(C.backupRecordV1({ objectKey: 'backups/../../x' }), 'objectKey', "'..'");
  expectInvalid(C.backupRecordV1({ objectKey: 'a b' }), 'objectKey', '"a b"');
  expectInvalid(C.backupRecordV1({ timeline: 0 }), 'timeline', '0', '1 to');
  expectInvalid(C.backupUpdateV1({ checksum: 'md5' }), 'checksum', '"md5"', 'algorithm:hex');
  expectInvalid(C.backupUpdateV1({ sizeBytes: -5 }), 'sizeBytes', '-5');
  expectInvalid(C.backupDelete({ id: '' }), 'id', '""');
  expectInvalid(C.walRecord({ name: '000000010000000000000002.gz' }), 'name', '24 uppercase hex digits');
  expectInvalid(C.walRecord({ timeline: 2 }), 'timeline', '2 does not match', 'timeline 1');
  expectInvalid(C.walRecord({ endLsn: '0/1000000' }), 'endLsn', 'before startLsn');
  expectInvalid(C.walDelete({ names: [] }), 'names', 'is empty');
  expectInvalid(C.walDelete({ names: ['x'] }), 'names[0]', '"x"');
  assert.ok(!isRejection(validateCommand(C.walRecord({ name: '000000010000000000000002.partial' }))));
});

test('wal.archived / wal.history / wal.forget (v7): generation, timeline, LSNs in order; history only for timelines 2 and up', () => {
  expectInvalid(C.walArchived({ generation: undefined }), 'generation', 'missing', 'fencing token');
  expectInvalid(C.walArchived({ generation: -1 }), 'generation', '-1 is not valid');
  expectInvalid(C.walArchived({ timeline: 0 }), 'timeline', '0 is not valid', '1 to 4294967295');
  expectInvalid(C.walArchived({ timeline: 2 ** 32 }), 'timeline', '4294967296');
  expectInvalid(C.walArchived({ startLsn: '0/XYZ' }), 'startLsn', '"0/XYZ"', 'Postgres LSN');
  expectInvalid(C.walArchived({ endLsn: 3 }), 'endLsn', '3 is not valid');
  expectInvalid(C.walArchived({ endLsn: '0/2FFFFFF' }), 'endLsn', '0/2FFFFFF is before startLsn 0/3000000', 'at or after it');
  expectInvalid(C.walArchived({ name: '000000010000000000000003' }), 'name', 'unknown field', 'generation, timeline, startLsn, endLsn');
  expectInvalid(C.walHistory({ timeline: 1 }), 'timeline', '1 is not valid', '2 to 4294967295', 'timeline 1 has no history file');
  expectInvalid(C.walHistory({ timeline: '2' }), 'timeline', '"2"');
  expectInvalid(C.walHistory({ generation: 1.5 }), 'generation', '1.5');
  expectInvalid(C.walForget({ beforeLsn: null }), 'beforeLsn', 'null');
  expectInvalid(C.walForget({ timeline: 0 }), 'timeline', '0');
  expectInvalid(C.walForget({ generation: 1 }), 'generation', 'unknown field', 'timeline, beforeLsn');
  // LSNs are normalized; v 7 is the only version these types have.
  assert.deepEqual(
    validateCommand(C.walArchived({ startLsn: '0/0300000a', endLsn: '0/0500000B' })),
    C.walArchived({ startLsn: '0/300000A', endLsn: '0/500000B' }),
  );
  assert.deepEqual(validateCommand(C.walForget({ beforeLsn: '00000000/04000000' })), C.walForget());
  for (const v of [1, 6]) expectInvalid({ ...C.walForget(), v }, 'v', `${v} is not valid`, 'wal.forget was added in command version 7');
});

test('compute.create / update / delete, maintenance.set', () => {
  expectInvalid(C.computeCreate({ tenantId: null }), 'tenantId', 'neither', 'exactly one');
  expectInvalid(C.computeCreate({ branchOf: 't2' }), 'tenantId', 'both');
  expectInvalid(C.computeCreate({ sourceLsn: 'latest' }), 'sourceLsn', '"latest"');
  expectInvalid({ v: 1, type: 'compute.update', atMs: 1, id: 'c1' }, undefined, 'changes nothing', 'state, address, lastActivityMs');
  expectInvalid(C.computeUpdate({ state: 'stopped' }), 'state', '"stopped"', '"suspended"');
  expectInvalid(C.computeUpdate({ address: 'nowhere' }), 'address', '"nowhere"');
  assert.ok(!isRejection(validateCommand(C.computeUpdate({ state: 'suspending', address: null }))));
  expectInvalid(C.computeDelete({ id: [] }), 'id', 'an array');
  expectInvalid(C.maintenance({ paused: 1 }), 'paused', '1', 'true or false');
});

test('validateCommand never throws, whatever it is given', () => {
  const weird: unknown[] = [
    undefined,
    0,
    NaN,
    Infinity,
    1n,
    Symbol('s'),
    () => 1,
    new Map(),
    new Date(0),
    new Uint8Array(3),
    { v: 1n },
    { v: 1, type: {} },
    { v: 1, type: 'tenant.create', atMs: 1, limits: [] },
  ];
  for (const w of weird) assert.ok(isRejection(validateCommand(w)));
});
