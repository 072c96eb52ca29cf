// Generators for the property tests.
//
// A Step is a small random record; materialize() turns it into log-entry bytes
// against the current state, so most commands are valid (the next generation, the
// lease holder's next seq, existing ids) while some are deliberately stale, unknown,
// conflicting or malformed. Realistic ids come from small pools so that collisions
// (name_taken, member_exists, wal conflicts) actually happen.

import fc from 'fast-check';
import { canonicalBytes } from '../codec.js';
import { commandVersionOf, type CommandType } from '../commands.js';
import { formatLsn, parseLsn } from '../lsn.js';
import { PG_ROLES, type ClusterState } from '../state.js';
import { SCRAM, addresses } from './helpers.js';

export interface Step {
  readonly kind: number;
  readonly r: readonly number[];
  /** 0: a malformed entry; 1-2: well-formed but aimed at unknown ids; else mostly valid. */
  readonly bad: number;
}

export const stepArb: fc.Arbitrary<Step> = fc.record({
  kind: fc.nat({ max: 10_000 }),
  r: fc.array(fc.nat({ max: 0xffffff }), { minLength: 8, maxLength: 8 }),
  bad: fc.nat({ max: 19 }),
});

export function stepsArb(maxLength: number): fc.Arbitrary<Step[]> {
  return fc.array(stepArb, { minLength: 1, maxLength, size: 'max' });
}

const MEMBERS = ['n1', 'n2', 'n3', 'n4', 'n5'];
const TENANTS = ['t1', 't2', 't3', 't4', 't5', 't6'];
const NAMES = ['acme', 'globex', 'initech', 'umbrella', 'hooli', 'stark'];
const BACKUPS = ['b1', 'b2', 'b3', 'b4', 'b5', 'b6'];
const COMPUTES = ['c1', 'c2', 'c3', 'c4'];
const T0 = 1_700_000_000_000;

function pick<T>(arr: readonly T[], r: number): T {
  return arr[r % arr.length]!;
}

function keys(m: ReadonlyMap<string, unknown>): string[] {
  return [...m.keys()].sort();
}

/** An existing key most of the time, otherwise one from the pool (maybe unknown). */
function existingOr(m: ReadonlyMap<string, unknown>, pool: readonly string[], r: number): string {
  const k = keys(m);
  return k.length > 0 && r % 6 !== 0 ? pick(k, r >> 3) : pick(pool, r >> 3);
}

function completeBackups(s: ClusterState): string[] {
  return [...s.backups.values()]
    .filter((b) => b.state === 'complete')
    .map((b) => b.id)
    .sort();
}

function lsn(a: number, b: number): string {
  const hi = a % 13 === 0 ? 0xfffffff0 + (a % 16) : a % 3;
  return formatLsn((BigInt(hi) << 32n) | BigInt((b * 4099) >>> 0));
}

function generation(s: ClusterState, r: number): number {
  const g = s.postgres.generation;
  return r % 12 === 0 ? Math.max(0, g - 1) : r % 12 === 1 ? g + 1 : g;
}

function walName(timeline: number, seg: number): string {
  return timeline.toString(16).toUpperCase().padStart(8, '0') + '00000000' + seg.toString(16).toUpperCase().padStart(8, '0');
}

type Builder = (s: ClusterState, r: readonly number[]) => Record<string, unknown>;

