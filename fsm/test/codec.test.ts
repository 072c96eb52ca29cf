// Codec: round trips, canonical bytes, version refusal, frozen version-1 fixtures,
// and clear errors for corrupt snapshots.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Packr } from 'msgpackr';
import { COMMAND_VERSION, commandVersionOf, validateCommand } from '../commands.js';
import { SNAPSHOT_FORMAT_VERSION, canonicalBytes, decodeCommand, decodeSnapshot, encodeCommand, encodeSnapshot, toPlain, type PlainState } from '../codec.js';
import { InvariantError, SnapshotFormatError, UnsupportedVersionError, isRejection } from '../errors.js';
import { ClusterStateMachine } from '../machine.js';
import { LIMITS, UNVERIFIED, initialState, type Backup, type ClusterState } from '../state.js';
import { C, clusterOf3, hex, run } from './helpers.js';
import {
  PROMOTE_V1,
  PROMOTE_V1_HEX,
  SCHEDULE_SWITCHOVER_V2,
  SCHEDULE_SWITCHOVER_V2_HEX,
  SNAPSHOT_V1_BASE64,
  SNAPSHOT_V1_COMMANDS,
  SNAPSHOT_V2_BASE64,
  SNAPSHOT_V2_COMMANDS,
  SNAPSHOT_V3_BASE64,
  SNAPSHOT_V3_COMMANDS,
  TENANT_SET_LIMITS_V3,
  TENANT_SET_LIMITS_V3_HEX,
  SNAPSHOT_V4_BASE64,
  SNAPSHOT_V4_COMMANDS,
  SNAPSHOT_V5_BASE64,
  SNAPSHOT_V5_COMMANDS,
  TENANT_SET_LIMITS_V6,
  TENANT_SET_LIMITS_V6_HEX,
  BACKUP_RECORD_V4,
  BACKUP_RECORD_V4_HEX,
  BACKUP_COMPLETE_V4,
  BACKUP_COMPLETE_V4_HEX,
  BACKUP_FAIL_V4,
  BACKUP_FAIL_V4_HEX,
  BACKUP_VERIFY_V4,
  BACKUP_VERIFY_V4_HEX,
  SNAPSHOT_V6_BASE64,
  SNAPSHOT_V6_COMMANDS,
  WAL_ARCHIVED_V7,
  WAL_ARCHIVED_V7_HEX,
  WAL_FORGET_V7,
  WAL_FORGET_V7_HEX,
  WAL_HISTORY_V7,
  WAL_HISTORY_V7_HEX,
} from './fixtures.js';

const raw = new Packr({ useRecords: false });
const pack = (v: unknown): Uint8Array => new Uint8Array(raw.pack(v));

test('commands round trip through encode/decode', () => {
  for (const c of [
    C.memberAdd('n1', 1),
    C.promote(),
    C.tenantCreate(),
    C.syncStandbys(),
    C.computeUpdate({ address: null, state: 'failed' }),
    C.walDelete(),
    C.scheduleSwitchover(),
    C.scheduleSwitchover({ to: null, notBeforeMs: null }),
  ]) {
    assert.deepEqual(decodeCommand(encodeCommand(c)), c);
  }
});

test('command encoding is canonical: key order and undefined fields do not matter', () => {
  const a = C.promote();
  const reversed = Object.fromEntries(Object.entries(a).reverse());
  assert.deepEqual(encodeCommand(reversed as typeof a), encodeCommand(a));
  assert.deepEqual(canonicalBytes({ b: 1, a: { d: [1, { z: 0, y: -0 }], c: undefined } }), canonicalBytes({ a: { d: [1, { y: 0, z: 0 }] }, b: 1 }));
  assert.throws(() => canonicalBytes({ m: new Map() }), InvariantError);
  assert.throws(() => canonicalBytes({ n: NaN }), InvariantError);
});

test('decodeCommand never throws on garbage and says what is wrong', () => {
  const cases: [Uint8Array, RegExp][] = [
    [new Uint8Array([0xc1]), /must be an object .*got a C1Type object/],
    [new Uint8Array([]), /not a msgpack-encoded command/],
    [new Uint8Array([...encodeCommand(C.promote()), 0x00]), /not a msgpack-encoded command/],
    [pack(42), /must be an object/],
    [pack({ v: 1, type: 'pg.promote' }), /atMs: missing/],
    [pack({ ...C.promote(), generation: 2n ** 60n }), /generation: .*64-bit integer/],
  ];
  for (const [bytes, re] of cases) {
    const r = decodeCommand(bytes);
    assert.ok(isRejection(r));
    assert.equal(r.error.code, 'invalid_command');
    assert.match(r.error.message, re);
  }
});

