// One backup-index record (fsm Backup) for tests: complete and verified unless
// overridden. `running` and `failed` give the other states their fields.

import type { Backup } from '../../fsm/index.js';

export function fsmBackup(id: string, o: Partial<Backup> = {}): Backup {
  const b: Backup = {
    id,
    kind: o.parent ? 'incremental' : 'full',
    parent: null,
    node: 'n2',
    timeline: 1,
    startLsn: '0/1000000',
    endLsn: '0/2000000',
    tarBytes: 1,
    storedBytes: 1,
    checksum: 'sha256:00',
    prefix: `c/basebackups/${id}/`,
    state: 'complete',
    failureReason: null,
    verification: { state: 'verified', atMs: 0, detail: null, kind: 'checksums' },
    atMs: 0,
    finishedAtMs: 0,
    ...o,
  };
  return b;
}

/** A backup recorded as running on `node`: no end, sizes or checksum yet, unverified. */
export function runningBackup(id: string, node: string): Backup {
  return fsmBackup(id, {
    node,
    state: 'running',
    endLsn: null,
    tarBytes: null,
    storedBytes: 0,
    checksum: null,
    finishedAtMs: null,
    verification: { state: 'unverified', atMs: null, detail: null, kind: null },
  });
}
