// What ogel writes into a node's Postgres configuration.
//
// Layout of the data directory's config files:
// - postgresql.conf: initdb's file, left to the operator for node-local
//   settings, plus one line ogel appends at the end:
//       include_if_exists = 'ogel.conf'
//   Later lines win, so ogel.conf overrides anything above that line.
// - ogel.conf: written atomically by ogel (renderOgelConf) and rewritten whole
//   on every reconfigure: defaults sized to the machine, then the cluster's
//   postgres.parameters, then the settings ogel manages.
// - postgresql.auto.conf: ALTER SYSTEM (read after everything else). ogel uses
//   it for per-role state: primary_conninfo on standbys, and the fence
//   (default_transaction_read_only) on a fenced primary.
// - pg_hba.conf: written whole by ogel (renderPgHba).

import { MANAGED_PARAMETERS } from '../config/validate.js';
import { randomBytes } from 'node:crypto';
import { readFileSync, statfsSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { isIP } from 'node:net';
import { dirname, join } from 'node:path';
import { parseHostPort } from '../config/address.js';
import { NODE_ID, type Config, type PostgresParameterValue, type SyncMode } from '../config/schema.js';
import { writeFileAtomic, type OsUser } from './os-user.js';
import { quoteIdent, SOCKET_PATH_MAX_BYTES, socketPath, SUPERUSER } from './query.js';

export const OGEL_CONF_FILE = 'ogel.conf';
export const INCLUDE_LINE = `include_if_exists = '${OGEL_CONF_FILE}'`;
/** The role standbys (and base backups) connect as. */
export const REPLICATION_ROLE = 'ogel_replication';
/** Holds the replication role's password, inside the data dir (so base backups carry it to standbys). */
export const REPLICATION_PASSWORD_FILE = 'ogel_replication.password';

export class PostgresSettingsError extends Error {
  override name = 'PostgresSettingsError';
}

// Settings ogel writes itself (a user value would break replication, routing or
// fencing): the config loader's list, checked again here.
export { MANAGED_PARAMETERS };

const GUC_NAME = /^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?$/;
const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------
// Node ids -> Postgres names

function assertNodeId(nodeId: string): void {
  if (!NODE_ID.test(nodeId))
    throw new PostgresSettingsError(`${JSON.stringify(nodeId)} is not a node id (lowercase letters, digits and dashes, starting with a letter)`);
}

/**
 * The physical replication slot for a standby node: 'ogel_' + the id with '-'
 * as '_' (slot names allow only [a-z0-9_]). Injective because node ids have no '_'.
 */
export function slotNameFor(nodeId: string): string {
  assertNodeId(nodeId);
  if (nodeId === 'wal-archive')
    throw new PostgresSettingsError(`node id "wal-archive" is reserved: its slot name would be the WAL archive's (${ARCHIVE_SLOT})`);
  return `ogel_${nodeId.replace(/-/g, '_')}`;
}

/**
 * The WAL archive's slot on every node (src/daemon/archive.ts): on the primary
 * it holds the WAL the archiver has not stored yet; on a standby, advanced only
 * as far as the archive reaches, it keeps that WAL for the day it is promoted.
 * Not a member's slot: nodeIdForSlot never maps it to a node.
 */
export const ARCHIVE_SLOT = 'ogel_wal_archive';
/** The archiver's application_name in pg_stat_replication: a WAL sender that is not a standby. */
export const ARCHIVE_APPLICATION_NAME = 'ogel-wal-archive';

/** The node id a slot name belongs to, or undefined for a slot ogel did not name. */
export function nodeIdForSlot(slot: string): string | undefined {
  if (slot === ARCHIVE_SLOT) return undefined;
  const m = /^ogel_([a-z][a-z0-9_]*)$/.exec(slot);
  if (!m) return undefined;
  const id = m[1]!.replace(/_/g, '-');
  return NODE_ID.test(id) ? id : undefined;
}

/**
 * The application_name a standby uses in primary_conninfo: its node id. This is
 * the name synchronous_standby_names lists.
 */
export function applicationNameFor(nodeId: string): string {
  assertNodeId(nodeId);
  return nodeId;
}

/**
 * The value of synchronous_standby_names: 'ANY k ("n2", "n3")' in quorum mode
 * (names quoted as identifiers: ids may contain '-'), '' in async mode.
 */
export function synchronousStandbyNames(mode: SyncMode, quorum: number, standbyNodeIds: readonly string[]): string {
  if (mode === 'async') return '';
  if (!Number.isInteger(quorum) || quorum < 1) throw new PostgresSettingsError(`postgres.syncQuorum must be a positive integer, got ${quorum}`);
  const ids = [...new Set(standbyNodeIds)].sort();
  if (ids.length === 0) throw new PostgresSettingsError('quorum replication needs at least one standby: list more nodes, or set postgres.syncMode: async');
  if (quorum > ids.length) {
    throw new PostgresSettingsError(
      `postgres.syncQuorum is ${quorum} but there are only ${ids.length} standbys (${ids.join(', ')}): every write would wait forever`,
    );
  }
  return `ANY ${quorum} (${ids.map((id) => quoteIdent(applicationNameFor(id))).join(', ')})`;
}

// ---------------------------------------------------------------------------
// The machine

export interface MachineInfo {
  /** Memory available to us: the host's, or the cgroup limit when lower. */
  memoryBytes: number;
  cpus: number;
}

export function detectMachine(): MachineInfo {
  let memoryBytes = totalmem();
  for (const file of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) {
    try {
      const limit = Number(readFileSync(file, 'utf8').trim());
      if (Number.isFinite(limit) && limit > 0 && limit < memoryBytes) memoryBytes = limit;
    } catch {
      // no such cgroup file ('max' parses to NaN: no limit)
    }
  }
  return { memoryBytes, cpus: Math.max(1, cpus().length) };
}

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

/**
 * Used and total bytes of the filesystem holding `dir` (or its nearest existing
 * parent), by statfs: the volume a node's data directory lives on. undefined if
 * statfs fails.
 */
export function volumeUsage(dir: string): { usedBytes: number; totalBytes: number } | undefined {
  for (let d = dir; ; d = dirname(d)) {
    try {
      const s = statfsSync(d);
      return { usedBytes: (s.blocks - s.bfree) * s.bsize, totalBytes: s.blocks * s.bsize };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(d) === d) return undefined;
    }
  }
}