test('a command of a newer version is refused by name; the state machine stops rather than diverge', () => {
  const bytes = pack({ ...C.renew(), v: COMMAND_VERSION + 1 });
  const r = decodeCommand(bytes);
  assert.ok(isRejection(r));
  assert.equal(r.error.code, 'unsupported_version');
  assert.match(r.error.message, new RegExp(`version ${COMMAND_VERSION + 1} is newer than this build understands \\(versions 1\\.\\.${COMMAND_VERSION}\\)`));
  const m = new ClusterStateMachine({ initial: clusterOf3() });
  const before = m.snapshot();
  assert.throws(
    () => m.apply(bytes, 17, 3),
    (e: unknown) => e instanceof UnsupportedVersionError && /log entry 17 \(term 3\)/.test(e.message),
  );
  assert.deepEqual(m.snapshot(), before);
});

test('snapshots round trip and restore gives byte-identical snapshots', () => {
  const s = run(SNAPSHOT_V1_COMMANDS);
  const bytes = encodeSnapshot(s);
  const back = decodeSnapshot(bytes);
  assert.deepEqual(toPlain(back), toPlain(s));
  assert.equal(hex(encodeSnapshot(back)), hex(bytes));
  assert.deepEqual(decodeSnapshot(new Uint8Array()), initialState());
  assert.deepEqual(encodeSnapshot(decodeSnapshot(encodeSnapshot(initialState()))), encodeSnapshot(initialState()));
});

test('snapshot encoding is canonical: the same state reached in a different order gives the same bytes', () => {
  const a = run([
    C.memberAdd('n1', 1),
    C.memberAdd('n2', 2),
    C.memberAdd('n3', 3),
    C.tenantCreate(),
    C.tenantCreate({ id: 't2', name: 'b', database: 'b', role: 'b' }),
  ]);
  const b = run([
    C.tenantCreate({ id: 't2', name: 'b', database: 'b', role: 'b' }),
    C.memberAdd('n3', 3),
    C.memberAdd('n2', 2),
    C.tenantCreate(),
    C.memberAdd('n1', 1),
  ]);
  assert.notDeepEqual([...a.members.keys()], [...b.members.keys()], 'the Maps really are in different orders');
  assert.deepEqual(encodeSnapshot(a), encodeSnapshot(b));
});

test('a snapshot of a newer format is refused, naming both versions', () => {
  const plain = { ...toPlain(clusterOf3()), format: SNAPSHOT_FORMAT_VERSION + 1 };
  assert.throws(
    () => decodeSnapshot(canonicalBytes(plain)),
    (e: unknown) =>
      e instanceof UnsupportedVersionError &&
      e.message.includes(`snapshot format ${SNAPSHOT_FORMAT_VERSION + 1} is newer than this build reads (formats 1..${SNAPSHOT_FORMAT_VERSION})`),
  );
  const m = new ClusterStateMachine({ initial: clusterOf3() });
  const before = m.snapshot();
  assert.throws(() => m.restore(canonicalBytes(plain)), UnsupportedVersionError);
  assert.deepEqual(m.snapshot(), before, 'a refused restore leaves the state as it was');
});

test('corrupt snapshots fail with SnapshotFormatError naming the problem', () => {
  const plain = toPlain(clusterOf3());
  const cases: [unknown, RegExp][] = [
    [{ ...plain, format: 0 }, /format is 0; expected a version from 1/],
    [{ ...plain }, /format is undefined/],
    [{ ...plain, format: 1, members: 'x' }, /snapshot members: "x" is not valid/],
    [{ ...plain, format: 1, extra: 1 }, /snapshot extra: unknown field/],
    [{ ...plain, format: 1, members: [plain.members[0], plain.members[0], plain.members[1]] }, /members: lists "n1" twice/],
    [{ ...plain, format: 1, postgres: { ...plain.postgres, generation: 0 } }, /inconsistent: .*primary exists in generation 0|inconsistent/],
    [{ ...plain, format: 1, postgres: { ...plain.postgres, primary: 'n2' } }, /inconsistent: .*n1 has role primary but the primary is n2/],
    [
      { ...plain, format: 1, postgres: { ...plain.postgres, nodes: plain.postgres.nodes.map((n) => ({ ...n, lsn: { ...n.lsn, flushed: 'nope' } })) } },
      /postgres\.nodes\[0\]\.lsn\.flushed: "nope"/,
    ],
  ];
  for (const [p, re] of cases)
    assert.throws(
      () => decodeSnapshot(pack(p)),
      (e: unknown) => e instanceof SnapshotFormatError && re.test(e.message),
      String(re),
    );
  assert.throws(() => decodeSnapshot(new Uint8Array([0xc1, 0x00])), SnapshotFormatError);
  assert.throws(() => decodeSnapshot(pack([1, 2])), /not a msgpack map/);
});

