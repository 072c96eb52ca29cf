// Storage handlers: the snapshot index (backup.*), archived WAL segments (wal.*) and
// computes (compute.*).

import type { StorageCommandType } from '../commands/storage.js';
import { isRejection, reject } from '../errors.js';
import { compareLsn } from '../lsn.js';
import { LIMITS, mapWith, mapWithout, sortedValues, type ComputeState } from '../state.js';
import { full, liveTenant, q, type Handler } from './shared.js';

const COMPUTE_NEXT: Readonly<Record<ComputeState, readonly ComputeState[]>> = {
  starting: ['running', 'suspending', 'failed'],
  running: ['suspending', 'failed'],
  suspending: ['suspended', 'failed'],
  suspended: ['starting', 'failed'],
  failed: ['starting'],
};

export const storageHandlers: { [T in StorageCommandType]: Handler<T> } = {
  'backup.record': (s, c) => {
    if (s.backups.has(c.id)) return reject('backup_exists', `id: backup ${q(c.id)} is already recorded; update it with backup.update`, 'id');
    if (s.backups.size >= LIMITS.backups) return full('backups', s.backups.size, LIMITS.backups);
    const { v: _v, type: _t, atMs, ...fields } = c;
    return { state: { ...s, backups: mapWith(s.backups, c.id, { ...fields, atMs, finishedAtMs: c.state === 'running' ? null : atMs }) } };
  },

  'backup.update': (s, c) => {
    const b = s.backups.get(c.id);
    if (b === undefined) return reject('unknown_backup', `id: no backup has id ${q(c.id)}`, 'id');
    if (b.state !== 'running') {
      return reject('invalid_transition', `state: backup ${q(c.id)} is already "${b.state}"; complete and failed backups are final`, 'state');
    }
    const endLsn = c.endLsn ?? b.endLsn;
    const checksum = c.checksum ?? b.checksum;
    if (endLsn !== null && compareLsn(endLsn, b.startLsn) < 0) {
      return reject('invalid_value', `endLsn: ${endLsn} is before the backup's startLsn ${b.startLsn}; expected an LSN at or after it`, 'endLsn');
    }
    if (c.state === 'complete' && (endLsn === null || checksum === null)) {
      const field = endLsn === null ? 'endLsn' : 'checksum';
      return reject('invalid_value', `${field}: required to complete backup ${q(c.id)}, which has none yet`, field);
    }
    const next = { ...b, state: c.state, endLsn, checksum, sizeBytes: c.sizeBytes ?? b.sizeBytes, finishedAtMs: c.state === 'running' ? null : c.atMs };
    return { state: { ...s, backups: mapWith(s.backups, c.id, next) } };
  },

  'backup.delete': (s, c) => {
    if (!s.backups.has(c.id)) return reject('unknown_backup', `id: no backup has id ${q(c.id)}`, 'id');
    const user = sortedValues(s.computes).find((k) => k.sourceSnapshot === c.id);
    if (user !== undefined) return reject('backup_in_use', `id: compute ${q(user.id)} starts from backup ${q(c.id)}; delete the compute first`, 'id');
    return { state: { ...s, backups: mapWithout(s.backups, c.id) } };
  },

  'wal.record': (s, c) => {
    const { v: _v, type: _t, atMs, ...fields } = c;
    const w = s.walSegments.get(c.name);
    if (w !== undefined) {
      const differs = (Object.keys(fields) as (keyof typeof fields)[]).filter((k) => w[k] !== fields[k]).sort();
      if (differs.length === 0) return { state: s, existed: true };
      return reject('wal_segment_conflict', `name: segment ${c.name} is already recorded with a different ${differs.join(', ')}; a recorded segment is immutable`, 'name');
    }
    if (s.walSegments.size >= LIMITS.walSegments) return full('WAL segments', s.walSegments.size, LIMITS.walSegments);
    return { state: { ...s, walSegments: mapWith(s.walSegments, c.name, { ...fields, atMs }) }, existed: false };
  },

  'wal.delete': (s, c) => {
    const missing = c.names.find((n) => !s.walSegments.has(n));
    if (missing !== undefined) return reject('unknown_wal_segment', `names: segment ${missing} is not recorded; nothing was deleted`, 'names');
    return { state: { ...s, walSegments: mapWithout(s.walSegments, ...c.names) } };
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
        return reject('invalid_value', `sourceLsn: ${c.sourceLsn} is before the end of backup ${q(b.id)} (${b.endLsn}); recovery from it can reach only LSNs at or after that`, 'sourceLsn');
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
