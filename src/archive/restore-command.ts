// `ogel restore --backup ID|latest --to-dir DIR --config FILE`: the escape
// hatch. It reads only the object store the config names (no daemon, no Raft:
// the cluster may be gone) and writes a plain data directory that Postgres
// starts on, holding exactly the data at the backup's end (an incremental
// backup restores its whole chain, combined).

import { userInfo } from 'node:os';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, loadConfig, type Config } from '../config/index.js';
import { formatLsn } from '../../fsm/index.js';
import { isObjectStoreError, openObjectStore, type ObjectStore } from '../object-store/index.js';
import { describeWindows, readArchiveView, restoreWindows, runPitrCommand, wantsPitr, windowJson } from './pitr-command.js';
import { listRestorePoints } from './restore-points.js';
import { DEFAULT_POSTGRES_USER, ensurePostgresUser, isRoot } from '../postgres/os-user.js';
import { BackupManifestError, orderChain, type BackupManifest } from '../backup/manifest.js';
import { ProgressLine } from '../backup/progress.js';
import { clusterPrefix } from '../backup/layout.js';
import { makeStandalone, restoreChain, RestoreError } from '../backup/restore.js';
import { CombineError } from '../backup/combine.js';
import { DamagedObjectError, listBackupManifests } from '../backup/store-io.js';

const HELP = `Usage: ogel restore --backup ID|latest --to-dir DIR [--config FILE] [--json]
       ogel restore --target-time T | --target-lsn L | --target-name N | --latest
                    [--timeline N] --to-dir DIR [--config FILE] [--json]

Restores a base backup from the cluster's object store into DIR, a new or
empty directory, as a plain Postgres data directory: start it with
'postgres -D DIR' (as its owner) and it answers with the data as of the end of
the backup. An incremental backup restores its whole chain, combined. Only the
object store is read: no daemon needs to run, so this works when the cluster
is gone.

With a target, it restores to a point in time: the newest backup before the
target, then the archived WAL replayed up to the target and no further
(Postgres stops there and promotes onto a new timeline), then stops cleanly.
A target the archive cannot reach (before the oldest backup, past the end of
the archive, in a gap) is refused before any work, naming what is restorable.

Options:
  --backup ID     the backup to restore, or 'latest' (the newest finished one);
                  'ogel restore --list' shows them
  --target-time T an ISO 8601 time with an offset: 2026-12-08T14:02:00Z,
                  '2026-12-08 15:02:00.25+01:00'; every transaction committed
                  at or before T is in the copy, none after it
  --target-lsn L  a WAL position as Postgres prints it (0/3000148)
  --target-name N a restore point made with 'ogel restore-point create N'
  --latest        everything the archive holds
  --timeline N    follow timeline N (default: the newest in the archive; a
                  restore point's own timeline for --target-name)
  --list          list the backups, restore points and restorable windows, and exit
  --to-dir DIR    where to write the data directory (must be missing or empty)
  --config FILE   the cluster config naming the object store; env OGEL_CONFIG
  --json          print the result as JSON on stdout (progress stays on stderr)
  -h, --help      this text

As root, the files are given to the OS user ogel runs Postgres as
(ogel-postgres), since Postgres refuses to run as root.

Examples:
  ogel restore --config cluster.yml --list
  ogel restore --config cluster.yml --backup latest --to-dir /srv/pg-restored
  ogel restore --config cluster.yml --target-time 2026-12-08T14:01:59Z --to-dir /srv/before-the-drop`;

