// Internal invariants. A violation is a bug in this package (or a corrupt
// snapshot), never bad input: throw InvariantError and stop rather than replicate a
// corrupt state.
//
// checkStep runs after every successful apply and costs O(members), O(backups)
// after a backup command, O(WAL ranges) after wal.archived, wal.history or
// wal.forget; checkState is
// the full check, run on restore and by the tests after every step.

import { invariant } from './errors.js';
import type { Command } from './commands.js';
import { compareLsn } from './lsn.js';
import { LIMITS, type ClusterState } from './state.js';

/** Generation, primary, lease, sync set and history (O(members + history)). */
export function checkPostgres(s: ClusterState): void {
  const pg = s.postgres;
  invariant(Number.isSafeInteger(pg.generation) && pg.generation >= 0, () => `generation ${pg.generation} is not a non-negative integer`);
  invariant(pg.nodes.size === s.members.size, () => `${pg.nodes.size} postgres nodes for ${s.members.size} members`);
  let primaries = 0;
  for (const [id, n] of pg.nodes) {
    invariant(n.node === id && s.members.has(id), () => `postgres node ${id} is not a member`);
    if (n.role === 'primary') {
      primaries++;
      invariant(pg.primary === id, () => `node ${id} has role primary but the primary is ${pg.primary}`);
    }
  }
  invariant(
    (pg.primary === null) === (pg.lease === null),
    () => `primary ${pg.primary} with lease ${JSON.stringify(pg.lease)}: a primary exists exactly when a lease does`,
  );
  if (pg.primary !== null) {
    invariant(s.members.has(pg.primary), () => `primary ${pg.primary} is not a member`);
    invariant(primaries === 1, () => `${primaries} nodes have role primary`);
    invariant(pg.generation >= 1, 'a primary exists in generation 0');
  } else {
    invariant(primaries === 0, () => `${primaries} nodes have role primary but there is no primary`);
  }
  if (pg.lease !== null) {
    invariant(pg.lease.generation === pg.generation, () => `lease generation ${pg.lease!.generation} != generation ${pg.generation}`);
    invariant(pg.lease.holder === pg.primary, () => `lease holder ${pg.lease!.holder} is not the primary ${pg.primary}`);
    invariant(Number.isSafeInteger(pg.lease.renewalSeq) && pg.lease.renewalSeq >= 0, 'lease renewalSeq is not a non-negative integer');
  }
  for (let i = 0; i < pg.syncStandbys.length; i++) {
    const id = pg.syncStandbys[i]!;
    invariant(s.members.has(id), () => `sync standby ${id} is not a member`);
    invariant(id !== pg.primary, () => `sync standby ${id} is the primary`);
    invariant(i === 0 || pg.syncStandbys[i - 1]! < id, 'sync standbys are not sorted and distinct');
  }
  invariant(
    pg.syncStandbys.length === 0 ? pg.syncQuorum === 0 : pg.syncQuorum >= 1 && pg.syncQuorum <= pg.syncStandbys.length,
    () => `sync quorum ${pg.syncQuorum} for ${pg.syncStandbys.length} standbys`,
  );
  const scheduled = pg.scheduledSwitchover;
  // Scheduling refuses the primary as target, and the only way a node becomes
  // primary (pg.promote) clears the schedule.
  invariant(
    scheduled === null || scheduled.to === null || scheduled.to !== pg.primary,
    () => `a switchover to ${scheduled?.to} is scheduled, but it is already the primary`,
  );
  invariant(pg.history.length <= LIMITS.history, () => `history has ${pg.history.length} entries (limit ${LIMITS.history})`);
  for (let i = 1; i < pg.history.length; i++) {
    invariant(pg.history[i - 1]!.generation < pg.history[i]!.generation, 'history generations are not strictly increasing: two promotions in one generation');
  }
  const last = pg.history[pg.history.length - 1];
  invariant(
    last === undefined ? pg.generation === 0 : last.generation === pg.generation,
    () => `the last promotion is generation ${last?.generation} but the generation is ${pg.generation}`,
  );
}

/**
 * The backup index (O(backups)): each record's fields agree with its state and kind,
 * and I7 in the FSM: every incremental's parent is recorded and complete, so the
 * chain of every incremental leads to a full backup.
 */