/** The volume's size when the config does not say (postgres.volumeBytes). */
export function detectVolumeBytes(dir: string): number | undefined {
  return volumeUsage(dir)?.totalBytes;
}

/** Used when the volume's size is unknown (statfs failed): bounds for a 20 GB volume. */
const FALLBACK_VOLUME_BYTES = 20 * 1024 * MiB;

/**
 * WAL sizes from the volume's size, so that WAL cannot fill a small volume:
 * - max_slot_wal_keep_size, 20% (64 MB to 100 GB): what a slot may hold for a
 *   standby that is down or behind. Past it the slot is invalidated (wal_status
 *   'lost'), the primary frees the WAL, and the standby is re-cloned when it
 *   returns (agent.ts). Without it, one standby in a crash loop holds WAL
 *   until the primary's volume is full and every write stops.
 * - max_wal_size, 5% (64 MB to 1 GB, Postgres's default): WAL between checkpoints.
 * - wal_keep_size, 2% (16 MB to 256 MB): for catch-up without a slot.
 * pg_wal therefore stays under about max_wal_size + max_slot_wal_keep_size,
 * a quarter of the volume, leaving the rest to the data.
 */
export function walBounds(volumeBytes: number): Record<string, PostgresParameterValue> {
  const maxWal = clamp(volumeBytes * 0.05, 64 * MiB, 1024 * MiB);
  return {
    max_slot_wal_keep_size: mb(clamp(volumeBytes * 0.2, 64 * MiB, 100 * 1024 * MiB)),
    max_wal_size: mb(maxWal),
    min_wal_size: mb(clamp(maxWal / 2, 32 * MiB, 80 * MiB)),
    wal_keep_size: mb(clamp(volumeBytes * 0.02, 16 * MiB, 256 * MiB)),
  };
}
const mb = (bytes: number) => `${Math.floor(bytes / MiB)}MB`;

