// The commands: a discriminated union on `type`, each `{ v, type, atMs, ...fields }`.
//
// `atMs` is the proposer's clock, carried as data (I2: apply reads no clock). The
// version `v` is the command format: changing the fields or the meaning of a command
// means a new version with a migration (COMMAND_MIGRATIONS), never an edit of
// version 1, because a log written today must replay to the same state in every
// later build. A new command type is a new version too, because of what an older
// build does with it (see COMMAND_VERSION).
//
// validateCommand checks the shape and ranges of a command (independent of the
// state) and returns a normalized copy: only known fields, LSNs in canonical text,
// optional nullable fields made explicit, sets sorted. apply() checks it against the
// state.
//
// This module is the whole: the Command union, the version rules and the parser
// table over every type. Each domain's commands and parsers live in commands/
// (cluster, postgres, tenants, storage), their shared readers in commands/shared.ts.

import { FieldError, Fields, isPlainObject, show } from './fields.js';
import { reject, type ValidationError } from './errors.js';
import { clusterParsers, type ClusterCommand } from './commands/cluster.js';
import { postgresParsers, type PostgresCommand } from './commands/postgres.js';
import { tenantParsers, type TenantCommand } from './commands/tenants.js';
import { storageParsers, type StorageCommand } from './commands/storage.js';
import type { ParserOf } from './commands/shared.js';

export type { MaintenanceSet, MemberAdd, MemberHealthReport, MemberRemove } from './commands/cluster.js';
export type {
  LeaseRelease,
  LeaseRenew,
  PgFailoverBlocked,
  PgFence,
  PgPromote,
  PgReport,
  PgScheduleSwitchover,
  PgSetRole,
  PgSyncStandbys,
} from './commands/postgres.js';
export type {
  TenantCreate,
  TenantCreateLimits,
  TenantDelete,
  TenantPlace,
  TenantPurge,
  TenantSetLimits,
  TenantSetLimitsV3,
  TenantSetLimitsV6,
  TenantSetState,
} from './commands/tenants.js';
export type {
  BackupDelete,
  BackupRecord,
  BackupRecordV1,
  BackupUpdate,
  BackupUpdateComplete,
  BackupUpdateCompleteV5,
  BackupUpdateFailed,
  BackupUpdateV1,
  BackupVerify,
  ComputeCreate,
  ComputeDelete,
  ComputeUpdate,
  WalArchived,
  WalDelete,
  WalForget,
  WalHistory,
  WalRecord,
} from './commands/storage.js';
export { LEASE_DURATION_MS } from './commands/postgres.js';
export { SCRAM_ITERATIONS, TENANT_LIMITS } from './commands/tenants.js';

/**
 * The newest command version this build reads.
 *
 * Version 2 added pg.scheduleSwitchover and changed no version-1 command. A build
 * that knows only version 1 would reject that command as an unknown type while
 * upgraded replicas apply it: the replicas would diverge silently (I2). Written as
 * version 2, it makes such a build stop with UnsupportedVersionError instead (see
 * machine.ts), which is the failure the version rules are for.
 *
 * Every command is written with the version that introduced its type
 * (commandVersionOf), not with COMMAND_VERSION: the version-1 commands that every
 * node proposes all the time (lease renewals, reports) stay readable by a
 * version-1 node during a rolling upgrade, and only a switchover scheduled before
 * every node runs this build stops the older ones.
 *
 * Version 3 added tenant.setLimits (and with it TenantLimits.poolSize) for the same
 * reason, and changed no older command: a version-1 tenant.create still creates a
 * tenant with the limits it names and poolSize null (the proxy's default).
 *
 * Version 4 evolves the backup index: a new type, backup.verify, and new shapes of
 * backup.record (starts a full or incremental backup, with node and prefix) and
 * backup.update (complete with tar and stored sizes, or failed with a reason).
 * The version-1 shapes stay readable as they were, labelled 1 to 3, parsed by
 * their frozen parsers and applied by their frozen handlers, which write the new
 * state shape (a full backup, node and tarBytes unknown, unverified); that is their
 * migration. It is not a rewrite in COMMAND_MIGRATIONS because a version-1
 * backup.record can record a complete or failed backup in one command, which the
 * version-4 record (which only starts one) cannot say: a rewrite would lose fields
 * or widen version 4. backup.delete keeps version 1: its new refusal (a backup
 * that is another's parent) cannot arise in a state that version 1 to 3 commands
 * reach, where every backup is full, so it means the same there.
 *
 * Version 5 changes backup.update 'complete': it carries the backup's exact
 * startLsn, which replaces the estimate backup.record holds, and the end is
 * checked against it. Checked against the estimate, a standby's backup could be
 * refused (its end is its minimum recovery point, which may lie before the LSN
 * it had replayed when the backup was recorded) and stay running forever. A
 * version-4 update is read and applied as before. Migration 4 -> 5: none.
 *
 * Version 6 changes tenant.setLimits: it carries poolMode (the tenant's pooling
 * mode, or null for the proxy's), with snapshot format 5. A version-3
 * setLimits is read by its own field list and leaves poolMode as it is (every
 * tenant's is null until a version-6 one sets it). Migration 5 -> 6: none.
 *
 * Version 7 adds three types for the continuous WAL archive, indexed as ranges per
 * timeline (ClusterState.walArchive, snapshot format 6): wal.archived, wal.history
 * and wal.forget. New types for the reason version 2 gives: a version-6 build
 * must stop on them rather than reject what upgraded replicas apply. wal.record and
 * wal.delete (one entry per segment) stay version 1, read and applied as before;
 * nothing proposes them now. Migration 6 -> 7: none.
 */
