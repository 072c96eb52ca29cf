// The shape of cluster.yml: field types, ranges and defaults. Cross-field rules
// (unique ids and addresses, tick ratios, quorum sizes) live in validate.ts,
// because zod skips a container's checks once one of its children fails and we
// report every problem at once.

import { z } from 'zod';
import { isValidHost, isWildcardHost, parseHostPort } from './address.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type SyncMode = 'quorum' | 'async';
export type PoolMode = 'transaction' | 'session';
export type PostgresParameterValue = string | number | boolean;
export type StorageBackend = 'fs' | 's3';

/**
 * Which backups are kept (docs/backups.md, Retention): grandfather-father-son over
 * complete backups, plus whatever a kept backup needs (its incremental chain).
 */
export interface BackupRetention {
  /** The newest backup of each of this many most recent days (UTC) that have one. */
  daily: number;
  /** The newest backup of each of this many most recent ISO weeks that have one. */
  weekly: number;
  /** The newest backup of each of this many most recent months (UTC) that have one. */
  monthly: number;
  /** Records of this many newest failed backups stay in the index (ogel status shows them); older ones are deleted. */
  failed: number;
}

/** When base backups are taken (where: storage), and how long they are kept. */
export interface BackupsConfig {
  /** Take backups on the schedule below (ogel backup create works either way). */
  scheduled: boolean;
  /** A full backup when the newest full one is this old (a new incremental chain starts there). */
  fullEveryHours: number;
  /** An incremental (PG17) when the newest backup is this old; 0: no scheduled incrementals. */
  incrementalEveryHours: number;
  /** The leader restore-tests the newest complete backup (amcheck) when its last restore test is this old; 0: never by itself. */
  restoreTestEveryHours: number;
  retention: BackupRetention;
}

/** Where snapshots (base backups), the WAL archive and branches are kept. */
export interface StorageConfig {
  /** fs: a directory (the default); s3: S3 or an S3-compatible server (MinIO). */
  backend: StorageBackend;
  fs: {
    /**
     * The store's directory. Every node must see the same one (a backup taken
     * on one node is restored on another): on separate hosts, a shared mount.
     * Unset: <cluster.dataDir>/objects, beside the nodes' <dataDir>/<nodeId>.
     */
    dir?: string;
  };
  s3: {
    /** http(s)://host[:port] of an S3-compatible server; unset: AWS's endpoint for the region. */
    endpoint?: string;
    region: string;
    /** Required when backend is s3. */
    bucket?: string;
    /** Key prefix inside the bucket ('' or like 'ogel/prod'), so clusters can share a bucket. */
    prefix: string;
    /** Path-style URLs (endpoint/bucket/key): MinIO and most self-hosted servers need this. */
    forcePathStyle: boolean;
    /** OGEL_S3_ACCESS_KEY_ID overrides it; unset: AWS_ACCESS_KEY_ID. */
    accessKeyId?: string;
    /** OGEL_S3_SECRET_ACCESS_KEY overrides it; unset: AWS_SECRET_ACCESS_KEY. */
    secretAccessKey?: string;
    /** An unreachable endpoint fails within about this (per attempt; 3 attempts). */
    connectTimeoutMs: number;
    /** Response headers must arrive within this; also the idle limit while a body streams. */
    requestTimeoutMs: number;
  };
}

export interface NodeConfig {
  /** Like n1: lowercase letters, digits and dashes, starting with a letter, at most 32 characters. */
  id: string;
  /** Advertised HOST:PORT of the Raft peer transport. */
  raft: string;
  /** Advertised HOST:PORT of the HTTP admin API. */
  api: string;
  /** Advertised HOST:PORT of the Postgres proxy. */
  proxy: string;
  /** Advertised HOST:PORT of this node's own Postgres. */
  postgres: string;
  /** Address to bind all four listeners to (e.g. '::'); unset: the host of each advertised address. */
  listenHost?: string;
  /** Failover priority: among equally advanced standbys the higher one is promoted. */
  priority: number;
}