test('frozen v1 snapshot fixture still decodes, through the migration to the current format', () => {
  const bytes = new Uint8Array(Buffer.from(SNAPSHOT_V1_BASE64, 'base64'));
  const s = decodeSnapshot(bytes);
  assert.deepEqual([...s.members.keys()].sort(), ['n1', 'n2', 'n3']);
  assert.equal(s.members.get('n3')!.health.detail, 'disk 91% full');
  assert.equal(s.members.get('n2')!.addresses.postgres, '10.0.0.2:5432');
  const pg = s.postgres;
  assert.equal(pg.primary, 'n2');
  assert.equal(pg.generation, 2);
  assert.deepEqual(pg.lease, { holder: 'n2', generation: 2, durationMs: 5000, renewalSeq: 0 });
  assert.deepEqual(pg.syncStandbys, ['n3']);
  assert.equal(pg.syncQuorum, 1);
  assert.equal(pg.nodes.get('n1')!.role, 'fenced');
  assert.deepEqual(pg.nodes.get('n2')!.lsn, { received: 'FFFFFFFF/FFFFFFFF', flushed: '16/B374D848', replayed: '0/3000100' });
  assert.deepEqual(
    pg.history.map((h) => [h.generation, h.node, h.reason, h.lsn]),
    [
      [1, 'n1', 'bootstrap', '0/3000148'],
      [2, 'n2', 'switchover to n2', '16/B374D848'],
    ],
  );
  assert.deepEqual(pg.failoverBlocked, { reason: 'n1 and n3 unreachable', atMs: 7000 });
  assert.equal(s.tenants.get('t1')!.placement, 'n2');
  assert.equal(s.tenants.get('t0')!.state, 'deleted');
  assert.equal(s.tenants.get('t1')!.scram.iterations, 4096);
  assert.equal(s.backups.get('b1')!.state, 'complete');
  // Format 4 reshaped the backups: a format-1 record reads as a full backup of an unrecorded node, unverified.
  assert.deepEqual(s.backups.get('b1'), {
    id: 'b1',
    kind: 'full',
    parent: null,
    node: null,
    timeline: 1,
    startLsn: '0/2000028',
    endLsn: '0/2000100',
    tarBytes: null,
    storedBytes: 190_000_000,
    checksum: 'sha256:' + 'ab'.repeat(32),
    prefix: 'backups/b1/base.tar',
    state: 'complete',
    failureReason: null,
    verification: UNVERIFIED,
    atMs: 5000,
    finishedAtMs: 5001,
  });
  assert.equal(s.walSegments.get('000000010000000000000002')!.sizeBytes, 16 * 1024 * 1024);
  assert.equal(s.computes.get('c1')!.lastActivityMs, 6500);
  assert.deepEqual(s.maintenance, { paused: true, reason: 'upgrading n3', atMs: 8000 });
  assert.equal(pg.scheduledSwitchover, null, 'format 2 added scheduledSwitchover; the migration sets it to null');
  const m = new ClusterStateMachine();
  m.restore(bytes);
  assert.equal(m.state.postgres.generation, 2);
  // The migration gives exactly the state this build reaches by replaying the same
  // commands: re-encoded, the two are byte-identical (I2 across an upgrade).
  const replayed = run(SNAPSHOT_V1_COMMANDS);
  assert.equal(hex(encodeSnapshot(s)), hex(encodeSnapshot(replayed)), 'a migrated v1 snapshot equals a replay, byte for byte');
  assert.equal(hex(m.snapshot()), hex(encodeSnapshot(replayed)));
  // And format 1 was exactly this encoding minus the field format 2 added: the frozen
  // bytes are still reproduced from the fixture commands.
  const plain = plainBeforeFormat6(replayed);
  const { scheduledSwitchover: _addedInFormat2, ...postgresV1 } = plain.postgres;
  assert.equal(
    hex(canonicalBytes({ ...plain, tenants: withoutPoolSize(plain.tenants), backups: backupsAsFormat3(plain.backups), postgres: postgresV1, format: 1 })),
    hex(bytes),
    'format 1 replays the fixture commands to exactly the frozen bytes',
  );
  assert.ok(
    s.tenants.size > 0 && [...s.tenants.values()].every((t) => t.limits.poolSize === null),
    'format 3 added limits.poolSize; the migration sets it to null',
  );
});

test('frozen v2 snapshot fixture decodes (and, while the format is 2, re-encodes to the same bytes)', () => {
  const bytes = new Uint8Array(Buffer.from(SNAPSHOT_V2_BASE64, 'base64'));
  const s = decodeSnapshot(bytes);
  assert.deepEqual(s.postgres.scheduledSwitchover, { to: 'n3', notBeforeMs: 1_763_719_200_000, requestedAtMs: 9000 });
  assert.equal(s.postgres.primary, 'n2');
  assert.equal(s.postgres.generation, 2);
  assert.deepEqual(toPlain(s), toPlain(run(SNAPSHOT_V2_COMMANDS)));
  if ((SNAPSHOT_FORMAT_VERSION as number) === 2) {
    assert.equal(hex(encodeSnapshot(s)), hex(bytes), 'format 2 encodes this state to exactly the frozen bytes');
    assert.equal(hex(encodeSnapshot(run(SNAPSHOT_V2_COMMANDS))), hex(bytes), 'format 2 replays the fixture commands to exactly the frozen bytes');
  }
  // Format 2 was exactly this build's encoding minus the field format 3 added.
  const plain = plainBeforeFormat6(run(SNAPSHOT_V2_COMMANDS));
  assert.equal(
    hex(canonicalBytes({ ...plain, tenants: withoutPoolSize(plain.tenants), backups: backupsAsFormat3(plain.backups), format: 2 })),
    hex(bytes),
    'format 2 replays the fixture commands to exactly the frozen bytes',
  );
  assert.ok(
    [...s.tenants.values()].every((t) => t.limits.poolSize === null),
    'the format-2 migration sets limits.poolSize to null',
  );
});