const BUILDERS: Record<string, Builder> = {
  'member.add': (_s, r) => ({ id: pick(MEMBERS, r[0]!), addresses: addresses(1 + ((r[0]! + (r[1]! % 7 === 0 ? 1 : 0)) % MEMBERS.length)) }),
  'member.remove': (s, r) => ({ id: existingOr(s.members, MEMBERS, r[0]!) }),
  'member.health': (s, r) => ({ id: existingOr(s.members, MEMBERS, r[0]!), healthy: r[1]! % 2 === 0, detail: r[2]! % 3 === 0 ? null : `lag ${r[2]} bytes` }),
  'pg.report': (s, r) => ({
    node: existingOr(s.members, MEMBERS, r[0]!),
    role: pick(PG_ROLES, r[1]!),
    timeline: 1 + (r[2]! % 3),
    lsn: { received: lsn(r[3]!, r[4]!), flushed: lsn(r[3]!, r[5]!), replayed: lsn(r[3]!, r[6]!) },
  }),
  'pg.promote': (s, r) => {
    const g = s.postgres.generation;
    return {
      node: existingOr(s.postgres.nodes, MEMBERS, r[0]!),
      generation: r[1]! % 10 === 0 ? g : r[1]! % 10 === 1 ? g + 2 : g + 1,
      reason: pick(['failover', 'switchover', 'bootstrap', 'forced: ogel failover --force'], r[2]!),
      lsn: lsn(r[3]!, r[4]!),
      leaseDurationMs: 1000 + (r[5]! % 5) * 500,
      automatic: r[6]! % 2 === 0,
      // Mostly the lease as it is (a lapse observed on the current renewal), sometimes
      // none or a stale renewal, which apply must refuse while another node holds it.
      lapsedLease:
        s.postgres.lease === null || r[3]! % 5 === 0
          ? null
          : { holder: s.postgres.lease.holder, renewalSeq: s.postgres.lease.renewalSeq + (r[3]! % 5 === 1 ? 1 : 0) },
    };
  },
  'pg.setRole': (s, r) => ({
    node: existingOr(s.members, MEMBERS, r[0]!),
    role: pick(['standby', 'fenced', 'recloning', 'absent'], r[1]!),
    generation: generation(s, r[2]!),
  }),
  'pg.fence': (s, r) => ({
    node: r[0]! % 2 === 0 && s.postgres.primary !== null ? s.postgres.primary : existingOr(s.members, MEMBERS, r[0]!),
    generation: generation(s, r[1]!),
    reason: 'lease lapsing',
  }),
  'lease.renew': (s, r) => {
    const lease = s.postgres.lease;
    return {
      holder: lease !== null && r[0]! % 8 !== 0 ? lease.holder : existingOr(s.members, MEMBERS, r[0]!),
      generation: generation(s, r[1]!),
      seq: Math.max(1, (lease?.renewalSeq ?? 0) + (r[2]! % 6) - 1),
    };
  },
  'lease.release': (s, r) => ({
    holder: s.postgres.lease !== null && r[0]! % 5 !== 0 ? s.postgres.lease.holder : existingOr(s.members, MEMBERS, r[0]!),
    generation: generation(s, r[1]!),
  }),
  'pg.syncStandbys': (s, r) => {
    const candidates = keys(s.members).filter((id, i) => ((r[0]! >> i) & 1) === 1 && (id !== s.postgres.primary || r[3]! % 9 === 0));
    return { nodes: candidates, quorum: candidates.length === 0 ? 0 : 1 + (r[1]! % candidates.length), generation: generation(s, r[2]!) };
  },
  'pg.failoverBlocked': (s, r) => ({ reason: r[0]! % 2 ? 'standby n3 unreachable with the old primary' : null, generation: generation(s, r[1]!) }),
  'pg.scheduleSwitchover': (s, r) => {
    // A third cancel (so schedules come and go), else a schedule: to a member (maybe
    // the primary, refused), to none (best standby), sometimes while one is set.
    if (r[0]! % 3 === 0) return { to: null, notBeforeMs: null, generation: generation(s, r[1]!) };
    return { to: r[2]! % 4 === 0 ? null : existingOr(s.members, MEMBERS, r[3]!), notBeforeMs: T0 + r[4]! * 1000, generation: generation(s, r[1]!) };
  },
  'tenant.create': (_s, r) => {
    const name = pick(NAMES, r[1]!);
    return {
      id: pick(TENANTS, r[0]!),
      name,
      database: r[2]! % 5 === 0 ? pick(NAMES, r[3]!) + '_db' : name + '_db',
      role: name + '_owner',
      limits: { maxConnections: 1 + (r[4]! % 100), rateLimitPerSec: 1 + (r[5]! % 100_000) },
      scram: SCRAM,
    };
  },
  'tenant.delete': (s, r) => ({ id: existingOr(s.tenants, TENANTS, r[0]!) }),
  'tenant.purge': (s, r) => ({ id: existingOr(s.tenants, TENANTS, r[0]!) }),
  'tenant.setState': (s, r) => ({ id: existingOr(s.tenants, TENANTS, r[0]!), state: r[1]! % 2 ? 'active' : 'suspended' }),
  'tenant.setLimits': (s, r) => ({
    id: existingOr(s.tenants, TENANTS, r[0]!),
    limits: {
      maxConnections: 1 + (r[1]! % 100),
      rateLimitPerSec: 1 + (r[2]! % 100_000),
      poolSize: r[3]! % 3 === 0 ? null : 1 + (r[4]! % 50),
      poolMode: r[5]! % 3 === 0 ? null : r[5]! % 3 === 1 ? 'session' : 'transaction',
    },
  }),
  'tenant.place': (s, r) => ({ id: existingOr(s.tenants, TENANTS, r[0]!), node: r[1]! % 4 === 0 ? null : existingOr(s.members, MEMBERS, r[2]!) }),
  // Version 1 (frozen shapes), as logs written before version 4 hold them.
  'backup.record@1': (_s, r) => {
    const complete = r[1]! % 3 === 0;
    const start = lsn(1, r[2]! % 1000);
    return {
      id: pick(BACKUPS, r[0]!),
      timeline: 1 + (r[3]! % 2),
      startLsn: start,
      endLsn: complete ? lsn(1, 1000 + (r[4]! % 1000)) : null,
      sizeBytes: r[5]! * 1000,
      checksum: complete ? 'sha256:' + 'ab'.repeat(32) : null,
      objectKey: `backups/${pick(BACKUPS, r[0]!)}/base.tar`,
      state: complete ? 'complete' : 'running',
    };
  },
  'backup.update@1': (s, r) => ({
    id: existingOr(s.backups, BACKUPS, r[0]!),
    state: pick(['running', 'complete', 'complete', 'failed'], r[1]!),
    ...(r[2]! % 4 !== 0 ? { endLsn: lsn(1, 1000 + (r[3]! % 1000)) } : {}),
    ...(r[4]! % 4 !== 0 ? { checksum: 'sha256:' + 'cd'.repeat(32) } : {}),
    sizeBytes: r[5]!,
  }),
  // Version 4: mostly incrementals of an existing backup (often complete, sometimes
  // running, failed, failed verification or unknown), starting where it ended.
  'backup.record': (s, r) => {
    const free = BACKUPS.filter((b) => !s.backups.has(b));
    const id = free.length > 0 && r[0]! % 6 !== 0 ? pick(free, r[0]!) : pick(BACKUPS, r[0]!);
    const complete = completeBackups(s);
    // Full when nothing is complete yet (mostly), else a quarter full; the rest incrementals of a
    // complete backup, or now and then of any (maybe running, failed or unknown) one.
    const parentId =
      (complete.length === 0 && r[1]! % 5 !== 0) || r[1]! % 4 === 0
        ? null
        : complete.length > 0 && r[2]! % 5 !== 0
          ? pick(complete, r[2]! >> 2)
          : existingOr(s.backups, BACKUPS, r[2]!);
    const parent = parentId === null ? undefined : s.backups.get(parentId);
    const from = parent?.endLsn ?? parent?.startLsn ?? lsn(1, r[3]! % 1000);
    return {
      id,
      kind: parentId === null ? 'full' : 'incremental',
      parent: parentId,
      node: existingOr(s.members, MEMBERS, r[4]!),
      timeline: (parent?.timeline ?? 1) + (r[5]! % 5 === 0 ? 1 : 0),
      startLsn: r[6]! % 11 === 0 ? lsn(1, 0) : formatLsn(parseLsn(from)! + BigInt(r[6]! % 5000)),
      // Now and then a prefix that overlaps another backup's (refused).
      prefix: r[3]! % 13 === 0 ? 'c1/basebackups/' : `c1/basebackups/${id}/`,
    };
  },
  'backup.update': (s, r) => {
    const running = [...s.backups.values()]
      .filter((b) => b.state === 'running')
      .map((b) => b.id)
      .sort();
    const id = running.length > 0 && r[0]! % 4 !== 0 ? pick(running, r[0]! >> 2) : existingOr(s.backups, BACKUPS, r[0]!);
    if (r[1]! % 4 === 0) return { id, state: 'failed', reason: 'connection to the node lost' };
    const estimate = s.backups.get(id)?.startLsn ?? '0/0';
    // The exact start: mostly the estimate, now and then before it (a standby's
    // backup), which for an incremental may fall before its parent's end (refused).
    const back = r[6]! % 3 === 0 ? BigInt(r[6]! % 70_000) : 0n;
    const start = formatLsn(parseLsn(estimate)! > back ? parseLsn(estimate)! - back : 0n);
    return {
      id,
      state: 'complete',
      startLsn: start,
      endLsn: r[2]! % 9 === 0 ? '0/0' : formatLsn(parseLsn(start)! + BigInt(r[3]! % 100_000)),
      tarBytes: r[4]! * 1000,
      storedBytes: r[5]! * 300,
      checksum: 'sha256:' + 'ef'.repeat(32),
    };
  },
  'backup.verify': (s, r) => {
    const failed = r[1]! % 3 === 0;
    return {
      id: r[0]! % 4 === 0 ? existingOr(s.backups, BACKUPS, r[0]!) : (pick(completeBackups(s), r[0]! >> 2) ?? existingOr(s.backups, BACKUPS, r[0]!)),
      result: failed ? 'failed' : 'verified',
      kind: pick(['checksums', 'restore'], r[2]!),
      detail: failed ? 'part 3: sha256 mismatch' : r[3]! % 2 === 0 ? null : 'all parts match',
    };
  },
  'backup.delete': (s, r) => {
    // Now and then a parent (refused while its incremental exists), else a leaf (a chain deleted newest first) or any.
    const parents = [...new Set([...s.backups.values()].map((b) => b.parent).filter((p) => p !== null))].sort();
    const leaves = keys(s.backups).filter((id) => !parents.includes(id));
    const from = r[1]! % 3 === 0 ? parents : r[1]! % 3 === 1 ? leaves : [];
    return { id: from.length > 0 ? pick(from, r[0]!) : existingOr(s.backups, BACKUPS, r[0]!) };
  },
  'wal.record': (_s, r) => {
    const timeline = 1 + (r[0]! % 2);
    const seg = 1 + (r[1]! % 6);
    const start = BigInt(seg) * 0x1000000n;
    return {
      name: walName(timeline, seg),
      timeline,
      startLsn: formatLsn(start),
      endLsn: formatLsn(start + 0x1000000n),
      sizeBytes: 16 * 1024 * 1024,
      checksum: r[2]! % 8 === 0 ? 'sha256:' + 'ee'.repeat(32) : 'sha256:' + 'cd'.repeat(32),
      objectKey: `wal/${walName(timeline, seg)}`,
    };
  },
  'wal.delete': (s, r) => {
    const names = keys(s.walSegments).filter((_, i) => ((r[0]! >> i) & 1) === 1);
    return { names: names.length > 0 && r[1]! % 7 !== 0 ? names : [walName(1, 1 + (r[2]! % 6))] };
  },
  // The continuous archive: mostly what is new since a range's end (the primary's next
  // report), sometimes overlapping it or leaving a gap, or anywhere, or a retry of a
  // whole range; now and then a stale generation (a fenced old primary) or an end
  // before the start (malformed).
  'wal.archived': (s, r) => {
    const timeline = 1 + (r[0]! % 3);
    const mine = s.walArchive.ranges.filter((x) => x.timeline === timeline);
    // A retry of a report already applied (covered: existed).
    if (mine.length > 0 && r[1]! % 8 === 1) {
      const x = pick(mine, r[2]!);
      return { generation: generation(s, r[4]!), timeline, startLsn: x.startLsn, endLsn: x.endLsn };
    }
    const ends = mine.map((x) => parseLsn(x.endLsn)!);
    const at = ends.length > 0 && r[1]! % 4 !== 0 ? pick(ends, r[2]!) : BigInt(r[2]! % 64) * 0x100000n;
    const shifted = at + pick([0n, 0n, 0n, 0x10000n, -0x10000n], r[3]!);
    const start = shifted < 0n ? 0n : shifted;
    const end = r[6]! % 23 === 0 ? (start > 0n ? start - 1n : 0n) : start + BigInt(r[5]! % 0x200000);
    return { generation: generation(s, r[4]!), timeline, startLsn: formatLsn(start), endLsn: formatLsn(end) };
  },
  'wal.history': (s, r) => ({ generation: generation(s, r[0]!), timeline: 2 + (r[1]! % 3) }),
  // Retention: mostly a position inside an existing range (trims it, drops older timelines), else anywhere.
  'wal.forget': (s, r) => {
    const ranges = s.walArchive.ranges;
    if (ranges.length > 0 && r[0]! % 3 !== 0) {
      const x = pick(ranges, r[1]!);
      const [a, b] = [parseLsn(x.startLsn)!, parseLsn(x.endLsn)!];
      return { timeline: x.timeline, beforeLsn: formatLsn(b > a ? a + (BigInt(r[2]!) % (b - a)) : a) };
    }
    return { timeline: 1 + (r[1]! % 3), beforeLsn: formatLsn(BigInt(r[2]! % 64) * 0x100000n) };
  },
  'compute.create': (s, r) => {
    const branch = r[1]! % 4 === 0;
    const tenant = existingOr(s.tenants, TENANTS, r[2]!);
    const backup = r[3]! % 3 === 0 ? existingOr(s.backups, BACKUPS, r[4]!) : null;
    return {
      id: pick(COMPUTES, r[0]!),
      tenantId: branch ? null : tenant,
      branchOf: branch ? tenant : null,
      sourceSnapshot: backup,
      sourceLsn: backup !== null && r[5]! % 2 === 0 ? lsn(1, 1000 + (r[6]! % 2000)) : null,
    };
  },
  'compute.update': (s, r) => ({
    id: existingOr(s.computes, COMPUTES, r[0]!),
    state: pick(['starting', 'running', 'running', 'suspending', 'suspended', 'failed'], r[1]!),
    ...(r[2]! % 3 !== 0 ? { address: r[3]! % 5 === 0 ? null : `10.0.2.${1 + (r[3]! % 200)}:5432` } : {}),
    ...(r[4]! % 2 === 0 ? { lastActivityMs: T0 + r[5]! } : {}),
  }),
  'compute.delete': (s, r) => {
    // Half the time one that can go (suspended or failed), if any.
    const done = [...s.computes.values()]
      .filter((k) => k.state === 'suspended' || k.state === 'failed')
      .map((k) => k.id)
      .sort();
    return { id: done.length > 0 && r[1]! % 2 === 0 ? pick(done, r[0]!) : existingOr(s.computes, COMPUTES, r[0]!) };
  },
  'maintenance.set': (_s, r) => ({ paused: r[0]! % 2 === 0, reason: r[1]! % 3 === 0 ? null : 'operator: upgrading' }),
};