export function checkBackups(s: ClusterState): void {
  for (const [id, b] of s.backups) {
    invariant(b.id === id, () => `backup keyed ${id} has id ${b.id}`);
    invariant(b.state !== 'complete' || (b.endLsn !== null && b.checksum !== null), () => `complete backup ${id} lacks endLsn or checksum`);
    invariant(b.endLsn === null || compareLsn(b.endLsn, b.startLsn) >= 0, () => `backup ${id} ends (${b.endLsn}) before it starts (${b.startLsn})`);
    invariant((b.state === 'running') === (b.finishedAtMs === null), () => `backup ${id} is ${b.state} with finishedAtMs ${b.finishedAtMs}`);
    invariant(b.failureReason === null || b.state === 'failed', () => `backup ${id} is ${b.state} with a failure reason`);
    invariant((b.kind === 'full') === (b.parent === null), () => `backup ${id} is ${b.kind} with parent ${b.parent}`);
    const v = b.verification;
    if (v.state === 'unverified') {
      invariant(v.atMs === null && v.kind === null && v.detail === null, () => `backup ${id} is unverified with a verification time, kind or detail`);
    } else {
      invariant(b.state === 'complete', () => `backup ${id} is ${b.state} but was verified (${v.state})`);
      invariant(v.atMs !== null && v.kind !== null, () => `backup ${id}'s verification (${v.state}) lacks its time or kind`);
      invariant(v.state !== 'failed' || v.detail !== null, () => `backup ${id} failed verification without a detail`);
    }
    if (b.parent !== null) {
      const p = s.backups.get(b.parent);
      invariant(p !== undefined, () => `incremental backup ${id}'s parent ${b.parent} is not in the index (I7)`);
      invariant(p.state === 'complete', () => `incremental backup ${id}'s parent ${p.id} is ${p.state}`);
      invariant(p.timeline <= b.timeline && compareLsn(p.endLsn!, b.startLsn) <= 0, () => `incremental backup ${id} starts before its parent ${p.id} ends`);
    }
  }
  // Every chain ends at a full backup: no cycles (a parent is recorded before its
  // child and cannot be deleted while the child exists). Each backup is walked once.
  const reachesFull = new Set<string>();
  for (const b of s.backups.values()) {
    const path: string[] = [];
    let cur = b;
    while (cur.parent !== null && !reachesFull.has(cur.id)) {
      invariant(path.length <= s.backups.size, () => `the chain of backup ${b.id} loops`);
      path.push(cur.id);
      cur = s.backups.get(cur.parent)!;
    }
    for (const id of path) reachesFull.add(id);
    reachesFull.add(cur.id);
  }
}

/**
 * The WAL archive's index (O(ranges + history files), both bounded): ranges sorted
 * by (timeline, startLsn), each starting at or before its end, and those of one
 * timeline neither overlapping nor touching (touching ones are merged, so a gap is
 * always real); history files of timelines 2 and up, ascending and distinct.
 */
export function checkWalArchive(s: ClusterState): void {
  const { ranges, historyTimelines } = s.walArchive;
  invariant(ranges.length <= LIMITS.walRanges, () => `${ranges.length} WAL ranges (limit ${LIMITS.walRanges})`);
  invariant(historyTimelines.length <= LIMITS.walHistories, () => `${historyTimelines.length} archived history files (limit ${LIMITS.walHistories})`);
  for (let i = 0; i < ranges.length; i++) {
    const r = ranges[i]!;
    const at = () => `WAL range ${i} (timeline ${r.timeline}, ${r.startLsn} to ${r.endLsn})`;
    invariant(Number.isSafeInteger(r.timeline) && r.timeline >= 1, () => `${at()} has an invalid timeline`);
    invariant(compareLsn(r.startLsn, r.endLsn) <= 0, () => `${at()} ends before it starts`);
    const p = ranges[i - 1];
    if (p === undefined) continue;
    invariant(p.timeline <= r.timeline, () => `${at()} follows a range of timeline ${p.timeline}: not sorted by timeline`);
    invariant(
      p.timeline < r.timeline || compareLsn(p.endLsn, r.startLsn) < 0,
      () =>
        `${at()} overlaps or touches the range before it (${p.startLsn} to ${p.endLsn}); ranges of one timeline are sorted, apart and merged when they touch`,
    );
  }
  for (let i = 0; i < historyTimelines.length; i++) {
    const t = historyTimelines[i]!;
    invariant(Number.isSafeInteger(t) && t >= 2, () => `archived history file of timeline ${t}: timelines with a history file are 2 or more`);
    invariant(i === 0 || historyTimelines[i - 1]! < t, 'archived history timelines are not ascending and distinct');
  }
}