test('frozen v3 snapshot fixture decodes (and, while the format is 3, re-encodes to the same bytes)', () => {
  const bytes = new Uint8Array(Buffer.from(SNAPSHOT_V3_BASE64, 'base64'));
  const s = decodeSnapshot(bytes);
  assert.deepEqual(s.tenants.get('t1')!.limits, { maxConnections: 30, rateLimitPerSec: 500, poolSize: 8, poolMode: null });
  assert.equal(s.tenants.get('t0')!.limits.poolSize, null, 'a deleted tenant keeps the default');
  assert.deepEqual(toPlain(s), toPlain(run(SNAPSHOT_V3_COMMANDS)));
  if ((SNAPSHOT_FORMAT_VERSION as number) === 3) {
    assert.equal(hex(encodeSnapshot(s)), hex(bytes), 'format 3 encodes this state to exactly the frozen bytes');
    assert.equal(hex(encodeSnapshot(run(SNAPSHOT_V3_COMMANDS))), hex(bytes), 'format 3 replays the fixture commands to exactly the frozen bytes');
  }
  // Format 3 was exactly this build's encoding with the backups in their format-3 shape;
  // the migration gives the replay of its commands byte for byte.
  const plain = plainBeforeFormat6(run(SNAPSHOT_V3_COMMANDS));
  assert.equal(
    hex(canonicalBytes({ ...plain, tenants: withoutPoolMode(plain.tenants), backups: backupsAsFormat3(plain.backups), format: 3 })),
    hex(bytes),
    'format 3 replays the fixture commands to exactly the frozen bytes',
  );
  assert.equal(hex(encodeSnapshot(s)), hex(encodeSnapshot(run(SNAPSHOT_V3_COMMANDS))), 'a migrated format-3 snapshot equals a replay, byte for byte');
});

test('a format-3 snapshot must carry limits.poolSize (null or a positive integer)', () => {
  const plain = toPlain(run([C.tenantCreate()], clusterOf3()));
  const t = plain.tenants[0]!;
  const { poolSize: _p, ...limitsWithout } = t.limits;
  const cases: [unknown, RegExp][] = [
    [{ ...plain, format: 3, tenants: [{ ...t, limits: limitsWithout }] }, /tenants\[0\]\.limits\.poolSize: missing; expected null or a pool size/],
    [{ ...plain, format: 3, tenants: [{ ...t, limits: { ...t.limits, poolSize: 0 } }] }, /tenants\[0\]\.limits\.poolSize: 0 is not valid/],
  ];
  for (const [p, re] of cases)
    assert.throws(
      () => decodeSnapshot(pack(p)),
      (e: unknown) => e instanceof SnapshotFormatError && re.test(e.message),
      String(re),
    );
  // A format-2 snapshot has no pool sizes: the migration sets them to null.
  assert.equal(decodeSnapshot(pack({ ...plain, format: 2, tenants: [{ ...t, limits: limitsWithout }] })).tenants.get('t1')!.limits.poolSize, null);
});

test('a format-2 snapshot must carry scheduledSwitchover (null or well-formed)', () => {
  const plain = toPlain(run([C.scheduleSwitchover()], clusterOf3()));
  const { scheduledSwitchover: _s, ...withoutField } = plain.postgres;
  const cases: [unknown, RegExp][] = [
    [{ ...plain, format: 2, postgres: withoutField }, /postgres\.scheduledSwitchover: missing; expected null or an object/],
    [
      { ...plain, format: 2, postgres: { ...plain.postgres, scheduledSwitchover: { to: 'n2', notBeforeMs: -1, requestedAtMs: 1 } } },
      /postgres\.scheduledSwitchover\.notBeforeMs: -1/,
    ],
    [
      { ...plain, format: 2, postgres: { ...plain.postgres, scheduledSwitchover: { to: 'n2', notBeforeMs: 1 } } },
      /scheduledSwitchover\.requestedAtMs: missing/,
    ],
    [
      { ...plain, format: 2, postgres: { ...plain.postgres, scheduledSwitchover: { to: 'n1', notBeforeMs: 1, requestedAtMs: 1 } } },
      /inconsistent: .*switchover to n1 is scheduled, but it is already the primary/,
    ],
  ];
  for (const [p, re] of cases)
    assert.throws(
      () => decodeSnapshot(pack(p)),
      (e: unknown) => e instanceof SnapshotFormatError && re.test(e.message),
      String(re),
    );
  // A format-1 snapshot cannot hold a schedule: the migration sets the field to null.
  assert.equal(decodeSnapshot(pack({ ...plain, format: 1, postgres: withoutField })).postgres.scheduledSwitchover, null);
});