export interface Config {
  cluster: {
    name: string;
    /** Shared secret for peer authentication (HMAC); at least 16 bytes. */
    secret: string;
    /** Each node keeps its data under <dataDir>/<nodeId>. */
    dataDir: string;
  };
  nodes: NodeConfig[];
  raft: {
    tickMs: number;
    electionTicks: number;
    heartbeatTicks: number;
    snapshotEveryEntries: number;
  };
  api: {
    /** Bearer token for the admin API. */
    token: string;
    forwardTimeoutMs: number;
  };
  log: { level: LogLevel };
  postgres: {
    /** Directory with initdb, pg_ctl and postgres; unset: the embedded PostgreSQL 17 package. */
    binDir?: string;
    syncMode: SyncMode;
    /** k in synchronous_standby_names = 'ANY k (...)'. */
    syncQuorum: number;
    /** Extra postgresql.conf settings. */
    parameters: Record<string, PostgresParameterValue>;
    /**
     * Bytes of the volume that holds the data directory: the WAL bounds are
     * derived from it (settings.ts walBounds). Unset: the size of the data
     * directory's filesystem, as statfs reports it.
     */
    volumeBytes?: number;
    leaseMs: number;
    failover: { enabled: boolean };
  };
  proxy: {
    maxClientConnections: number;
    poolMode: PoolMode;
    defaultPoolSize: number;
    /** How long new transactions wait for a primary during failover; 0: fail at once. */
    holdTimeoutMs: number;
    /** A client waiting for a pooled server connection fails after this long. */
    queueTimeoutMs: number;
    /** Idle server connections are closed after this long. */
    serverIdleTimeoutMs: number;
    /** Read-only sessions use a standby only while its replay lag is below this. */
    maxReplicaLagBytes: number;
    /** Largest protocol message accepted from a client (the startup packet: 10000 bytes, as Postgres). */
    maxMessageBytes: number;
    tls: {
      /** off: SSLRequest answered 'N'; on: TLS offered; required: plaintext refused. */
      mode: 'off' | 'on' | 'required';
      /** PEM files; without them (mode on/required) a self-signed certificate is generated in the data dir. */
      certFile?: string | undefined;
      keyFile?: string | undefined;
    };
  };
  storage: StorageConfig;
  backups: BackupsConfig;
  /** Disaster recovery: the first primary is restored from another cluster's object store instead of initdb (docs/disaster-recovery.md). */
  restoreFrom?: RestoreFromConfig | undefined;
  /** Not errors, but worth a line in the log (even node count, async replication, ...). */
  warnings: string[];
}

export interface RestoreFromConfig {
  /** The lost cluster's config file: it names the object store to restore from and the cluster's name in it. */
  config: string;
  /** At most one target; none: the latest archived. Same forms as ogel restore's --target-*. */
  targetTime?: string | undefined;
  targetLsn?: string | undefined;
  targetName?: string | undefined;
}

/** Every field that has a default, with that default. */
export interface ConfigDefaults {
  cluster: Omit<Config['cluster'], 'secret'>;
  node: Pick<NodeConfig, 'priority'>;
  raft: Config['raft'];
  api: Omit<Config['api'], 'token'>;
  log: Config['log'];
  postgres: Omit<Config['postgres'], 'binDir'>;
  proxy: Config['proxy'];
  storage: { backend: StorageBackend; fs: Record<string, never>; s3: Omit<StorageConfig['s3'], 'endpoint' | 'bucket' | 'accessKeyId' | 'secretAccessKey'> };
  backups: BackupsConfig;
}

export const DEFAULTS: ConfigDefaults = deepFreeze({
  cluster: { name: 'ogel', dataDir: './.ogel/data' },
  node: { priority: 0 },
  raft: { tickMs: 20, electionTicks: 10, heartbeatTicks: 1, snapshotEveryEntries: 10_000 },
  api: { forwardTimeoutMs: 5000 },
  log: { level: 'info' },
  postgres: { syncMode: 'quorum', syncQuorum: 1, parameters: {}, leaseMs: 3000, failover: { enabled: true } },
  proxy: {
    maxClientConnections: 1000,
    poolMode: 'transaction',
    defaultPoolSize: 20,
    holdTimeoutMs: 10_000,
    queueTimeoutMs: 30_000,
    serverIdleTimeoutMs: 60_000,
    maxReplicaLagBytes: 16 * 1024 * 1024,
    maxMessageBytes: 64 * 1024 * 1024,
    tls: { mode: 'off' },
  },
  // Weekly fulls and incrementals every 6 hours: a restore reads at most one full
  // and 27 incrementals, and a day's changes cost a few incrementals' size.
  // A week of dailies, a month of weeklies, a quarter of monthlies. With weekly fulls
  // that keeps a handful of chains (up to 28 backups each), well below the index's 1000.
  backups: {
    scheduled: true,
    fullEveryHours: 168,
    incrementalEveryHours: 6,
    restoreTestEveryHours: 24,
    retention: { daily: 7, weekly: 4, monthly: 3, failed: 5 },
  },
  storage: {
    backend: 'fs',
    fs: {},
    s3: { region: 'us-east-1', prefix: '', forcePathStyle: false, connectTimeoutMs: 3000, requestTimeoutMs: 30_000 },
  },
});

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