/** After a successful apply of `c`: cheap checks that relate the two states. */
export function checkStep(prev: ClusterState, next: ClusterState, c: Command): void {
  const g0 = prev.postgres.generation;
  const g1 = next.postgres.generation;
  invariant(g1 >= g0, () => `${c.type} lowered the generation from ${g0} to ${g1}`);
  invariant(g1 === g0 || (c.type === 'pg.promote' && g1 === g0 + 1), () => `${c.type} moved the generation from ${g0} to ${g1}`);
  if (c.type === 'pg.promote') invariant(g1 === g0 + 1, () => `pg.promote left the generation at ${g1}`);
  checkPostgres(next);
  invariant(next.members.size <= LIMITS.members, 'too many members');
  invariant(next.tenants.size <= LIMITS.tenants, 'too many tenants');
  invariant(next.backups.size <= LIMITS.backups, 'too many backups');
  invariant(next.walSegments.size <= LIMITS.walSegments, 'too many WAL segments');
  invariant(next.computes.size <= LIMITS.computes, 'too many computes');
  // Bounded by LIMITS.backups, and only after a backup command.
  if (c.type.startsWith('backup.')) checkBackups(next);
  // Bounded by LIMITS.walRanges and LIMITS.walHistories; only the archive's commands change it.
  if (c.type === 'wal.archived' || c.type === 'wal.history' || c.type === 'wal.forget') checkWalArchive(next);
  else invariant(next.walArchive === prev.walArchive, () => `${c.type} changed the WAL archive's index`);
}

/** Every invariant of a state (O(size)). */
export function checkState(s: ClusterState): void {
  checkPostgres(s);
  invariant(s.members.size <= LIMITS.members, 'too many members');
  invariant(s.tenants.size <= LIMITS.tenants, 'too many tenants');
  invariant(s.backups.size <= LIMITS.backups, 'too many backups');
  invariant(s.walSegments.size <= LIMITS.walSegments, 'too many WAL segments');
  invariant(s.computes.size <= LIMITS.computes, 'too many computes');
  for (const [id, m] of s.members) invariant(m.id === id, () => `member keyed ${id} has id ${m.id}`);
  const live = { name: new Map<string, string>(), database: new Map<string, string>(), role: new Map<string, string>() };
  for (const [id, t] of s.tenants) {
    invariant(t.id === id, () => `tenant keyed ${id} has id ${t.id}`);
    invariant((t.state === 'deleted') === (t.deletedAtMs !== null), () => `tenant ${id} is ${t.state} with deletedAtMs ${t.deletedAtMs}`);
    // A deleted tenant keeps its last placement even if that member was removed since.
    if (t.state === 'deleted') continue;
    invariant(t.placement === null || s.members.has(t.placement), () => `tenant ${id} is placed on ${t.placement}, not a member`);
    for (const k of ['name', 'database', 'role'] as const) {
      const other = live[k].get(t[k]);
      invariant(other === undefined, () => `tenants ${other} and ${id} share the ${k} ${t[k]}`);
      live[k].set(t[k], id);
    }
  }
  checkBackups(s);
  checkWalArchive(s);
  for (const [name, w] of s.walSegments) invariant(w.name === name, () => `WAL segment keyed ${name} has name ${w.name}`);
  for (const [id, c] of s.computes) {
    invariant(c.id === id, () => `compute keyed ${id} has id ${c.id}`);
    invariant((c.tenantId === null) !== (c.branchOf === null), () => `compute ${id} needs exactly one of tenantId and branchOf`);
    const tenant = c.tenantId ?? c.branchOf;
    invariant(tenant !== null && s.tenants.has(tenant), () => `compute ${id} refers to tenant ${tenant}, which does not exist`);
    invariant(c.sourceSnapshot === null || s.backups.has(c.sourceSnapshot), () => `compute ${id} refers to backup ${c.sourceSnapshot}, which does not exist`);
    invariant(c.state !== 'running' || c.address !== null, () => `compute ${id} is running without an address`);
  }
}