test('frozen v1 command fixture still decodes to the same command', () => {
  const bytes = new Uint8Array(Buffer.from(PROMOTE_V1_HEX, 'hex'));
  const c = decodeCommand(bytes);
  assert.ok(!isRejection(c), JSON.stringify(c));
  assert.ok(c.type === 'pg.promote');
  assert.deepEqual(
    { node: c.node, generation: c.generation, reason: c.reason, lsn: c.lsn, leaseDurationMs: c.leaseDurationMs, automatic: c.automatic, atMs: c.atMs },
    { node: 'n2', generation: 7, reason: 'failover: n1 unreachable', lsn: '1/A0', leaseDurationMs: 2500, automatic: true, atMs: 1_750_000_000_123 },
  );
  // pg.promote is still written as version 1 (version 2 only added a type), so this
  // build still writes exactly these bytes.
  assert.equal(commandVersionOf('pg.promote'), 1);
  assert.deepEqual(c, validateCommand(PROMOTE_V1));
  assert.equal(hex(encodeCommand(PROMOTE_V1)), PROMOTE_V1_HEX);
});

test('frozen v2 command fixture decodes; pg.scheduleSwitchover is written as version 2', () => {
  const bytes = new Uint8Array(Buffer.from(SCHEDULE_SWITCHOVER_V2_HEX, 'hex'));
  const c = decodeCommand(bytes);
  assert.ok(!isRejection(c), JSON.stringify(c));
  assert.deepEqual(c, SCHEDULE_SWITCHOVER_V2);
  assert.ok(c.type === 'pg.scheduleSwitchover');
  assert.equal(c.v, 2);
  assert.equal(new Date(c.notBeforeMs!).toISOString(), '2026-11-21T10:00:00.000Z');
  if (commandVersionOf('pg.scheduleSwitchover') === 2) assert.equal(hex(encodeCommand(c)), SCHEDULE_SWITCHOVER_V2_HEX);
});

test('frozen v3 command fixture decodes as version 3 (tenant.setLimits is written as version 6 now)', () => {
  const bytes = new Uint8Array(Buffer.from(TENANT_SET_LIMITS_V3_HEX, 'hex'));
  const c = decodeCommand(bytes);
  assert.ok(!isRejection(c), JSON.stringify(c));
  assert.deepEqual(c, TENANT_SET_LIMITS_V3);
  assert.equal(c.v, 3);
  assert.equal(commandVersionOf('tenant.setLimits'), 6, 'written as version 6 since poolMode; version 3 stays readable');
  assert.equal(hex(encodeCommand(c)), TENANT_SET_LIMITS_V3_HEX);
  // Written as v: 2 it is invalid, not an unknown type a version-2 build would skip.
  const asV2 = validateCommand({ ...TENANT_SET_LIMITS_V3, v: 2 });
  assert.ok(isRejection(asV2));
  assert.match(asV2.error.message, /v: 2 is not valid; expected 3 \(tenant\.setLimits was added in command version 3\)/);
});

test('a build that reads only command version 1 stops on pg.scheduleSwitchover rather than diverge', () => {
  // The bytes say v: 2. A version-1 build refuses any v above 1 as unsupported_version,
  // which ClusterStateMachine turns into a stop (tested above with COMMAND_VERSION + 1).
  // Written as v: 1, the command would instead have been an "unknown type" rejection:
  // that replica would skip an entry the upgraded ones apply.
  const raw = new Packr({ useRecords: false, mapsAsObjects: true }).unpack(Buffer.from(SCHEDULE_SWITCHOVER_V2_HEX, 'hex')) as Record<string, unknown>;
  assert.equal(raw['v'], 2);
  const asV1 = decodeCommand(pack({ ...raw, v: 1 }));
  assert.ok(isRejection(asV1));
  assert.match(asV1.error.message, /v: 1 is not valid; expected 2 \(pg\.scheduleSwitchover was added in command version 2\)/);
});

test('frozen v4 snapshot fixture decodes (and, while the format is 4, re-encodes to the same bytes)', () => {
  const bytes = new Uint8Array(Buffer.from(SNAPSHOT_V4_BASE64, 'base64'));
  const s = decodeSnapshot(bytes);
  assert.deepEqual(s.backups.get('b2')!.verification, { state: 'verified', atMs: 11_002, detail: '3 parts match', kind: 'checksums' });
  assert.deepEqual([s.backups.get('b3')!.kind, s.backups.get('b3')!.parent, s.backups.get('b3')!.failureReason], ['incremental', 'b2', 'n3 restarted']);
  assert.deepEqual([s.backups.get('b4')!.parent, s.backups.get('b4')!.state, s.backups.get('b1')!.node], ['b1', 'running', null]);
  assert.deepEqual(toPlain(s), toPlain(run(SNAPSHOT_V4_COMMANDS)));
  if ((SNAPSHOT_FORMAT_VERSION as number) === 4) {
    assert.equal(hex(encodeSnapshot(s)), hex(bytes), 'format 4 encodes this state to exactly the frozen bytes');
    assert.equal(hex(encodeSnapshot(run(SNAPSHOT_V4_COMMANDS))), hex(bytes), 'format 4 replays the fixture commands to exactly the frozen bytes');
  }
  // Format 4 was exactly this build's encoding without limits.poolMode, which format 5 added.
  const plain = plainBeforeFormat6(run(SNAPSHOT_V4_COMMANDS));
  assert.equal(hex(canonicalBytes({ ...plain, tenants: withoutPoolMode(plain.tenants), format: 4 })), hex(bytes), 'format 4 replays to the frozen bytes');
  assert.ok(
    [...s.tenants.values()].every((t) => t.limits.poolMode === null),
    'the format-4 migration sets limits.poolMode to null',
  );
});