/** Defaults sized to the machine; every one can be overridden by postgres.parameters. */
export function defaultParameters(machine: MachineInfo): Record<string, PostgresParameterValue> {
  const mem = machine.memoryBytes;
  return {
    // 1/16 of memory: several nodes may share a machine (ogel up, tests).
    shared_buffers: mb(clamp(mem / 16, 32 * MiB, 1024 * MiB)),
    effective_cache_size: mb(clamp((mem * 3) / 4, 128 * MiB, 64 * 1024 * MiB)),
    maintenance_work_mem: mb(clamp(mem / 32, 64 * MiB, 1024 * MiB)),
    work_mem: '4MB',
    max_connections: mem >= 4 * 1024 * MiB ? 200 : 100,
    max_worker_processes: Math.max(8, machine.cpus),
    max_parallel_workers: machine.cpus,
    max_parallel_workers_per_gather: clamp(Math.floor(machine.cpus / 2), 0, 4),
    wal_level: 'replica',
    max_wal_senders: 10,
    max_replication_slots: 10,
    hot_standby_feedback: true,
    // PG17 incremental backups need WAL summaries on the node they are taken
    // from (any node: a standby by default). The summaries are small (about
    // 113 kB for 3.3 GB of WAL, measured here).
    summarize_wal: true,
    // How soon a standby retries its WAL source. At the default (5s) a promote
    // that races the standby noticing its primary's death was measured here to
    // take 5 s instead of ~20 ms (about 1 run in 6); 200ms bounds it.
    wal_retrieve_retry_interval: '200ms',
    password_encryption: 'scram-sha-256',
    // ogel reads the server log from stderr.
    logging_collector: false,
    log_destination: 'stderr',
    log_line_prefix: '%m [%p] ',
    // The socket lives in the 0700 data dir; only the Postgres OS user (and root) reach it.
    unix_socket_permissions: '0700',
  };
}

// ---------------------------------------------------------------------------
// ogel.conf

export interface OgelConfInput {
  nodeId: string;
  port: number;
  /** Hosts Postgres binds (listen_addresses); '*' or '::' for all. */
  listenAddresses: readonly string[];
  /** unix_socket_directories: the data directory (never /var/run). */
  socketDir: string;
  syncMode: SyncMode;
  syncQuorum: number;
  /** Every other node of the cluster: the standbys when this node is primary. */
  peerNodeIds: readonly string[];
  /** The cluster's postgres.parameters. */
  parameters?: Readonly<Record<string, PostgresParameterValue>>;
  machine?: MachineInfo;
  /** postgres.volumeBytes; unset: statfs of the data directory (socketDir). */
  volumeBytes?: number;
}

function volumeOf(input: OgelConfInput): number {
  return input.volumeBytes ?? detectVolumeBytes(input.socketDir) ?? FALLBACK_VOLUME_BYTES;
}

export interface ResolvedSetting {
  value: PostgresParameterValue;
  source: 'default' | 'parameters' | 'ogel';
}

/**
 * The final settings: defaults, then postgres.parameters, then the managed ones.
 * Throws PostgresSettingsError when parameters set a managed setting or a value
 * that would break replication.
 */