export async function runRestoreCommand(argv: string[]): Promise<number> {
  const argSpec = {
    args: argv,
    options: {
      backup: { type: 'string' },
      'to-dir': { type: 'string' },
      config: { type: 'string' },
      list: { type: 'boolean', default: false },
      'target-time': { type: 'string' },
      'target-lsn': { type: 'string' },
      'target-name': { type: 'string' },
      latest: { type: 'boolean', default: false },
      timeline: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  } satisfies ParseArgsConfig;
  let values: ReturnType<typeof parseArgs<typeof argSpec>>['values'];
  try {
    values = parseArgs(argSpec).values;
  } catch (e) {
    process.stderr.write(`ogel restore: ${(e as Error).message}\nhint: run 'ogel restore --help' for usage\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const configPath = values.config ?? process.env['OGEL_CONFIG'];
  if (!configPath) return usage('--config (or OGEL_CONFIG) is required: it names the object store');
  const pitr = wantsPitr(values);
  if (pitr && values.backup !== undefined)
    return usage('--backup restores a backup as it ended; with a target (--target-*, --latest) the backup is chosen for you: give one or the other');
  if (values.timeline !== undefined && !pitr) return usage('--timeline goes with a target (--target-time, --target-lsn, --target-name or --latest)');
  if (!values.list && ((values.backup === undefined && !pitr) || values['to-dir'] === undefined)) {
    return usage('--to-dir is required, with --backup or a target (--target-time, --target-lsn, --target-name, --latest); or --list');
  }
  let config: Config;
  try {
    config = loadConfig(configPath);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const store = openObjectStore(config);
  try {
    if (values.list) return await printList(store, clusterPrefix(config), values.json);
    if (pitr) return await runPitrCommand({ store, clusterPrefix: clusterPrefix(config), args: values, toDir: values['to-dir']!, json: values.json });
    const backups = await listBackupManifests(store, clusterPrefix(config));
    const chosen = values.backup === 'latest' ? backups.at(-1) : backups.find((b) => b.id === values.backup);
    if (chosen === undefined) {
      const known = backups
        .map((b) => b.id)
        .slice(-5)
        .join(', ');
      process.stderr.write(
        `ogel restore: ${values.backup === 'latest' ? 'no finished backup' : `no backup '${values.backup}'`} in ${store.description}${known ? ` (newest: ${known})` : ''}\nhint: 'ogel restore --list' shows them\n`,
      );
      return 1;
    }
    const chain = orderChain(chosen, (id) => backups.find((b) => b.id === id));
    const owner = isRoot() ? ensurePostgresUser() : undefined;
    const progress = new ProgressLine('restore', process.stderr);
    const stats = await restoreChain(store, chain, values['to-dir']!, { owner, onProgress: (done, total) => progress.update(done, total) });
    await makeStandalone(values['to-dir']!, owner);
    progress.done(`restored ${chain.map((b) => b.id).join(' + ')} into ${values['to-dir']} in ${(stats.durationMs / 1000).toFixed(1)} s`);
    const result = {
      backup: chosen.id,
      chain: chain.map((b) => b.id),
      dir: values['to-dir'],
      endLsn: chosen.endLsn,
      timeline: chosen.timeline,
      storedBytes: stats.storedBytes,
      tarBytes: stats.tarBytes,
      durationMs: stats.durationMs,
      owner: owner === undefined ? userInfo().username : DEFAULT_POSTGRES_USER,
    };
    if (values.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else
      process.stdout.write(
        `Restored backup ${chosen.id} (end LSN ${chosen.endLsn}, timeline ${chosen.timeline}) into ${values['to-dir']}.\nStart it with: postgres -D ${values['to-dir']} [-p PORT]  (as ${result.owner}; it listens on localhost only, and has no standbys)\n`,
      );
    return 0;
  } catch (e) {
    if (
      isObjectStoreError(e) ||
      e instanceof RestoreError ||
      e instanceof CombineError ||
      e instanceof BackupManifestError ||
      e instanceof DamagedObjectError
    ) {
      process.stderr.write(`ogel restore: ${(e as Error).message}\n`);
      return 1;
    }
    throw e;
  } finally {
    await store.close();
  }
}

function usage(message: string): number {
  process.stderr.write(`ogel restore: ${message}\nhint: run 'ogel restore --help' for usage\n`);
  return 2;
}

async function printList(store: ObjectStore, prefix: string, json: boolean): Promise<number> {
  const where = store.description;
  const view = await readArchiveView(store, prefix);
  const backups = view.backups;
  const points = await listRestorePoints(store, prefix);
  const { timeline, windows, problem } = restoreWindows(view);
  if (json) {
    const restorePoints = points.map((p) => ({ name: p.name, lsn: formatLsn(p.lsn), timeline: p.timeline, at: new Date(p.atMs).toISOString() }));
    process.stdout.write(
      `${JSON.stringify({ store: where, backups: backups.map(({ parts: _parts, ...b }) => b), restorePoints, timeline, restorable: windows.map(windowJson), problem }, null, 2)}\n`,
    );
    return 0;
  }
  if (backups.length === 0) {
    process.stdout.write(`No finished backups in ${where}.\n`);
    return 0;
  }
  printBackups(backups, where);
  process.stdout.write(
    windows.length === 0
      ? `Nothing restorable on timeline ${timeline}${problem ? `: ${problem}` : ''}.\n`
      : `Restorable on timeline ${timeline}:\n${describeWindows(windows).join('\n')}\n`,
  );
  if (points.length > 0) {
    process.stdout.write(
      `Restore points:\n${points.map((p) => `  ${p.name.padEnd(24)} ${new Date(p.atMs).toISOString()}  LSN ${formatLsn(p.lsn)}  tl ${p.timeline}`).join('\n')}\n`,
    );
  }
  return 0;
}

function printBackups(backups: BackupManifest[], where: string): void {
  process.stdout.write(`Backups in ${where} (oldest first):\n`);
  for (const b of backups) {
    const when = new Date(b.finishedAtMs).toISOString();
    process.stdout.write(
      `  ${b.id.padEnd(24)} ${b.kind.padEnd(11)} ${when}  end ${b.endLsn.padEnd(12)} tl ${b.timeline}  ${(b.storedBytes / 1e6).toFixed(1)} MB${b.parent ? `  parent ${b.parent}` : ''}\n`,
    );
  }
}
