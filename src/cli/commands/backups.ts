// `ogel backup create|list|show|verify|delete`: base backups through the admin API. The
// leader records a backup as running on a node (a streaming standby when there
// is one) and that node's daemon streams it into the object store; --wait
// follows it to the end. Restoring needs no daemon: `ogel restore`.

import { setTimeout as sleep } from 'node:timers/promises';
import { CliError, UsageError, type CommandSpec } from '../args.js';
import type { Backup, BackupProgress } from '../../api/contract/index.js';
import { describeProgress } from '../../backup/progress.js';
import { cell, formatBytes, formatTime, renderTable } from '../table.js';
import { clientFor, printJson } from './common.js';

const WAIT_POLL_MS = 1_000;

function backupRows(backups: Backup[]): string[][] {
  return backups.map((b) => [
    b.id,
    b.kind,
    b.state === 'failed' ? `failed: ${(b.failureReason ?? '').slice(0, 40)}` : b.state,
    cell(b.node),
    formatTime(b.finishedAtMs ?? b.atMs),
    cell(b.endLsn),
    formatBytes(b.storedBytes || null),
    b.verification.state,
    cell(b.parent),
  ]);
}

const COLUMNS = [
  { header: 'ID' },
  { header: 'Kind' },
  { header: 'State' },
  { header: 'Node' },
  { header: 'Finished (UTC)' },
  { header: 'End LSN' },
  { header: 'Stored', align: 'right' as const },
  { header: 'Verified' },
  { header: 'Parent' },
];

export const backupCreate: CommandSpec = {
  path: ['backup', 'create'],
  summary: 'take a base backup now (into the object store), optionally waiting for it',
  usage: 'backup create [--full | --incremental] [--wait] [flags]',
  flags: {
    full: { type: 'boolean', help: 'a full backup (default: incremental when there is a complete backup to build on)' },
    incremental: { type: 'boolean', help: 'an incremental backup (PG17): only the pages changed since the newest backup' },
    wait: { type: 'boolean', help: 'wait until it is complete or failed, showing its state' },
    'wait-timeout-s': { type: 'string', value: 'SECONDS', help: 'with --wait: give up waiting after this long (the backup goes on); default: no limit' },
  },
  positionals: { names: [], min: 0, max: 0 },
  api: true,
  details:
    'The Raft leader records the backup as running on a streaming standby (the primary when there is none); that node streams it into the store.\n' +
    "One backup runs at a time. Scheduled backups: the config's backups section. Restore: 'ogel restore --backup ID --to-dir DIR'.",
  examples: ['ogel backup create --wait', 'ogel backup create --full --json'],
  async run(ctx, args) {
    if (args.bool('full') && args.bool('incremental')) throw new UsageError('--full and --incremental contradict each other; give at most one', args.command);
    const kind = args.bool('full') ? 'full' : args.bool('incremental') ? 'incremental' : 'auto';
    const waitLimitS = waitTimeoutS(args.string('wait-timeout-s'), args.command);
    const client = clientFor(ctx, args);
    let { backup } = await client.createBackup(kind);
    if (!args.bool('json')) ctx.io.stderr(`backup ${backup.id} (${backup.kind}) started on ${cell(backup.node)}\n`);
    if (args.bool('wait')) {
      const t0 = performance.now();
      while (backup.state === 'running') {
        if (waitLimitS !== undefined && performance.now() - t0 >= waitLimitS * 1000)
          throw new CliError(
            `backup ${backup.id} is still running after ${waitLimitS} s of waiting`,
            `it goes on without the CLI: follow it with 'ogel backup show ${backup.id}'`,
          );
        await sleep(WAIT_POLL_MS);
        const r = await client.backup(backup.id);
        backup = r.backup;
        if (!args.bool('json') && backup.state === 'running') ctx.io.stderr(`${progressLine(backup, r.progress, (performance.now() - t0) / 1000)}\n`);
      }
    }
    if (args.bool('json')) printJson(ctx, { backup });
    else ctx.io.stdout(renderTable(COLUMNS, backupRows([backup])));
    if (backup.state === 'failed')
      throw new CliError(
        `backup ${backup.id} failed: ${backup.failureReason ?? 'no reason recorded'}`,
        "see the daemon's log on that node; the next backup is unaffected",
      );
    return 0;
  },
};

/** "backup ID: 120.0 of 300.0 MB (40%), 85.2 MB/s, 2 s left", from its node's worker; the CLI's own clock when that node did not answer. */
function progressLine(b: Backup, p: BackupProgress | null | undefined, waitedS: number): string {
  if (p === null || p === undefined) return `backup ${b.id}: running for ${Math.round(waitedS)} s (${cell(b.node)} did not say how far it is)`;
  return `${describeProgress(`backup ${b.id} on ${p.node}`, p.tarBytes, p.totalBytes ?? undefined, p.elapsedMs / 1000)}`;
}