export function buildSettings(input: OgelConfInput): Map<string, ResolvedSetting> {
  assertNodeId(input.nodeId);
  if (!Number.isInteger(input.port) || input.port < 1 || input.port > 65535) throw new PostgresSettingsError(`port must be 1-65535, got ${input.port}`);
  const sock = socketPath(input.socketDir, input.port);
  if (Buffer.byteLength(sock) > SOCKET_PATH_MAX_BYTES) {
    throw new PostgresSettingsError(
      `the unix socket path ${sock} is ${Buffer.byteLength(sock)} bytes, over the ${SOCKET_PATH_MAX_BYTES}-byte limit; choose a shorter cluster.dataDir`,
    );
  }
  const peers = input.peerNodeIds.filter((id) => id !== input.nodeId);
  const out = new Map<string, ResolvedSetting>();
  for (const [k, v] of Object.entries(defaultParameters(input.machine ?? detectMachine()))) out.set(k, { value: v, source: 'default' });
  for (const [k, v] of Object.entries(walBounds(volumeOf(input)))) out.set(k, { value: v, source: 'default' });

  const problems: string[] = [];
  for (const [name, value] of Object.entries(input.parameters ?? {})) {
    const lower = name.toLowerCase();
    if (!GUC_NAME.test(name)) problems.push(`${JSON.stringify(name)} is not a PostgreSQL setting name`);
    else if (MANAGED_PARAMETERS[lower] !== undefined) problems.push(`${name} is managed by ogel: remove it (${MANAGED_PARAMETERS[lower]})`);
    else {
      try {
        renderValue(value);
      } catch (err) {
        problems.push(`${name}: ${(err as Error).message}`);
        continue;
      }
      out.delete(lower);
      out.set(lower, { value, source: 'parameters' });
    }
  }
  const walLevel = String(out.get('wal_level')?.value ?? 'replica').toLowerCase();
  if (walLevel !== 'replica' && walLevel !== 'logical') problems.push(`wal_level = ${walLevel} cannot feed standbys: use replica (the default) or logical`);
  for (const name of ['max_wal_senders', 'max_replication_slots']) {
    const v = Number(out.get(name)?.value);
    // One per standby, plus one for a base backup running meanwhile.
    if (!Number.isInteger(v) || v < peers.length + 1)
      problems.push(`${name} = ${String(out.get(name)?.value)} is too small for ${peers.length} standbys: use at least ${peers.length + 1}`);
  }
  if (problems.length > 0) throw new PostgresSettingsError(`postgres.parameters: ${problems.join('; ')}`);

  const managed: Record<string, PostgresParameterValue> = {
    listen_addresses: input.listenAddresses.length === 0 ? '' : input.listenAddresses.map((h) => (h === '::' || h === '0.0.0.0' ? '*' : h)).join(','),
    port: input.port,
    unix_socket_directories: input.socketDir,
    cluster_name: input.nodeId,
    hot_standby: true,
    synchronous_standby_names: synchronousStandbyNames(input.syncMode, input.syncQuorum, peers),
    synchronous_commit: 'on',
  };
  for (const [k, v] of Object.entries(managed)) {
    out.delete(k);
    out.set(k, { value: v, source: 'ogel' });
  }
  return out;
}

/** A value as postgresql.conf spells it: numbers bare, booleans on/off, strings quoted. */
export function renderValue(value: PostgresParameterValue): string {
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new PostgresSettingsError(`${value} is not a finite number`);
    return String(value);
  }
  if (/[\n\r\0]/.test(value)) throw new PostgresSettingsError(`${JSON.stringify(value)} contains a line break or NUL, which postgresql.conf cannot hold`);
  // Inside quotes the conf parser reads '' as ' and backslash escapes.
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

const SOURCE_HEADINGS: Record<ResolvedSetting['source'], string> = {
  default: '# Defaults sized to this machine (override them in postgres.parameters)',
  parameters: '# From postgres.parameters in the cluster config',
  ogel: '# Managed by ogel',
};

/** The text of ogel.conf. */
export function renderOgelConf(input: OgelConfInput): string {
  const settings = buildSettings(input);
  const machine = input.machine ?? detectMachine();
  const lines = [
    `# Written by ogel for node ${input.nodeId}; rewritten on every reconfigure: do not edit.`,
    `# Cluster-wide settings belong in postgres.parameters of the cluster config;`,
    `# node-local ones in postgresql.conf above its include_if_exists line (this file wins).`,
    `# Machine: ${Math.round(machine.memoryBytes / MiB)} MiB memory, ${machine.cpus} CPUs.`,
    `# Volume: ${Math.round(volumeOf(input) / MiB)} MiB (${input.volumeBytes !== undefined ? 'postgres.volumeBytes' : "the data directory's filesystem"}): WAL is bounded from it (max_slot_wal_keep_size, max_wal_size, wal_keep_size).`,
  ];
  for (const source of ['default', 'parameters', 'ogel'] as const) {
    const group = [...settings].filter(([, s]) => s.source === source);
    if (group.length === 0) continue;
    lines.push('', SOURCE_HEADINGS[source]);
    for (const [name, s] of group) lines.push(`${name} = ${renderValue(s.value)}`);
  }
  return lines.join('\n') + '\n';
}

