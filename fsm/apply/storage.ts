// Storage handlers: the backup index (backup.*), archived WAL (wal.*: the continuous
// archive's ranges, and the per-segment records of older logs) and computes (compute.*).

import type { StorageCommandType, WalArchived } from '../commands/storage.js';
import { isRejection, reject } from '../errors.js';
import { compareLsn } from '../lsn.js';
import { LIMITS, UNVERIFIED, mapWith, mapWithout, sortedValues, type Backup, type ComputeState, type WalRange } from '../state.js';
import { checkGeneration, full, liveTenant, q, unknownMember, type Handler } from './shared.js';

const COMPUTE_NEXT: Readonly<Record<ComputeState, readonly ComputeState[]>> = {
  starting: ['running', 'suspending', 'failed'],
  running: ['suspending', 'failed'],
  suspending: ['suspended', 'failed'],
  suspended: ['starting', 'failed'],
  failed: ['starting'],
};

/**
 * wal.archived's effect on the ranges: [startLsn, endLsn] of its timeline added, or
 * 'covered' when one range already holds it. The ranges of the timeline it overlaps
 * or touches (start <= their end and end >= their start) are next to each other in
 * the sorted list, and become one: the smallest start with the startAtMs of the
 * range that starts there (a range already there wins a tie), the largest end with
 * atMs if the report moved it, else the endAtMs it had. With none, a new range
 * (startAtMs = endAtMs = atMs) goes where the order puts it.
 */
function withArchived(ranges: readonly WalRange[], c: WalArchived): readonly WalRange[] | 'covered' {
  let first = -1;
  let last = -1;
  let at = ranges.length;
  for (let i = 0; i < ranges.length; i++) {
    const r = ranges[i]!;
    if (r.timeline < c.timeline || (r.timeline === c.timeline && compareLsn(r.endLsn, c.startLsn) < 0)) continue;
    if (r.timeline > c.timeline || compareLsn(r.startLsn, c.endLsn) > 0) {
      at = i;
      break;
    }
    if (first < 0) first = i;
    last = i;
  }
  if (first < 0) {
    const range: WalRange = { timeline: c.timeline, startLsn: c.startLsn, endLsn: c.endLsn, startAtMs: c.atMs, endAtMs: c.atMs };
    return [...ranges.slice(0, at), range, ...ranges.slice(at)];
  }
  const a = ranges[first]!;
  const b = ranges[last]!;
  if (first === last && compareLsn(a.startLsn, c.startLsn) <= 0 && compareLsn(c.endLsn, a.endLsn) <= 0) return 'covered';
  const earlier = compareLsn(c.startLsn, a.startLsn) < 0;
  const later = compareLsn(c.endLsn, b.endLsn) > 0;
  const merged: WalRange = {
    timeline: c.timeline,
    startLsn: earlier ? c.startLsn : a.startLsn,
    endLsn: later ? c.endLsn : b.endLsn,
    startAtMs: earlier ? c.atMs : a.startAtMs,
    endAtMs: later ? c.atMs : b.endAtMs,
  };
  return [...ranges.slice(0, first), merged, ...ranges.slice(last + 1)];
}

