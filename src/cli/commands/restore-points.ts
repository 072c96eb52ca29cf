// `ogel restore-point create|list`: named restore points through the admin API.
// The daemon runs pg_create_restore_point on the primary and records where it
// landed in the object store, which is what `ogel restore --target-name` reads.

import { restorePointProblem } from '../../archive/pitr-target.js';
import { UsageError, type CommandSpec } from '../args.js';
import { formatTime, renderTable } from '../table.js';
import { clientFor, printJson } from './common.js';

export const restorePointCreate: CommandSpec = {
  path: ['restore-point', 'create'],
  summary: "mark this moment in the WAL by a name, for 'ogel restore --target-name NAME'",
  usage: 'restore-point create NAME [flags]',
  flags: {},
  positionals: { names: ['NAME'], min: 1, max: 1 },
  api: true,
  details:
    'The primary writes a restore point into its WAL (pg_create_restore_point) and the cluster records its\n' +
    'LSN, timeline and time in the object store. A restore to it replays the WAL up to that record and no\n' +
    'further, so the copy holds every transaction committed before it. The archive streams the record\n' +
    'within about a second. NAME: 1 to 63 letters, digits, ., _ and -, starting with a letter or digit;\n' +
    'a name can be used once.',
  examples: ['ogel restore-point create before-migration-42', 'ogel restore-point create nightly.2026-12-08 --json'],
  async run(ctx, args) {
    const name = args.positionals[0] ?? '';
    const problem = restorePointProblem(name);
    if (problem !== null) throw new UsageError(`NAME: ${problem}`, args.command);
    const r = await clientFor(ctx, args).createRestorePoint(name);
    if (args.bool('json')) {
      printJson(ctx, r);
      return 0;
    }
    const p = r.restorePoint;
    ctx.io.stdout(
      `Restore point ${p.name} created at LSN ${p.lsn} on timeline ${p.timeline}, ${formatTime(p.atMs)}.\n` +
        `Restore to it: ogel restore --config FILE --target-name ${p.name} --to-dir DIR\n`,
    );
    return 0;
  },
};

export const restorePointList: CommandSpec = {
  path: ['restore-point', 'list'],
  summary: 'the restore points recorded in the object store, oldest first',
  usage: 'restore-point list [flags]',
  flags: {},
  positionals: { names: [], min: 0, max: 0 },
  api: true,
  details: "A restore point is restorable while the archive holds the WAL from a backup before it up to it ('ogel status' shows the window).",
  examples: ['ogel restore-point list', 'ogel restore-point list --json'],
  async run(ctx, args) {
    const r = await clientFor(ctx, args).restorePoints();
    if (args.bool('json')) {
      printJson(ctx, r);
      return 0;
    }
    ctx.io.stdout(`Store: ${r.store}\n`);
    if (r.restorePoints.length === 0) {
      ctx.io.stdout("No restore points yet ('ogel restore-point create NAME' makes one).\n");
      return 0;
    }
    const rows = r.restorePoints.map((p) => [p.name, formatTime(p.atMs), p.lsn, String(p.timeline)]);
    ctx.io.stdout(`${renderTable([{ header: 'Name' }, { header: 'Made (UTC)' }, { header: 'LSN' }, { header: 'TL', align: 'right' }], rows)}\n`);
    return 0;
  },
};
