// Backup metrics from a hand-made index: the newest complete backup of each
// kind, verification failures, a running backup, bytes uploaded.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import type { Backup } from '../../fsm/index.js';
import { fsmBackup } from '../../test/helpers/backup-fixture.js';
import { registerBackupMetrics } from './backup-metrics.js';

const b = (id: string, o: Partial<Backup>): Backup => fsmBackup(id, { storedBytes: 5, ...o });

test('backup metrics: newest complete per kind, verification failures, running, uploaded bytes', async () => {
  const r = new Registry();
  const index = new Map(
    [
      b('f1', { finishedAtMs: 10_000, storedBytes: 100, atMs: 4_000 }),
      b('f2', { finishedAtMs: 20_000, storedBytes: 200, atMs: 17_000 }),
      b('i1', { kind: 'incremental', parent: 'f2', finishedAtMs: 30_000, storedBytes: 7, atMs: 29_000 }),
      b('f3', { state: 'failed', finishedAtMs: 40_000, storedBytes: 0 }),
      b('i2', { kind: 'incremental', parent: 'i1', finishedAtMs: 25_000, verification: { state: 'failed', atMs: 2, detail: 'bad', kind: 'checksums' } }),
      b('r1', { state: 'running', finishedAtMs: null }),
    ].map((x) => [x.id, x]),
  );
  registerBackupMetrics(r, () => ({ backups: () => index, uploadedBytes: () => 1234 }));
  const text = await r.metrics();
  const value = (line: string) => {
    const m = text.split('\n').find((l) => l.startsWith(line));
    assert.ok(m, `${line} in\n${text}`);
    return Number(m.slice(line.length).trim());
  };
  assert.equal(value('ogel_backup_last_success_timestamp_seconds{kind="full"}'), 20);
  assert.equal(value('ogel_backup_last_success_timestamp_seconds{kind="incremental"}'), 30);
  assert.equal(value('ogel_backup_last_size_bytes{kind="full"}'), 200);
  assert.equal(value('ogel_backup_last_duration_seconds{kind="full"}'), 3);
  assert.equal(value('ogel_backup_verification_failures'), 1);
  assert.equal(value('ogel_backup_running'), 1);
  assert.equal(value('ogel_backup_uploaded_bytes_total'), 1234);
});

test('backup metrics before the daemon wires them: per-kind series absent, counts 0', async () => {
  const r = new Registry();
  registerBackupMetrics(r, () => undefined);
  const text = await r.metrics();
  assert.doesNotMatch(text, /ogel_backup_last_size_bytes\{/);
  assert.match(text, /ogel_backup_running 0/);
});