export const MAX_NODES = 7;
export const MIN_SECRET_BYTES = 16;
export const NODE_ID = /^[a-z](?:[a-z0-9-]{0,30}[a-z0-9])?$/;
export const CLUSTER_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$/;
/** Fields whose values never appear in messages or `ogel config show`. */
export const SECRET_PATHS: ReadonlySet<string> = new Set(['cluster.secret', 'api.token', 'storage.s3.secretAccessKey']);

/** Extra data on our custom issues; turned into a hint where the path is known. */
export interface IssueParams {
  hint?: string;
  /** An address failed to parse; the hint suggests a fix keeping this host. */
  addressHost?: string;
}

function problem<T>(ctx: z.core.$RefinementCtx<T>, message: string, params: IssueParams = {}): void {
  ctx.addIssue({ code: 'custom', message, params: { ...params } });
}

const int = (min: number, max: number) => z.int().min(min).max(max);

/** The smallest volume the WAL bounds are sized for (settings.ts walBounds). */
export const MIN_VOLUME_BYTES = 256 * 1024 * 1024;
const SIZE_UNITS: Readonly<Record<string, number>> = { B: 1, kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };

/** A size as bytes, or as a string with Postgres's units (1024-based): '20GB', '512MB'. */
const sizeBytes = (min: number) =>
  // z.unknown, not a union: one message naming the accepted forms for every bad value (1.5, true, '5 gigs').
  z.unknown().transform((v, ctx) => {
    let n: number | undefined;
    if (typeof v === 'number') n = Number.isInteger(v) ? v : undefined;
    else if (typeof v === 'string') {
      const m = /^\s*(\d+)\s*(B|kB|MB|GB|TB)\s*$/.exec(v);
      if (m) n = Number(m[1]) * SIZE_UNITS[m[2]!]!;
    }
    if (n === undefined || !Number.isSafeInteger(n)) {
      ctx.addIssue({ code: 'custom', message: `expected a size in bytes or with a unit (B, kB, MB, GB, TB), e.g. '20GB', got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    if (n < min) {
      ctx.addIssue({ code: 'custom', message: `must be at least ${min / 1024 / 1024} MB, got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    return n;
  });

const pathText = z.string().superRefine((v, ctx) => {
  if (v === '') problem(ctx, 'must not be empty');
  else if (v.includes('\0')) problem(ctx, 'must not contain a NUL character');
});

const address = z.string().superRefine((v, ctx) => {
  const a = parseHostPort(v);
  if (!a.ok) {
    problem(ctx, `${JSON.stringify(v)} is not HOST:PORT (${a.reason})`, a.host === undefined || isWildcardHost(a.host) ? {} : { addressHost: a.host });
  } else if (isWildcardHost(a.host)) {
    problem(ctx, `${JSON.stringify(v)} is a wildcard address that peers and clients cannot connect to`, {
      hint: `advertise an address others can reach, and set listenHost: '${a.host}' on this node to bind every interface`,
    });
  }
});

const nodeSchema = z.strictObject({
  id: z.string().superRefine((v, ctx) => {
    if (!NODE_ID.test(v)) {
      problem(ctx, `${JSON.stringify(v)} is not a node id (lowercase letters, digits and dashes, starting with a letter, at most 32 characters)`, {
        hint: 'use e.g. n1',
      });
    }
  }),
  raft: address,
  api: address,
  proxy: address,
  postgres: address,
  listenHost: z
    .string()
    .superRefine((v, ctx) => {
      if (/^\[.*\]$/.test(v)) problem(ctx, `${JSON.stringify(v)} has brackets`, { hint: `write it without them: ${v.slice(1, -1)}` });
      else if (!isValidHost(v))
        problem(ctx, `${JSON.stringify(v)} is not a host name or IP address`, { hint: "use e.g. '::' or '0.0.0.0' to bind every interface" });
    })
    .optional(),
  priority: int(0, 1000).default(DEFAULTS.node.priority),
});

const clusterSchema = z.strictObject({
  name: z
    .string()
    .superRefine((v, ctx) => {
      if (!CLUSTER_NAME.test(v))
        problem(ctx, `${JSON.stringify(v)} is not a cluster name (letters, digits, '-' and '_', at most 63 characters)`, { hint: 'use e.g. ogel' });
    })
    .default(DEFAULTS.cluster.name),
  secret: z.string().superRefine((v, ctx) => {
    const bytes = Buffer.byteLength(v, 'utf8');
    if (bytes < MIN_SECRET_BYTES) {
      problem(ctx, `must be at least ${MIN_SECRET_BYTES} bytes, got ${bytes}`, { hint: 'generate one with: openssl rand -hex 32' });
    } else if (bytes > 4096) problem(ctx, `must be at most 4096 bytes, got ${bytes}`);
  }),
  dataDir: pathText.default(DEFAULTS.cluster.dataDir),
});

const raftSchema = z.strictObject({
  tickMs: int(1, 10_000).default(DEFAULTS.raft.tickMs),
  electionTicks: int(1, 10_000).default(DEFAULTS.raft.electionTicks),
  heartbeatTicks: int(1, 10_000).default(DEFAULTS.raft.heartbeatTicks),
  snapshotEveryEntries: int(1, 1_000_000_000).default(DEFAULTS.raft.snapshotEveryEntries),
});

const apiSchema = z.strictObject({
  token: z.string().superRefine((v, ctx) => {
    if (v === '') problem(ctx, 'must not be empty', { hint: 'generate one with: openssl rand -hex 24' });
    // It travels in an HTTP header: printable ASCII, no spaces.
    else if (!/^[\x21-\x7e]+$/.test(v))
      problem(ctx, 'must be printable ASCII without spaces (it is sent in an HTTP header)', { hint: 'generate one with: openssl rand -hex 24' });
    else if (v.length > 1024) problem(ctx, `must be at most 1024 characters, got ${v.length}`);
  }),
  forwardTimeoutMs: int(1, 600_000).default(DEFAULTS.api.forwardTimeoutMs),
});

const logSchema = z.strictObject({
  level: z.enum(['debug', 'info', 'warn', 'error']).default(DEFAULTS.log.level),
});

const postgresSchema = z.strictObject({
  binDir: pathText.optional(),
  syncMode: z.enum(['quorum', 'async']).default(DEFAULTS.postgres.syncMode),
  syncQuorum: int(1, MAX_NODES - 1).default(DEFAULTS.postgres.syncQuorum),
  // Names and values are checked in validate.ts, one problem per parameter.
  parameters: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).prefault({}),
  volumeBytes: sizeBytes(MIN_VOLUME_BYTES).optional(),
  leaseMs: int(100, 600_000).default(DEFAULTS.postgres.leaseMs),
  failover: z.strictObject({ enabled: z.boolean().default(DEFAULTS.postgres.failover.enabled) }).prefault({}),
});

const proxySchema = z.strictObject({
  maxClientConnections: int(1, 1_000_000).default(DEFAULTS.proxy.maxClientConnections),
  poolMode: z.enum(['transaction', 'session']).default(DEFAULTS.proxy.poolMode),
  defaultPoolSize: int(1, 10_000).default(DEFAULTS.proxy.defaultPoolSize),
  holdTimeoutMs: int(0, 600_000).default(DEFAULTS.proxy.holdTimeoutMs),
  queueTimeoutMs: int(1, 600_000).default(DEFAULTS.proxy.queueTimeoutMs),
  serverIdleTimeoutMs: int(1_000, 86_400_000).default(DEFAULTS.proxy.serverIdleTimeoutMs),
  maxReplicaLagBytes: int(0, Number.MAX_SAFE_INTEGER).default(DEFAULTS.proxy.maxReplicaLagBytes),
  maxMessageBytes: int(10_000, 1024 * 1024 * 1024).default(DEFAULTS.proxy.maxMessageBytes),
  tls: z
    .strictObject({
      mode: z.enum(['off', 'on', 'required']).default(DEFAULTS.proxy.tls.mode),
      certFile: z.string().min(1).optional(),
      keyFile: z.string().min(1).optional(),
    })
    .refine((t) => (t.certFile === undefined) === (t.keyFile === undefined), {
      message: 'certFile and keyFile go together: give both, or neither for a self-signed certificate',
    })
    .prefault({}),
});

/** S3's bucket naming rules (3-63 characters; lowercase letters, digits, '.', '-'). */
export const S3_BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const S3_REGION = /^[a-z0-9][a-z0-9-]{0,62}$/;

const s3Endpoint = z.string().superRefine((v, ctx) => {
  let url: URL | undefined;
  try {
    url = new URL(v);
  } catch {
    url = undefined;
  }
  const hint = { hint: "use e.g. 'http://127.0.0.1:9000' (MinIO) or 'https://s3.eu-west-1.amazonaws.com'" };
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:'))
    problem(ctx, `${JSON.stringify(v)} is not an http:// or https:// URL`, hint);
  else if (url.username !== '' || url.password !== '')
    problem(ctx, 'must not contain credentials', { hint: 'set storage.s3.accessKeyId and storage.s3.secretAccessKey instead' });
  else if (url.search !== '' || url.hash !== '') problem(ctx, `${JSON.stringify(v)} must not have a query or fragment`, hint);
});

const s3Bucket = z.string().superRefine((v, ctx) => {
  if (!S3_BUCKET.test(v) || v.includes('..')) {
    problem(ctx, `${JSON.stringify(v)} is not an S3 bucket name (3 to 63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit)`, {
      hint: 'use e.g. ogel-backups',
    });
  }
});

const s3Prefix = z.string().superRefine((v, ctx) => {
  if (v === '') return;
  const hint = { hint: "use e.g. 'ogel/prod', or '' for the bucket's root" };
  if (/[\u0000-\u001f\u007f\\]/.test(v)) problem(ctx, `${JSON.stringify(v)} contains a control character or '\\'`, hint);
  else if (v.startsWith('/')) problem(ctx, `${JSON.stringify(v)} must not start with '/'`, hint);
  else if (
    v
      .replace(/\/$/, '')
      .split('/')
      .some((seg) => seg === '' || seg === '.' || seg === '..')
  )
    problem(ctx, `${JSON.stringify(v)} has an empty, '.' or '..' segment`, hint);
  else if (Buffer.byteLength(v, 'utf8') > 512) problem(ctx, 'must be at most 512 bytes (S3 keys are at most 1024)');
});

const storageSchema = z.strictObject({
  backend: z.enum(['fs', 's3']).default(DEFAULTS.storage.backend),
  fs: z.strictObject({ dir: pathText.optional() }).prefault({}),
  s3: z
    .strictObject({
      endpoint: s3Endpoint.optional(),
      region: z
        .string()
        .superRefine((v, ctx) => {
          if (!S3_REGION.test(v))
            problem(ctx, `${JSON.stringify(v)} is not a region name`, { hint: "use e.g. 'us-east-1' (any name works for MinIO and s3rver)" });
        })
        .default(DEFAULTS.storage.s3.region),
      bucket: s3Bucket.optional(),
      prefix: s3Prefix.default(DEFAULTS.storage.s3.prefix),
      forcePathStyle: z.boolean().default(DEFAULTS.storage.s3.forcePathStyle),
      accessKeyId: z.string().min(1).max(256).optional(),
      secretAccessKey: z.string().min(1).max(1024).optional(),
      connectTimeoutMs: int(100, 600_000).default(DEFAULTS.storage.s3.connectTimeoutMs),
      requestTimeoutMs: int(1_000, 3_600_000).default(DEFAULTS.storage.s3.requestTimeoutMs),
    })
    .prefault({}),
});

/**
 * How many of something to keep: an integer from 0 to max. Bounded because the
 * backup index holds at most 1000 backups (fsm LIMITS.backups) and every kept
 * incremental also keeps its chain; a bad value names the range and an example.
 */
const keepCount = (max: number, example: string) =>
  z.int().superRefine((v, ctx) => {
    if (v < 0 || v > max) problem(ctx, `must be a count from 0 to ${max}, got ${v}`, { hint: `use e.g. ${example}` });
  });

const backupsSchema = z.strictObject({
  scheduled: z.boolean().default(DEFAULTS.backups.scheduled),
  fullEveryHours: z
    .number()
    .positive()
    .max(24 * 366)
    .default(DEFAULTS.backups.fullEveryHours),
  incrementalEveryHours: z
    .number()
    .min(0)
    .max(24 * 366)
    .default(DEFAULTS.backups.incrementalEveryHours),
  restoreTestEveryHours: z
    .number()
    .min(0)
    .max(24 * 366)
    .default(DEFAULTS.backups.restoreTestEveryHours),
  retention: z
    .strictObject({
      daily: keepCount(366, 'daily: 7 (the newest backup of each of the last 7 days that have one)').default(DEFAULTS.backups.retention.daily),
      weekly: keepCount(260, 'weekly: 4 (the newest backup of each of the last 4 ISO weeks that have one)').default(DEFAULTS.backups.retention.weekly),
      monthly: keepCount(120, 'monthly: 3 (the newest backup of each of the last 3 months that have one)').default(DEFAULTS.backups.retention.monthly),
      failed: keepCount(100, 'failed: 5 (the records of the 5 newest failed backups, for ogel status; their objects are deleted either way)').default(
        DEFAULTS.backups.retention.failed,
      ),
    })
    .prefault({}),
});

/** Sections with a required field: validate.ts adds them as {} when absent, so
 * the problem names the field (cluster.secret), not the section. */
export const SECTIONS_WITH_REQUIRED_FIELDS = ['cluster', 'api'] as const;

export const configSchema = z.strictObject({
  cluster: clusterSchema,
  // The count (1..7) is checked in validate.ts: a length check here would make
  // zod skip the nodes themselves, hiding their problems.
  nodes: z.array(nodeSchema),
  raft: raftSchema.prefault({}),
  api: apiSchema,
  log: logSchema.prefault({}),
  postgres: postgresSchema.prefault({}),
  proxy: proxySchema.prefault({}),
  storage: storageSchema.prefault({}),
  backups: backupsSchema.prefault({}),
  restoreFrom: z
    .strictObject({
      config: pathText,
      targetTime: z.string().min(1).optional(),
      targetLsn: z.string().min(1).optional(),
      targetName: z.string().min(1).optional(),
    })
    .optional(),
});

// The hand-written Config above is the documented contract; this fails to
// compile if the schema drifts from it.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const schemaMatchesConfig: Same<z.output<typeof configSchema>, Omit<Config, 'warnings'>> = true;
void schemaMatchesConfig;

function unwrap(schema: z.ZodType): z.ZodType {
  let s: z.ZodType = schema;
  for (;;) {
    if (s instanceof z.ZodDefault || s instanceof z.ZodPrefault || s instanceof z.ZodOptional) s = s.unwrap() as z.ZodType;
    else return s;
  }
}

function schemaAt(path: readonly (string | number)[]): z.ZodType | undefined {
  let s = unwrap(configSchema);
  for (const seg of path) {
    if (s instanceof z.ZodObject) {
      const next = (s.shape as Record<string, z.ZodType>)[String(seg)];
      if (next === undefined) return undefined;
      s = unwrap(next);
    } else if (s instanceof z.ZodArray) {
      s = unwrap(s.element as z.ZodType);
    } else if (s instanceof z.ZodRecord) {
      s = unwrap(s.valueType as z.ZodType);
    } else {
      return undefined;
    }
  }
  return s;
}

/** The field names the schema knows at `path` (for "did you mean"). */
export function knownFieldsAt(path: readonly (string | number)[]): string[] {
  const s = schemaAt(path);
  return s instanceof z.ZodObject ? Object.keys(s.shape) : [];
}

/** What kind of scalar the field at `path` holds (used to type substituted values). */
export function fieldKindAt(path: readonly (string | number)[]): 'string' | 'integer' | 'number' | 'boolean' | 'other' {
  const s = schemaAt(path);
  if (s instanceof z.ZodString) return 'string';
  if (s instanceof z.ZodNumber) return s.format === 'safeint' || s.format === 'int32' ? 'integer' : 'number';
  if (s instanceof z.ZodBoolean) return 'boolean';
  return 'other';
}