test('frozen v5 snapshot fixture decodes through the migration to format 6 (and, while the format is 5, re-encodes to the same bytes); the v6 command fixture decodes', () => {
  const bytes = new Uint8Array(Buffer.from(SNAPSHOT_V5_BASE64, 'base64'));
  const s = decodeSnapshot(bytes);
  assert.deepEqual(s.tenants.get('t1')!.limits, { maxConnections: 30, rateLimitPerSec: 500, poolSize: 8, poolMode: 'session' });
  assert.deepEqual(toPlain(s), toPlain(run(SNAPSHOT_V5_COMMANDS)));
  if ((SNAPSHOT_FORMAT_VERSION as number) === 5) {
    assert.equal(hex(encodeSnapshot(s)), hex(bytes), 'format 5 encodes this state to exactly the frozen bytes');
    assert.equal(hex(encodeSnapshot(run(SNAPSHOT_V5_COMMANDS))), hex(bytes), 'format 5 replays the fixture commands to exactly the frozen bytes');
  }
  // Format 5 was exactly this build's encoding without walArchive, which format 6 added;
  // the migration gives an empty archive index, which is what the replay gives.
  const plain = plainBeforeFormat6(run(SNAPSHOT_V5_COMMANDS));
  assert.equal(hex(canonicalBytes({ ...plain, format: 5 })), hex(bytes), 'format 5 replays the fixture commands to exactly the frozen bytes');
  assert.deepEqual(s.walArchive, { ranges: [], historyTimelines: [] }, 'the format-5 migration adds an empty walArchive');
  assert.equal(s.walSegments.size, 1, 'the per-segment records stay as they were');
  assert.equal(hex(encodeSnapshot(s)), hex(encodeSnapshot(run(SNAPSHOT_V5_COMMANDS))), 'a migrated format-5 snapshot equals a replay, byte for byte');
  const c = decodeCommand(new Uint8Array(Buffer.from(TENANT_SET_LIMITS_V6_HEX, 'hex')));
  assert.deepEqual(c, TENANT_SET_LIMITS_V6);
  assert.equal(hex(encodeCommand(TENANT_SET_LIMITS_V6)), TENANT_SET_LIMITS_V6_HEX);
});

test("a format-5 snapshot must carry limits.poolMode (null, 'session' or 'transaction'); a format-4 one gets null", () => {
  const plain = {
    ...toPlain(run([C.tenantCreate(), C.tenantSetLimits({ limits: { maxConnections: 20, rateLimitPerSec: 500, poolSize: 5, poolMode: 'session' } })])),
    format: 5,
  };
  const t = plain.tenants[0]!;
  assert.deepEqual(decodeSnapshot(pack(plain)).tenants.get('t1')!.limits.poolMode, 'session');
  const { poolMode: _p, ...limitsWithout } = t.limits;
  const cases: [unknown, RegExp][] = [
    [{ ...plain, tenants: [{ ...t, limits: limitsWithout }] }, /tenants\[0\]\.limits\.poolMode: missing; expected null or a pool mode/],
    [{ ...plain, tenants: [{ ...t, limits: { ...t.limits, poolMode: 'statement' } }] }, /tenants\[0\]\.limits\.poolMode: "statement"/],
  ];
  for (const [snap, re] of cases) assert.throws(() => decodeSnapshot(pack(snap)), re);
  assert.equal(decodeSnapshot(pack({ ...plain, format: 4, tenants: [{ ...t, limits: limitsWithout }] })).tenants.get('t1')!.limits.poolMode, null);
});