/** Command types, weighted: the safety-relevant ones come up more often. */
const KINDS: string[] = [
  ...Object.keys(BUILDERS),
  'member.add',
  'member.add',
  'member.add',
  'pg.promote',
  'pg.promote',
  'pg.promote',
  'pg.promote',
  'lease.renew',
  'lease.renew',
  'lease.renew',
  'pg.report',
  'pg.syncStandbys',
  'tenant.create',
  'tenant.create',
  'tenant.create',
  'compute.create',
  'compute.create',
  'compute.update',
  'compute.update',
  'backup.update',
  'backup.record',
  'backup.record',
  'backup.record',
  'backup.update',
  'backup.update',
  'backup.verify',
  'backup.delete',
  'backup.delete',
  'compute.update',
  'compute.update',
  'compute.delete',
  'tenant.place',
  'tenant.setState',
  'tenant.delete',
  'tenant.purge',
  'wal.archived',
  'wal.archived',
  'wal.archived',
];

const JUNK_VALUES: unknown[] = [null, -1, 'x', {}, [], 1.5, '\ud800', 'a'.repeat(2000), true, 2 ** 53];

/**
 * Mostly steer a command that needs something absent towards creating it, so
 * sequences get past the empty cluster quickly (a fifth still goes through as is).
 */