function waitTimeoutS(raw: string | undefined, command: string): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--wait-timeout-s: expected a number of seconds greater than 0, got ${JSON.stringify(raw)}`, command);
  return n;
}

export const backupList: CommandSpec = {
  path: ['backup', 'list'],
  summary: 'the base backups in the index, oldest first',
  usage: 'backup list [flags]',
  flags: {},
  positionals: { names: [], min: 0, max: 0 },
  api: true,
  examples: ['ogel backup list', 'ogel backup list --json'],
  async run(ctx, args) {
    const r = await clientFor(ctx, args).backups();
    if (args.bool('json')) {
      printJson(ctx, r);
      return 0;
    }
    ctx.io.stdout(`Store: ${r.store}\n`);
    ctx.io.stdout(r.backups.length === 0 ? "No backups yet ('ogel backup create' takes one).\n" : renderTable(COLUMNS, backupRows(r.backups)));
    return 0;
  },
};

export const backupShow: CommandSpec = {
  path: ['backup', 'show'],
  summary: 'one backup: its chain, LSNs, sizes and verification',
  usage: 'backup show ID [flags]',
  flags: {},
  positionals: { names: ['ID'], min: 1, max: 1 },
  api: true,
  examples: ['ogel backup show 20261207-193000-f-1a2b3c'],
  async run(ctx, args) {
    const id = args.positionals[0];
    if (id === undefined || id.trim() === '') throw new UsageError('missing ID', args.command);
    const { backup: b, progress } = await clientFor(ctx, args).backup(id);
    if (args.bool('json')) {
      printJson(ctx, { backup: b, progress: progress ?? null });
      return 0;
    }
    const lines = [
      `Backup ${b.id}: ${b.kind}${b.parent ? ` of ${b.parent}` : ''}, ${b.state}${b.failureReason ? ` (${b.failureReason})` : ''}`,
      `Taken on ${cell(b.node)}, timeline ${b.timeline}, from ${b.startLsn} to ${cell(b.endLsn)}`,
      `Started ${formatTime(b.atMs)}, finished ${formatTime(b.finishedAtMs)}`,
      `Size: ${formatBytes(b.tarBytes)} of data, ${formatBytes(b.storedBytes || null)} stored under ${b.prefix}`,
      `Verification: ${b.verification.state}${b.verification.kind ? ` (${b.verification.kind}, ${formatTime(b.verification.atMs)})` : ''}${b.verification.detail ? `: ${b.verification.detail}` : ''}`,
    ];
    if (b.state === 'running') lines.push(`Progress: ${progressLine(b, progress, (Date.now() - b.atMs) / 1000)}`);
    ctx.io.stdout(lines.join('\n') + '\n');
    return 0;
  },
};

/** How long the CLI waits for a verdict: a restore test restores, starts Postgres and reads every relation. */
const VERIFY_TIMEOUT_MS = 10 * 60_000;
const RESTORE_TEST_TIMEOUT_MS = 35 * 60_000;

export const backupVerify: CommandSpec = {
  path: ['backup', 'verify'],
  summary: 'verify a complete backup now and record the verdict',
  usage: 'backup verify ID [--restore-test] [flags]',
  flags: {
    'restore-test': {
      type: 'boolean',
      help: 'restore it (with its chain) into a scratch directory, start Postgres on it and run amcheck on every index and heap (minutes)',
    },
  },
  positionals: { names: ['ID'], min: 1, max: 1 },
  api: true,
  details:
    'Without --restore-test: every object of the backup is read back and checked against its sha256 (the worker does this after each backup).\n' +
    "With it: also every restored file against Postgres's backup_manifest, then amcheck. The node that answers does the work; the verdict is\n" +
    "recorded in the index, shown by 'ogel backup list' and 'ogel status'. A backup that fails verification is never used for a restore.",
  examples: ['ogel backup verify 20261207-193000-f-1a2b3c', 'ogel backup verify 20261207-193000-f-1a2b3c --restore-test --json'],
  async run(ctx, args) {
    const id = args.positionals[0];
    if (id === undefined || id.trim() === '') throw new UsageError('missing ID', args.command);
    const restoreTest = args.bool('restore-test');
    if (!args.bool('json')) ctx.io.stderr(`verifying backup ${id}${restoreTest ? ' by a restore test (this takes a while)' : ''}...\n`);
    const r = await clientFor(ctx, args).verifyBackup(id, restoreTest, restoreTest ? RESTORE_TEST_TIMEOUT_MS : VERIFY_TIMEOUT_MS);
    if (args.bool('json')) printJson(ctx, r);
    else ctx.io.stdout(`Backup ${id}: ${r.verdict.ok ? 'verified' : 'FAILED verification'} (${r.verdict.kind}): ${r.verdict.detail}\n`);
    if (!r.verdict.ok)
      throw new CliError(`backup ${id} failed verification`, 'it will not be used for a restore; take a new full backup (ogel backup create --full)');
    return 0;
  },
};

export const backupDelete: CommandSpec = {
  path: ['backup', 'delete'],
  summary: 'forget a backup and delete its objects',
  usage: 'backup delete ID [flags]',
  flags: {},
  positionals: { names: ['ID'], min: 1, max: 1 },
  api: true,
  details:
    'Refused while it runs, while an incremental is taken against it (delete a chain newest first), or while a compute starts from it.\n' +
    'The index forgets it first; the leader deletes its objects shortly after. Retention (the backups.retention config) deletes old backups by itself.',
  examples: ['ogel backup delete 20261207-193000-i-4d5e6f'],
  async run(ctx, args) {
    const id = args.positionals[0];
    if (id === undefined || id.trim() === '') throw new UsageError('missing ID', args.command);
    const r = await clientFor(ctx, args).deleteBackup(id);
    if (args.bool('json')) printJson(ctx, r);
    else ctx.io.stdout(`Backup ${r.deleted} deleted; its objects go shortly.\n`);
    return 0;
  },
};