test('frozen v6 snapshot fixture decodes (and, while the format is 6, re-encodes to the same bytes); the v7 command fixtures decode', () => {
  const bytes = new Uint8Array(Buffer.from(SNAPSHOT_V6_BASE64, 'base64'));
  const s = decodeSnapshot(bytes);
  assert.deepEqual(s.walArchive, {
    ranges: [
      { timeline: 1, startLsn: '0/2800000', endLsn: '0/3000148', startAtMs: 13_000, endAtMs: 13_000 },
      { timeline: 2, startLsn: '0/3000148', endLsn: '0/6000000', startAtMs: 13_001, endAtMs: 13_002 },
      { timeline: 2, startLsn: '0/7000000', endLsn: '0/7800000', startAtMs: 13_003, endAtMs: 13_003 },
    ],
    historyTimelines: [2],
  });
  assert.deepEqual(toPlain(s), toPlain(run(SNAPSHOT_V6_COMMANDS)));
  if ((SNAPSHOT_FORMAT_VERSION as number) === 6) {
    assert.equal(hex(encodeSnapshot(s)), hex(bytes), 'format 6 encodes this state to exactly the frozen bytes');
    assert.equal(hex(encodeSnapshot(run(SNAPSHOT_V6_COMMANDS))), hex(bytes), 'format 6 replays the fixture commands to exactly the frozen bytes');
  }
  for (const [hexBytes, expected] of [
    [WAL_ARCHIVED_V7_HEX, WAL_ARCHIVED_V7],
    [WAL_HISTORY_V7_HEX, WAL_HISTORY_V7],
    [WAL_FORGET_V7_HEX, WAL_FORGET_V7],
  ] as const) {
    const c = decodeCommand(new Uint8Array(Buffer.from(hexBytes, 'hex')));
    assert.deepEqual(c, expected);
    assert.equal(commandVersionOf(expected.type), 7);
    assert.equal(hex(encodeCommand(expected)), hexBytes);
    // A version-6 build stops on them (v above its COMMAND_VERSION); labelled 6, they are invalid, not an unknown type it would skip.
    const asV6 = decodeCommand(pack({ ...expected, v: 6 }));
    assert.ok(isRejection(asV6));
    assert.match(asV6.error.message, new RegExp(`${expected.type.replace('.', '\\.')} was added in command version 7`));
  }
});

test('a format-6 snapshot must carry walArchive, every range field valid, ranges sorted and apart; a format-5 one gets an empty index', () => {
  const plain = { ...toPlain(run(SNAPSHOT_V6_COMMANDS)), format: 6 };
  const w = plain.walArchive;
  const [r0, r1, r2] = [w.ranges[0]!, w.ranges[1]!, w.ranges[2]!];
  const { walArchive: _w, ...withoutArchive } = plain;
  const { endAtMs: _e, ...r0WithoutEnd } = r0;
  const withRanges = (ranges: unknown[]) => ({ ...plain, walArchive: { ...w, ranges } });
  const cases: [unknown, RegExp][] = [
    [withoutArchive, /walArchive: missing; expected an object with ranges, historyTimelines/],
    [{ ...plain, walArchive: { ranges: [] } }, /walArchive\.historyTimelines: missing/],
    [{ ...plain, walArchive: { ...w, extra: 1 } }, /walArchive\.extra: unknown field/],
    [withRanges([r0WithoutEnd, r1, r2]), /walArchive\.ranges\[0\]\.endAtMs: missing/],
    [withRanges([{ ...r0, timeline: 0 }, r1, r2]), /walArchive\.ranges\[0\]\.timeline: 0 is not valid/],
    [withRanges([{ ...r0, startLsn: 'x/1' }, r1, r2]), /walArchive\.ranges\[0\]\.startLsn: "x\/1" is not valid; expected a Postgres LSN/],
    [withRanges([{ ...r0, endLsn: '0/1' }, r1, r2]), /walArchive\.ranges\[0\]\.endLsn: 0\/1 is before startLsn 0\/2800000/],
    [withRanges([{ ...r0, startAtMs: -1 }, r1, r2]), /walArchive\.ranges\[0\]\.startAtMs: -1 is not valid/],
    [withRanges([r1, r0, r2]), /walArchive\.ranges\[1\]\.timeline: 1 follows a range of timeline 2; expected ranges sorted by timeline/],
    [withRanges([r0, r2, r1]), /walArchive\.ranges\[2\]\.startLsn: 0\/3000148 is not after the end of the range before it on timeline 2/],
    // Touching is not allowed either: touching ranges are one.
    [withRanges([r0, { ...r1, endLsn: '0/7000000' }, r2]), /walArchive\.ranges\[2\]\.startLsn: 0\/7000000 is not after the end/],
    [{ ...plain, walArchive: { ...w, historyTimelines: [1] } }, /walArchive\.historyTimelines\[0\]: 1 is not valid; expected a timeline from 2/],
    [{ ...plain, walArchive: { ...w, historyTimelines: [3, 2] } }, /walArchive\.historyTimelines\[1\]: 2 follows 3; expected ascending, distinct/],
    [{ ...plain, walArchive: { ...w, historyTimelines: [2, 2] } }, /walArchive\.historyTimelines\[1\]: 2 follows 2/],
    [withRanges(Array.from({ length: LIMITS.walRanges + 1 }, () => r0)), /walArchive\.ranges: has 1001 items; at most 1000/],
  ];
  for (const [snap, re] of cases)
    assert.throws(
      () => decodeSnapshot(pack(snap)),
      (e: unknown) => e instanceof SnapshotFormatError && re.test(e.message),
      String(re),
    );
  // Format 5 had no walArchive: the migration adds an empty one.
  assert.deepEqual(decodeSnapshot(pack({ ...withoutArchive, format: 5 })).walArchive, { ranges: [], historyTimelines: [] });
});