/** postgresql.conf with the include line appended once (idempotent). */
export function withIncludeLine(postgresqlConf: string): string {
  if (postgresqlConf.split('\n').some((l) => l.trim() === INCLUDE_LINE)) return postgresqlConf;
  const sep = postgresqlConf === '' || postgresqlConf.endsWith('\n') ? '' : '\n';
  return `${postgresqlConf}${sep}\n# Added by ogel: its settings (rewritten on reconfigure) override the lines above.\n${INCLUDE_LINE}\n`;
}

// ---------------------------------------------------------------------------
// pg_hba.conf

export interface HbaInput {
  /** Hosts (IP literals or names) of every node of the cluster, allowed to replicate. */
  replicationHosts: readonly string[];
}

/**
 * Where standbys may connect from when the nodes are known by host name: the
 * private and loopback ranges. A name in pg_hba.conf would make Postgres match
 * the client by reverse DNS confirmed by a forward lookup, and platforms with a
 * private network by name (Railway's *.railway.internal) publish forward names
 * only: the standbys would never authenticate, and with quorum commit every
 * write would wait forever. The real check is SCRAM with the replication
 * password (256 bits derived from the cluster secret); the ranges keep the role
 * off public addresses.
 */
export const PRIVATE_REPLICATION_SOURCES: readonly string[] = [
  '127.0.0.0/8',
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '100.64.0.0/10',
  '::1/128',
  'fc00::/7',
  'fe80::/10',
];

function hbaAddresses(host: string): readonly string[] {
  const h = host.replace(/^\[|\]$/g, '');
  if (h === 'localhost') return ['127.0.0.1/32', '::1/128'];
  const kind = isIP(h);
  if (kind === 4) return [`${h}/32`];
  if (kind === 6) return [`${h}/128`];
  if (!/^[A-Za-z0-9.-]+$/.test(h)) throw new PostgresSettingsError(`${JSON.stringify(host)} is not a host for pg_hba.conf`);
  return PRIVATE_REPLICATION_SOURCES;
}

/**
 * pg_hba.conf, first match wins:
 * 1. local (unix socket) trust: ogel's maintenance connections. The socket sits
 *    in the 0700 data dir, so only the Postgres OS user and root reach it.
 * 2. the replication role, with its password (SCRAM), from the cluster's nodes
 *    (their addresses; the private ranges when they are known by name) and loopback: physical replication, and database 'postgres' for
 *    replication=database connections (BASE_BACKUP over `pg`).
 * 3. the replication role from anywhere else: reject.
 * 4. everything else over TCP: scram-sha-256.
 */
const CLIENT_ROW = /^(host\s+all\s+all\s+(?:0\.0\.0\.0\/0|::\/0)\s+)(scram-sha-256|reject)$/;

/**
 * The hard fence: the rows for clients (everyone but the replication role, over
 * TCP) end in `reject` instead of `scram-sha-256`. default_transaction_read_only
 * alone is a default any session may override (BEGIN READ WRITE), so a fenced
 * server also refuses new client sessions; its agent ends the existing ones.
 */
export function withClientAccess(hba: string, open: boolean): string {
  const lines = hba.split('\n');
  let rows = 0;
  const out = lines.map((l) => {
    const m = CLIENT_ROW.exec(l);
    if (!m) return l;
    rows++;
    return `${m[1]}${open ? 'scram-sha-256' : 'reject'}`;
  });
  if (rows !== 2) throw new PostgresSettingsError(`pg_hba.conf has ${rows} client rows, expected 2 (the file was not written by ogel?)`);
  return out.join('\n');
}