export const storageHandlers: { [T in StorageCommandType]: Handler<T> } = {
  'backup.record': (s, c) => {
    if (s.backups.has(c.id)) return reject('backup_exists', `id: backup ${q(c.id)} is already recorded; update it with backup.update`, 'id');
    // At the bound a new backup is refused until retention deletes some (newest first within a chain).
    if (s.backups.size >= LIMITS.backups) return full('backups', s.backups.size, LIMITS.backups);
    if (c.v === 1) {
      // The version-1 record, as it always applied, written in the current shape: a
      // full backup (there were no incrementals), node and tar size not recorded.
      const { v: _v, type: _t, atMs, sizeBytes, objectKey, ...fields } = c;
      const b: Backup = {
        ...fields,
        kind: 'full',
        parent: null,
        node: null,
        tarBytes: null,
        storedBytes: sizeBytes,
        prefix: objectKey,
        failureReason: null,
        verification: UNVERIFIED,
        atMs,
        finishedAtMs: c.state === 'running' ? null : atMs,
      };
      return { state: { ...s, backups: mapWith(s.backups, c.id, b) } };
    }
    if (!s.members.has(c.node)) return unknownMember(s, c.node, 'node');
    const clash = sortedValues(s.backups).find((o) => o.prefix.startsWith(c.prefix) || c.prefix.startsWith(o.prefix));
    if (clash !== undefined) {
      return reject(
        'backup_exists',
        `prefix: ${q(c.prefix)} overlaps backup ${q(clash.id)}'s prefix ${q(clash.prefix)}; deleting one would delete the other's objects`,
        'prefix',
      );
    }
    if (c.parent !== null) {
      const p = s.backups.get(c.parent);
      if (p === undefined)
        return reject('unknown_backup', `parent: no backup has id ${q(c.parent)}; an incremental is taken against a recorded, complete backup`, 'parent');
      if (p.state !== 'complete') {
        return reject('backup_unusable', `parent: backup ${q(p.id)} is "${p.state}"; an incremental can be taken only against a complete backup`, 'parent');
      }
      if (p.verification.state === 'failed') {
        return reject(
          'backup_unusable',
          `parent: backup ${q(p.id)} failed verification (${p.verification.kind}: ${p.verification.detail}); take a full backup instead`,
          'parent',
        );
      }
      if (c.timeline < p.timeline) {
        return reject('invalid_value', `timeline: ${c.timeline} is before the parent ${q(p.id)}'s timeline ${p.timeline}; timelines only grow`, 'timeline');
      }
      if (compareLsn(c.startLsn, p.endLsn!) < 0) {
        return reject(
          'invalid_value',
          `startLsn: ${c.startLsn} is before the end of the parent ${q(p.id)} (${p.endLsn}); an incremental starts after its parent ends`,
          'startLsn',
        );
      }
    }
    const b: Backup = {
      id: c.id,
      kind: c.kind,
      parent: c.parent,
      node: c.node,
      timeline: c.timeline,
      startLsn: c.startLsn,
      endLsn: null,
      tarBytes: null,
      storedBytes: 0,
      checksum: null,
      prefix: c.prefix,
      state: 'running',
      failureReason: null,
      verification: UNVERIFIED,
      atMs: c.atMs,
      finishedAtMs: null,
    };
    return { state: { ...s, backups: mapWith(s.backups, c.id, b) } };
  },

  'backup.update': (s, c) => {
    const b = s.backups.get(c.id);
    if (b === undefined) return reject('unknown_backup', `id: no backup has id ${q(c.id)}`, 'id');
    if (b.state !== 'running') {
      return reject('invalid_transition', `state: backup ${q(c.id)} is already "${b.state}"; complete and failed backups are final`, 'state');
    }
    if (c.v === 1) {
      // Version 1, as it always applied (running -> running updates sizes; the end and
      // checksum may come earlier), with sizeBytes now storedBytes.
      const endLsn = c.endLsn ?? b.endLsn;
      const checksum = c.checksum ?? b.checksum;
      if (endLsn !== null && compareLsn(endLsn, b.startLsn) < 0) {
        return reject('invalid_value', `endLsn: ${endLsn} is before the backup's startLsn ${b.startLsn}; expected an LSN at or after it`, 'endLsn');
      }
      if (c.state === 'complete' && (endLsn === null || checksum === null)) {
        const field = endLsn === null ? 'endLsn' : 'checksum';
        return reject('invalid_value', `${field}: required to complete backup ${q(c.id)}, which has none yet`, field);
      }
      const next: Backup = {
        ...b,
        state: c.state,
        endLsn,
        checksum,
        storedBytes: c.sizeBytes ?? b.storedBytes,
        finishedAtMs: c.state === 'running' ? null : c.atMs,
      };
      return { state: { ...s, backups: mapWith(s.backups, c.id, next) } };
    }
    if (c.state === 'failed') {
      return { state: { ...s, backups: mapWith(s.backups, c.id, { ...b, state: 'failed', failureReason: c.reason, finishedAtMs: c.atMs }) } };
    }
    if (c.v === 4 && compareLsn(c.endLsn, b.startLsn) < 0) {
      // Version 4 (frozen): the end against the estimate recorded at the start.
      return reject('invalid_value', `endLsn: ${c.endLsn} is before the backup's startLsn ${b.startLsn}; expected an LSN at or after it`, 'endLsn');
    }
    // Version 5: the exact start replaces the estimate (a standby's backup ends at its
    // minimum recovery point, which may lie before the LSN it had replayed when the
    // backup was recorded). An incremental still starts at or after its parent's end.
    const parentEnd = c.v === 5 && b.parent !== null ? (s.backups.get(b.parent)?.endLsn ?? null) : null;
    if (c.v === 5 && parentEnd !== null && compareLsn(c.startLsn, parentEnd) < 0) {
      return reject(
        'invalid_value',
        `startLsn: ${c.startLsn} is before the end of the parent ${q(b.parent!)} (${parentEnd}); an incremental starts after its parent ends`,
        'startLsn',
      );
    }
    const next: Backup = {
      ...b,
      ...(c.v === 5 ? { startLsn: c.startLsn } : {}),
      state: 'complete',
      endLsn: c.endLsn,
      tarBytes: c.tarBytes,
      storedBytes: c.storedBytes,
      checksum: c.checksum,
      finishedAtMs: c.atMs,
    };
    return { state: { ...s, backups: mapWith(s.backups, c.id, next) } };
  },

  'backup.verify': (s, c) => {
    const b = s.backups.get(c.id);
    if (b === undefined) return reject('unknown_backup', `id: no backup has id ${q(c.id)}`, 'id');
    if (b.state !== 'complete') return reject('backup_unusable', `id: backup ${q(c.id)} is "${b.state}"; only a complete backup can be verified`, 'id');
    const verification = { state: c.result, atMs: c.atMs, detail: c.detail, kind: c.kind };
    return { state: { ...s, backups: mapWith(s.backups, c.id, { ...b, verification }) } };
  },

  'backup.delete': (s, c) => {
    if (!s.backups.has(c.id)) return reject('unknown_backup', `id: no backup has id ${q(c.id)}`, 'id');
    const user = sortedValues(s.computes).find((k) => k.sourceSnapshot === c.id);
    if (user !== undefined) return reject('backup_in_use', `id: compute ${q(user.id)} starts from backup ${q(c.id)}; delete the compute first`, 'id');
    // I7: an incremental is useless without its parent. Never true in a state that
    // version-1 commands reach (every backup full), so version 1 means the same.
    const child = sortedValues(s.backups).find((b) => b.parent === c.id);
    if (child !== undefined) {
      return reject(
        'backup_in_use',
        `id: backup ${q(child.id)} is an incremental of backup ${q(c.id)}; delete ${q(child.id)} first (a chain is deleted newest first)`,
        'id',
      );
    }
    return { state: { ...s, backups: mapWithout(s.backups, c.id) } };
  },

  'wal.record': (s, c) => {
    const { v: _v, type: _t, atMs, ...fields } = c;
    const w = s.walSegments.get(c.name);
    if (w !== undefined) {
      const differs = (Object.keys(fields) as (keyof typeof fields)[]).filter((k) => w[k] !== fields[k]).sort();
      if (differs.length === 0) return { state: s, existed: true };
      return reject(
        'wal_segment_conflict',
        `name: segment ${c.name} is already recorded with a different ${differs.join(', ')}; a recorded segment is immutable`,
        'name',
      );
    }
    if (s.walSegments.size >= LIMITS.walSegments) return full('WAL segments', s.walSegments.size, LIMITS.walSegments);
    return { state: { ...s, walSegments: mapWith(s.walSegments, c.name, { ...fields, atMs }) }, existed: false };
  },

  'wal.delete': (s, c) => {
    const missing = c.names.find((n) => !s.walSegments.has(n));
    if (missing !== undefined) return reject('unknown_wal_segment', `names: segment ${missing} is not recorded; nothing was deleted`, 'names');
    return { state: { ...s, walSegments: mapWithout(s.walSegments, ...c.names) } };
  },

  'wal.archived': (s, c) => {
    // A fenced old primary must not extend the index (I3): its WAL is of a history the cluster left.
    const stale = checkGeneration(s, c.generation);
    if (stale !== null) return stale;
    const ranges = withArchived(s.walArchive.ranges, c);
    if (ranges === 'covered') return { state: s, existed: true };
    // Only a new range raises the count; retention (wal.forget) frees some.
    if (ranges.length > LIMITS.walRanges) return full('WAL ranges', s.walArchive.ranges.length, LIMITS.walRanges);
    return { state: { ...s, walArchive: { ...s.walArchive, ranges } }, existed: false };
  },

  'wal.history': (s, c) => {
    const stale = checkGeneration(s, c.generation);
    if (stale !== null) return stale;
    const timelines = s.walArchive.historyTimelines;
    if (timelines.includes(c.timeline)) return { state: s, existed: true };
    if (timelines.length >= LIMITS.walHistories) return full('archived history files', timelines.length, LIMITS.walHistories);
    const historyTimelines = [...timelines, c.timeline].sort((x, y) => x - y);
    return { state: { ...s, walArchive: { ...s.walArchive, historyTimelines } }, existed: false };
  },

  'wal.forget': (s, c) => {
    // Everything before the position (timeline, beforeLsn); later timelines whole.
    const { ranges, historyTimelines } = s.walArchive;
    const kept: WalRange[] = [];
    for (const r of ranges) {
      if (r.timeline > c.timeline || (r.timeline === c.timeline && compareLsn(r.startLsn, c.beforeLsn) >= 0)) kept.push(r);
      // Straddling: starts at beforeLsn now; startAtMs stays (when the range began, not when its new start was archived).
      else if (r.timeline === c.timeline && compareLsn(r.endLsn, c.beforeLsn) > 0) kept.push({ ...r, startLsn: c.beforeLsn });
    }
    const histories = historyTimelines.filter((t) => t >= c.timeline);
    if (histories.length === historyTimelines.length && kept.length === ranges.length && kept.every((r, i) => r === ranges[i])) return { state: s };
    return { state: { ...s, walArchive: { ranges: kept, historyTimelines: histories } } };
  },

  'compute.create': (s, c) => {
    if (s.computes.has(c.id)) return reject('compute_exists', `id: compute ${q(c.id)} already exists`, 'id');
    if (s.computes.size >= LIMITS.computes) return full('computes', s.computes.size, LIMITS.computes);
    const field = c.tenantId !== null ? 'tenantId' : 'branchOf';
    const t = liveTenant(s, (c.tenantId ?? c.branchOf)!, field);
    if (isRejection(t)) return t;
    if (field === 'tenantId' && t.state !== 'active') {
      return reject('tenant_not_active', `tenantId: tenant ${q(t.id)} is ${t.state}; a compute can serve only an active tenant`, 'tenantId');
    }
    if (c.sourceSnapshot !== null) {
      const b = s.backups.get(c.sourceSnapshot);
      if (b === undefined) return reject('unknown_backup', `sourceSnapshot: no backup has id ${q(c.sourceSnapshot)}`, 'sourceSnapshot');
      if (b.state !== 'complete') {
        return reject('invalid_value', `sourceSnapshot: backup ${q(b.id)} is "${b.state}"; a compute can start only from a complete backup`, 'sourceSnapshot');
      }
      if (c.sourceLsn !== null && compareLsn(c.sourceLsn, b.endLsn!) < 0) {
        return reject(
          'invalid_value',
          `sourceLsn: ${c.sourceLsn} is before the end of backup ${q(b.id)} (${b.endLsn}); recovery from it can reach only LSNs at or after that`,
          'sourceLsn',
        );
      }
    }
    const compute = {
      id: c.id,
      tenantId: c.tenantId,
      branchOf: c.branchOf,
      sourceSnapshot: c.sourceSnapshot,
      sourceLsn: c.sourceLsn,
      state: 'starting' as const,
      address: null,
      lastActivityMs: c.atMs,
      createdAtMs: c.atMs,
    };
    return { state: { ...s, computes: mapWith(s.computes, c.id, compute) } };
  },

  'compute.update': (s, c) => {
    const k = s.computes.get(c.id);
    if (k === undefined) return reject('unknown_compute', `id: no compute has id ${q(c.id)}`, 'id');
    const state = c.state ?? k.state;
    if (state !== k.state && !COMPUTE_NEXT[k.state].includes(state)) {
      return reject(
        'invalid_transition',
        `state: compute ${q(c.id)} cannot go from "${k.state}" to "${state}"; from "${k.state}" it can go to ${COMPUTE_NEXT[k.state].map((x) => `"${x}"`).join(', ')}`,
        'state',
      );
    }
    const address = c.address !== undefined ? c.address : k.state === 'running' && state !== 'running' ? null : k.address;
    if (state === 'running' && address === null) {
      return reject('invalid_value', `address: compute ${q(c.id)} is running, so it needs an address (host:port)`, 'address');
    }
    const lastActivityMs = Math.max(k.lastActivityMs, c.lastActivityMs ?? 0);
    return { state: { ...s, computes: mapWith(s.computes, c.id, { ...k, state, address, lastActivityMs }) } };
  },

  'compute.delete': (s, c) => {
    const k = s.computes.get(c.id);
    if (k === undefined) return reject('unknown_compute', `id: no compute has id ${q(c.id)}`, 'id');
    if (k.state !== 'suspended' && k.state !== 'failed') {
      return reject('compute_active', `id: compute ${q(c.id)} is "${k.state}"; suspend it (or mark it failed) before deleting it`, 'id');
    }
    return { state: { ...s, computes: mapWithout(s.computes, c.id) } };
  },
};