function redirect(s: ClusterState, type: string, r: number): string {
  if (r % 5 === 0) return type;
  if (s.members.size < 3 && r % 2 === 0) return 'member.add';
  const family = type.split('.')[0];
  if (type === 'lease.renew' && s.postgres.lease === null) return 'pg.promote';
  if (family === 'tenant' && type !== 'tenant.create' && s.tenants.size === 0) return 'tenant.create';
  if (family === 'compute' && s.tenants.size === 0) return 'tenant.create';
  if (family === 'compute' && type !== 'compute.create' && s.computes.size === 0) return 'compute.create';
  if (family === 'backup' && !type.startsWith('backup.record') && s.backups.size === 0) return 'backup.record';
  if (type === 'wal.delete' && s.walSegments.size === 0) return 'wal.record';
  if (type === 'wal.forget' && s.walArchive.ranges.length === 0) return 'wal.archived';
  return type;
}

/** The command object a step stands for (before any corruption). */
export function commandFor(s: ClusterState, step: Step, index: number): Record<string, unknown> {
  const key = redirect(s, pick(KINDS, step.kind), step.r[7]!);
  // 'type@v': an older shape of the type, written with that version.
  const [type, shapeVersion] = key.split('@') as [string, string | undefined];
  const atMs = T0 + index * 137;
  const fields = BUILDERS[key]!(s, step.r);
  if (step.bad === 1 || step.bad === 2) {
    // Well-formed, aimed at things that do not exist.
    for (const k of ['id', 'node', 'holder']) if (k in fields) fields[k] = 'zz-unknown';
  }
  return { v: shapeVersion !== undefined ? Number(shapeVersion) : commandVersionOf(type as CommandType), type, atMs, ...fields };
}

/** The log entry a step stands for: mostly valid commands, some malformed bytes. */
export function materialize(s: ClusterState, step: Step, index: number): Uint8Array {
  const c = commandFor(s, step, index);
  if (step.bad !== 0) return canonicalBytes(c);
  const r = step.r;
  switch (r[7]! % 6) {
    case 0:
      return new Uint8Array(r.slice(0, 1 + (r[6]! % 8)).map((x) => x & 0xff));
    case 1: {
      const ks = Object.keys(c);
      return canonicalBytes({ ...c, [pick(ks, r[6]!)]: pick(JUNK_VALUES, r[5]!) });
    }
    case 2:
      return canonicalBytes({ ...c, extra: 1 });
    case 3:
      return canonicalBytes(pick([42, 'pg.promote', [1, 2, 3], null], r[6]!));
    case 4: {
      const bytes = canonicalBytes(c);
      return bytes.slice(0, r[6]! % bytes.byteLength);
    }
    default:
      return canonicalBytes({ ...c, v: pick([0, -1, '1', null], r[6]!) });
  }
}