export function renderPgHba(input: HbaInput): string {
  const sources = [...new Set(['127.0.0.1/32', '::1/128', ...input.replicationHosts.flatMap(hbaAddresses)])];
  const row = (type: string, db: string, user: string, addr: string, method: string) =>
    `${type.padEnd(7)} ${db.padEnd(12)} ${user.padEnd(17)} ${addr.padEnd(40)} ${method}`.trimEnd();
  const lines = [
    '# Written by ogel; rewritten on every reconfigure: do not edit.',
    row('# TYPE', 'DATABASE', 'USER', 'ADDRESS', 'METHOD'),
    '',
    '# Maintenance over the unix socket (in the 0700 data directory).',
    row('local', 'all', 'all', '', 'trust'),
    row('local', 'replication', 'all', '', 'trust'),
    '',
    `# Standbys and base backups from the cluster's nodes.`,
    ...sources.flatMap((a) => [
      row('host', 'replication', REPLICATION_ROLE, a, 'scram-sha-256'),
      row('host', 'postgres', REPLICATION_ROLE, a, 'scram-sha-256'),
    ]),
    row('host', 'all', REPLICATION_ROLE, '0.0.0.0/0', 'reject'),
    row('host', 'all', REPLICATION_ROLE, '::/0', 'reject'),
    row('host', 'replication', 'all', '0.0.0.0/0', 'reject'),
    row('host', 'replication', 'all', '::/0', 'reject'),
    '',
    '# Everyone else: password (SCRAM).',
    row('host', 'all', 'all', '0.0.0.0/0', 'scram-sha-256'),
    row('host', 'all', 'all', '::/0', 'scram-sha-256'),
  ];
  return lines.join('\n') + '\n';
}

// ---------------------------------------------------------------------------
// The replication role's password (derived: src/auth/passwords.ts)

export function randomReplicationPassword(): string {
  return randomBytes(32).toString('base64url');
}

export function writeReplicationPassword(dataDir: string, password: string, owner?: OsUser): void {
  if (!/^[A-Za-z0-9_\-+/=.]{16,200}$/.test(password))
    throw new PostgresSettingsError('the replication password must be 16-200 characters of [A-Za-z0-9_-+/=.]');
  writeFileAtomic(join(dataDir, REPLICATION_PASSWORD_FILE), password + '\n', owner, 0o600);
}

/** The password stored in the data dir (copied to standbys by the base backup). */
export function readReplicationPassword(dataDir: string): string {
  return readFileSync(join(dataDir, REPLICATION_PASSWORD_FILE), 'utf8').trim();
}

// ---------------------------------------------------------------------------
// From the cluster config

/** ogel.conf and pg_hba.conf inputs for node `nodeId` of `config`, its socket in `dataDir`. */
export function settingsFromConfig(
  config: Pick<Config, 'nodes' | 'postgres'>,
  nodeId: string,
  dataDir: string,
  machine?: MachineInfo,
): OgelConfInput & HbaInput {
  const node = config.nodes.find((n) => n.id === nodeId);
  if (!node)
    throw new PostgresSettingsError(`node ${JSON.stringify(nodeId)} is not in the cluster config (nodes: ${config.nodes.map((n) => n.id).join(', ')})`);
  const addr = parseHostPort(node.postgres);
  if (!addr.ok) throw new PostgresSettingsError(`nodes[${nodeId}].postgres: ${addr.reason}`);
  const hosts = config.nodes.map((n) => {
    const a = parseHostPort(n.postgres);
    if (!a.ok) throw new PostgresSettingsError(`nodes[${n.id}].postgres: ${a.reason}`);
    return a.host;
  });
  return {
    nodeId,
    port: addr.port,
    listenAddresses: [node.listenHost ?? addr.host],
    socketDir: dataDir,
    syncMode: config.postgres.syncMode,
    syncQuorum: config.postgres.syncQuorum,
    peerNodeIds: config.nodes.map((n) => n.id).filter((id) => id !== nodeId),
    parameters: config.postgres.parameters,
    ...(machine ? { machine } : {}),
    ...(config.postgres.volumeBytes !== undefined ? { volumeBytes: config.postgres.volumeBytes } : {}),
    replicationHosts: hosts,
  };
}

/** The superuser name, re-exported for callers assembling conninfo. */
export { SUPERUSER };