test("a format-3 snapshot's backups migrate to the format-4 shape; a format-4 one must carry every field", () => {
  const plain = toPlain(run([C.backupRecordV1({ sizeBytes: 9 })]));
  const asFormat3 = { ...plain, backups: backupsAsFormat3(plain.backups), format: 3 };
  assert.deepEqual(decodeSnapshot(pack(asFormat3)).backups.get('b1'), plain.backups[0]);
  const b = toPlain(run([C.backupRecord(), C.backupComplete()], clusterOf3()));
  const b1 = b.backups[0]!;
  const { verification: _v, ...withoutVerification } = b1;
  const { node: _n, ...withoutNode } = b1;
  const cases: [unknown, RegExp][] = [
    [{ ...b, format: 4, backups: [withoutVerification] }, /backups\[0\]\.verification: missing/],
    [{ ...b, format: 4, backups: [withoutNode] }, /backups\[0\]\.node: missing; expected null or a value/],
    [{ ...b, format: 4, backups: [{ ...b1, kind: 'differential' }] }, /backups\[0\]\.kind: "differential"/],
    [{ ...b, format: 4, backups: [{ ...b1, verification: { ...b1.verification, state: 'maybe' } }] }, /backups\[0\]\.verification\.state/],
    [{ ...b, format: 4, backups: [{ ...b1, kind: 'incremental', parent: 'b9' }] }, /inconsistent: .*parent b9 is not in the index \(I7\)/],
    // A format-3 backup has sizeBytes and objectKey, which format 4 does not read.
    [{ ...b, format: 4, backups: backupsAsFormat3(plain.backups) }, /backups\[0\]\.(objectKey|sizeBytes): unknown field/],
  ];
  for (const [p, re] of cases)
    assert.throws(
      () => decodeSnapshot(pack(p)),
      (e: unknown) => e instanceof SnapshotFormatError && re.test(e.message),
      String(re),
    );
});

test('frozen v4 command fixtures decode as version 4; backup.record and backup.verify are written as version 4, backup.update as 5', () => {
  for (const [hexBytes, expected] of [
    [BACKUP_RECORD_V4_HEX, BACKUP_RECORD_V4],
    [BACKUP_COMPLETE_V4_HEX, BACKUP_COMPLETE_V4],
    [BACKUP_FAIL_V4_HEX, BACKUP_FAIL_V4],
    [BACKUP_VERIFY_V4_HEX, BACKUP_VERIFY_V4],
  ] as const) {
    const c = decodeCommand(new Uint8Array(Buffer.from(hexBytes, 'hex')));
    assert.ok(!isRejection(c), JSON.stringify(c));
    assert.deepEqual(c, expected);
    assert.equal(c.v, 4);
    assert.equal(commandVersionOf(c.type), c.type === 'backup.update' ? 5 : 4);
    assert.equal(hex(encodeCommand(c)), hexBytes);
  }
  // A version-3 build stops on them (v above its COMMAND_VERSION) rather than skip or misread them.
  const asV3 = decodeCommand(pack({ ...BACKUP_VERIFY_V4, v: 3 }));
  assert.ok(isRejection(asV3));
  assert.match(asV3.error.message, /backup\.verify was added in command version 4/);
});

test('a version-1 backup.record from the log decodes as version 1 and applies in the new shape', () => {
  const v1 = C.backupRecordV1({ state: 'complete', endLsn: '0/2000100', checksum: 'sha256:' + 'ab'.repeat(32), sizeBytes: 5 });
  const c = decodeCommand(encodeCommand(v1));
  assert.deepEqual(c, v1);
  const b = run([v1]).backups.get('b1')!;
  assert.deepEqual(
    [b.kind, b.parent, b.node, b.storedBytes, b.tarBytes, b.prefix, b.verification.state],
    ['full', null, null, 5, null, 'backups/b1/base.tar', 'unverified'],
  );
});

/** The plain state as formats 1 to 5 wrote it: without walArchive (format 6). */
function plainBeforeFormat6(s: ClusterState): Omit<PlainState, 'walArchive'> {
  const { walArchive: _addedInFormat6, ...rest } = toPlain(s);
  return rest;
}

/** A plain tenant list as formats 1 and 2 wrote it: without limits.poolSize (format 3) and limits.poolMode (format 5). */
function withoutPoolSize<T extends { limits: object }>(tenants: readonly T[]): unknown[] {
  return tenants.map((t) => {
    const { poolSize: _addedInFormat3, poolMode: _addedInFormat5, ...limits } = t.limits as { poolSize?: unknown; poolMode?: unknown };
    return { ...t, limits };
  });
}

/** A plain tenant list as formats 3 and 4 wrote it: without limits.poolMode (format 5). */
function withoutPoolMode<T extends { limits: object }>(tenants: readonly T[]): unknown[] {
  return tenants.map((t) => {
    const { poolMode: _addedInFormat5, ...limits } = t.limits as { poolMode?: unknown };
    return { ...t, limits };
  });
}

/** A format-4 plain backup list as formats 1 to 3 wrote it (every backup from version-1 commands). */
function backupsAsFormat3(backups: readonly Backup[]): unknown[] {
  return backups.map((b) => {
    assert.equal(b.kind, 'full');
    const { kind: _k, parent: _p, node: _n, tarBytes: _t, failureReason: _f, verification: _v, storedBytes, prefix, ...rest } = b;
    return { ...rest, sizeBytes: storedBytes, objectKey: prefix };
  });
}