export const COMMAND_VERSION = 7;

/** Command types added after version 1, and the version that added each: never read under an older version. */
const TYPES_ADDED: Readonly<Partial<Record<CommandType, number>>> = {
  'pg.scheduleSwitchover': 2,
  'tenant.setLimits': 3,
  'backup.verify': 4,
  'wal.archived': 7,
  'wal.history': 7,
  'wal.forget': 7,
};

/**
 * The version each type is written with, where it is not 1: the version that
 * introduced the type or its current shape (backup.record and backup.update
 * have a version-1 shape, read under versions 1 to 3, and a version-4 shape).
 */
const TYPE_VERSIONS: Readonly<Partial<Record<CommandType, number>>> = { ...TYPES_ADDED, 'backup.record': 4, 'backup.update': 5, 'tenant.setLimits': 6 };

/** The version a command of this type is written with: the version of its current shape. */
export function commandVersionOf(type: CommandType): number {
  return TYPE_VERSIONS[type] ?? 1;
}

/**
 * COMMAND_MIGRATIONS[i] turns a command of version i + 1 into version i + 2. Each must
 * be pure and total on any object (it runs inside apply on every replica, before
 * validation).
 */
const COMMAND_MIGRATIONS: readonly ((c: Record<string, unknown>) => Record<string, unknown>)[] = [
  // 1 -> 2: version 2 only added a command type; every version-1 command means the
  // same in version 2, so it passes unchanged (and keeps v: 1 once normalized).
  (c) => c,
  // 2 -> 3: version 3 only added tenant.setLimits; older commands pass unchanged.
  (c) => c,
  // 3 -> 4: older commands pass unchanged; version-1 backup.record and backup.update
  // keep their own parsers and handlers (see COMMAND_VERSION).
  (c) => c,
  // 4 -> 5: a version-4 backup.update keeps its version and its handler's rule.
  (c) => c,
  // 5 -> 6: a version-3 tenant.setLimits keeps its version and its rule (poolMode unchanged).
  (c) => c,
  // 6 -> 7: version 7 only added the wal.archived, wal.history and wal.forget types.
  (c) => c,
];
if (COMMAND_MIGRATIONS.length !== COMMAND_VERSION - 1) throw new Error('COMMAND_VERSION was bumped without its migration');

const VERSION_DESC = `the command version 1${Object.entries(TYPES_ADDED)
  .map(([type, v]) => `, or ${v} for ${type}`)
  .join('')}`;

export type Command = ClusterCommand | PostgresCommand | TenantCommand | StorageCommand;
export type CommandType = Command['type'];
export type CommandOf<T extends CommandType> = Extract<Command, { type: T }>;

type Parser<T extends CommandType> = ParserOf<Command, T>;

/** Every type's parser: a domain table missing from here, or a type missing from its table, does not compile. */
const parsers: { [T in CommandType]: Parser<T> } = { ...clusterParsers, ...postgresParsers, ...tenantParsers, ...storageParsers };

export const COMMAND_TYPES: readonly CommandType[] = Object.keys(parsers).sort() as CommandType[];

/**
 * Checks a command's shape and ranges (not against the state) and returns a
 * normalized copy, or a Rejection ('invalid_command', or 'unsupported_version' for a
 * `v` newer than COMMAND_VERSION). Never throws on bad input.
 */
export function validateCommand(x: unknown): Command | ValidationError {
  try {
    return parseCommand(x);
  } catch (e) {
    if (e instanceof FieldError) return reject(e.code, e.message, e.field || undefined);
    throw e;
  }
}

function parseCommand(x: unknown): Command {
  if (!isPlainObject(x)) throw new FieldError('', `a command must be an object like { v: 1, type, atMs, ... }; got ${show(x)}`);
  const f: Fields = Fields.of(x, '', Object.keys(x));
  const v = f.raw('v', VERSION_DESC);
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) f.fail('v', v, VERSION_DESC);
  if (v > COMMAND_VERSION) {
    throw new FieldError(
      'v',
      `command version ${v} is newer than this build understands (versions 1..${COMMAND_VERSION}); upgrade ogel on every node`,
      'unsupported_version',
    );
  }
  let c: Record<string, unknown> = x;
  for (let from = v; from < COMMAND_VERSION; from++) c = COMMAND_MIGRATIONS[from - 1]!(c);
  if (c !== x) return parseCommand(c);
  const type = f.raw('type', `one of ${COMMAND_TYPES.join(', ')}`);
  if (typeof type !== 'string' || !Object.hasOwn(parsers, type)) f.fail('type', type, `one of ${COMMAND_TYPES.join(', ')}`);
  // Never written with an older version: a version-1 build would not stop on it.
  const since = TYPES_ADDED[type as CommandType] ?? 1;
  if (v < since) f.fail('v', v, `${since} (${type} was added in command version ${since})`);
  return parsers[type as CommandType](x);
}
