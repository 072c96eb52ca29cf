// From YAML text (or a plain object) to a validated Config, collecting every
// problem before giving up: YAML syntax, ${VAR} substitution, field types and
// ranges (zod), then the rules that span fields (unique ids and addresses, tick
// ratios, quorum sizes, Postgres parameters).

import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, Scalar, type Document } from 'yaml';
import type { z } from 'zod';
import { ADDRESS_ROLES, addressKey, isWildcardHost, localPort, parseHostPort, type AddressRole } from './address.js';
import { ENV_CLUSTER_SECRET, ENV_S3_ACCESS_KEY_ID, ENV_S3_SECRET_ACCESS_KEY, ENV_TOKEN, hasReference, substitute } from './env.js';
import { ConfigError, pathToString, type ConfigProblem } from './errors.js';
import {
  configSchema,
  DEFAULTS,
  fieldKindAt,
  knownFieldsAt,
  MAX_NODES,
  SECRET_PATHS,
  SECTIONS_WITH_REQUIRED_FIELDS,
  type Config,
  type IssueParams,
  type NodeConfig,
} from './schema.js';
import { closest } from './suggest.js';

type Seg = string | number;

interface Found {
  segs: Seg[];
  /** From ${VAR} substitution: the value at this path is meaningless, so other problems there are dropped. */
  substitution?: boolean;
  message: string;
  hint?: string | undefined;
  line?: number;
  column?: number;
}

/** A config file larger than this is certainly a mistake (a log, a binary). */
export const MAX_CONFIG_BYTES = 1 << 20;

/** Reads and validates a cluster.yml. Throws ConfigError listing every problem. */
export function loadConfig(path: string, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string;
  try {
    const st = statSync(path);
    if (st.isDirectory()) {
      throw new ConfigError(path, [{ path: '', message: 'is a directory, not a config file', hint: 'pass the path of cluster.yml itself' }]);
    }
    if (st.size > MAX_CONFIG_BYTES) {
      throw new ConfigError(path, [
        { path: '', message: `is ${st.size} bytes; a config file is at most ${MAX_CONFIG_BYTES}`, hint: 'check that --config names the right file' },
      ]);
    }
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? `no such file (looked for ${resolve(path)})`
        : code === 'EACCES' || code === 'EPERM'
          ? 'permission denied'
          : code === 'ENOTDIR'
            ? 'a part of the path is not a directory'
            : (e as Error).message;
    const hint = code === 'ENOENT' ? 'copy cluster.example.yml to start one, or pass --config with the right path' : undefined;
    throw new ConfigError(path, [{ path: '', message: `cannot read the config file: ${why}`, ...(hint === undefined ? {} : { hint }) }]);
  }
  return parseConfig(text, path, env);
}

/**
 * Validates YAML text. `source` names it in messages (usually the file path).
 * `${VAR}` and `${VAR:-default}` are substituted from `env` in string values;
 * OGEL_CLUSTER_SECRET and OGEL_TOKEN, when set and non-empty, override
 * cluster.secret and api.token.
 */
export function parseConfig(text: string, source: string, env: NodeJS.ProcessEnv = process.env): Config {
  const lines = new LineCounter();
  const doc = parseDocument(text.replace(/^\uFEFF/, ''), {
    lineCounter: lines,
    prettyErrors: false,
    uniqueKeys: true,
    version: '1.2',
    strict: true,
  });
  const yamlError = doc.errors[0];
  if (yamlError !== undefined) {
    // Only the first: the rest usually follow from it and bury it.
    const pos = lines.linePos(yamlError.pos[0]);
    let first = yamlError.message.split('\n')[0] ?? yamlError.message;
    if (yamlError.code === 'DUPLICATE_KEY') {
      const key = /^\s*(?:"([^"]*)"|'([^']*)'|([^:#\n]*?))\s*:/.exec(text.replace(/^\uFEFF/, '').slice(yamlError.pos[0]));
      if (key) first += `: ${JSON.stringify(key[1] ?? key[2] ?? key[3])}`;
    }
    const more = doc.errors.length - 1;
    const lineText = text.replace(/^\uFEFF/, '').split(/\r?\n/)[pos.line - 1] ?? '';
    const hint = /[{[][\s\S]*\$\{/.test(lineText)
      ? 'in flow style ({...} or [...]) put values with ${...} in quotes: "${VAR}"'
      : yamlError.code === 'DUPLICATE_KEY'
        ? 'remove one of the two'
        : undefined;
    throw new ConfigError(source, [
      {
        path: '',
        message: `YAML syntax error: ${first}${more > 0 ? ` (and ${more} more after it)` : ''}`,
        ...(hint === undefined ? {} : { hint }),
        line: pos.line,
        column: pos.col,
      },
    ]);
  }
  const top = doc.contents;
  if (top === null || (isScalar(top) && (top.value === null || top.value === ''))) {
    throw new ConfigError(source, [{ path: '', message: 'the file is empty', hint: 'start from cluster.example.yml' }]);
  }
  if (!isMap(top)) {
    const got = isSeq(top) ? 'a list' : isScalar(top) ? `the ${typeof top.value} ${JSON.stringify(top.value)}` : 'something else';
    const pos = top.range ? lines.linePos(top.range[0]) : undefined;
    throw new ConfigError(source, [
      {
        path: '',
        message: `the top level must be a mapping of sections (cluster:, nodes:, ...), got ${got}`,
        hint: 'start from cluster.example.yml',
        ...(pos ? { line: pos.line } : {}),
      },
    ]);
  }

  const found: Found[] = [];
  const notes = new Map<string, string>();
  const overrides: { segs: readonly string[]; name: string; value: string }[] = [];
  for (const [segs, name] of [
    [['cluster', 'secret'], ENV_CLUSTER_SECRET],
    [['api', 'token'], ENV_TOKEN],
    [['storage', 's3', 'accessKeyId'], ENV_S3_ACCESS_KEY_ID],
    [['storage', 's3', 'secretAccessKey'], ENV_S3_SECRET_ACCESS_KEY],
  ] as const) {
    const value = env[name];
    if (value !== undefined && value !== '') overrides.push({ segs, name, value });
  }
  const skip = new Set(overrides.map((o) => pathToString(o.segs)));
  substituteTree(top, [], { env, found, notes, skip });

  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw new ConfigError(source, [{ path: '', message: `cannot read the YAML: ${(e as Error).message}` }]);
  }
  raw = dropNulls(raw);
  if (isRecord(raw)) {
    for (const o of overrides) {
      // Walk (creating absent mappings) to the field's parent, then set it.
      let parent: Record<string, unknown> | undefined = raw;
      for (const seg of o.segs.slice(0, -1)) {
        if (parent[seg] === undefined) parent[seg] = {};
        const next: unknown = parent[seg];
        parent = isRecord(next) ? next : undefined;
        if (parent === undefined) break;
      }
      if (parent !== undefined) {
        parent[o.segs[o.segs.length - 1] as string] = o.value;
        notes.set(pathToString([...o.segs]), `value from ${o.name}`);
      }
    }
  }
  return finish(raw, source, found, notes, (segs) => locate(doc, lines, segs));
}

/**
 * Validates an already-parsed object (no substitution, no env overrides).
 * A `warnings` field (as on a Config) is ignored: warnings are recomputed.
 */
export function validateConfig(value: unknown, source = 'config'): Config {
  let copy: unknown;
  try {
    copy = structuredClone(value);
  } catch (e) {
    throw new ConfigError(source, [{ path: '', message: `is not plain data: ${(e as Error).message}` }]);
  }
  if (isRecord(copy)) delete copy.warnings;
  return finish(copy, source, [], new Map(), () => undefined);
}

/** The node with this id, or a ConfigError naming the ids there are. */
export function getNode(config: Config, id: string): NodeConfig {
  const node = config.nodes.find((n) => n.id === id);
  if (node !== undefined) return node;
  const ids = config.nodes.map((n) => n.id);
  const guess = closest(id, ids);
  throw new ConfigError('config', [
    {
      path: 'nodes',
      message: `no node with id ${JSON.stringify(id)}; the nodes are ${ids.join(', ')}`,
      hint: guess !== undefined ? `did you mean '${guess}'?` : `pass one of ${ids.join(', ')}`,
    },
  ]);
}

function finish(raw: unknown, source: string, found: Found[], notes: Map<string, string>, locateFn: (segs: Seg[]) => { line: number } | undefined): Config {
  if (isRecord(raw)) {
    for (const section of SECTIONS_WITH_REQUIRED_FIELDS) if (raw[section] === undefined) raw[section] = {};
  }
  const warnings: string[] = [];
  const result = configSchema.safeParse(raw, { reportInput: true });
  if (!result.success) for (const issue of result.error.issues) found.push(...fromIssue(issue));
  crossFieldChecks(raw, found, warnings);

  const unsubstituted = new Set(found.filter((f) => f.substitution).map((f) => pathToString(f.segs)));
  const kept = found.filter((f) => f.substitution || !unsubstituted.has(pathToString(f.segs)));
  if (kept.length > 0) {
    const problems = kept.map((f, order) => {
      const path = pathToString(f.segs);
      const note = f.substitution ? undefined : notes.get(path);
      const p: ConfigProblem = { path, message: note === undefined ? f.message : `${f.message} (${note})` };
      if (f.hint !== undefined) p.hint = f.hint;
      const line = f.line ?? locateFn(f.segs)?.line;
      if (line !== undefined) p.line = line;
      if (f.column !== undefined) p.column = f.column;
      return { p, order };
    });
    // Top to bottom through the file; problems with no line (a missing section) last.
    problems.sort((a, b) => (a.p.line ?? Infinity) - (b.p.line ?? Infinity) || a.order - b.order);
    throw new ConfigError(
      source,
      problems.map((x) => x.p),
    );
  }
  if (!result.success) throw new Error('unreachable: schema failed without problems');
  return { ...result.data, warnings };
}

// ---------------------------------------------------------------------------
// ${VAR} substitution on the YAML tree, so quoting decides the type.

interface SubstituteContext {
  env: NodeJS.ProcessEnv;
  found: Found[];
  notes: Map<string, string>;
  /** Paths overridden from the environment: their file value is never used. */
  skip: Set<string>;
}

function keyOf(key: unknown): string | undefined {
  if (isScalar(key)) return String(key.value);
  return typeof key === 'string' ? key : undefined;
}

function substituteTree(node: unknown, segs: Seg[], ctx: SubstituteContext): void {
  if (isMap(node)) {
    for (const pair of node.items) {
      const k = keyOf(pair.key);
      if (k !== undefined) substituteTree(pair.value, [...segs, k], ctx);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => {
      substituteTree(item, [...segs, i], ctx);
    });
  } else if (isScalar(node) && typeof node.value === 'string' && hasReference(node.value)) {
    const path = pathToString(segs);
    if (ctx.skip.has(path)) return;
    const r = substitute(node.value, ctx.env);
    for (const p of r.problems) ctx.found.push({ segs, message: p.message, hint: p.hint, substitution: true });
    if (r.vars.length > 0) ctx.notes.set(path, `after substituting ${r.vars.map((v) => '${' + v + '}').join(', ')}`);
    node.value = node.type === Scalar.PLAIN ? retype(r.value, fieldKindAt(segs)) : r.value;
  }
}

/**
 * An unquoted `${X}` acts as if its value were written there: '' means unset,
 * and numbers and booleans become numbers and booleans where the field takes
 * one. Quoted values stay strings, as in YAML.
 */
function retype(value: string, kind: ReturnType<typeof fieldKindAt>): unknown {
  if (value === '') return null;
  if ((kind === 'number' || kind === 'integer') && /^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$/.test(value)) return Number(value);
  if (kind === 'boolean' && /^(?:true|false)$/i.test(value)) return value.toLowerCase() === 'true';
  return value;
}

// ---------------------------------------------------------------------------
// Positions.

function locate(doc: Document, lines: LineCounter, segs: Seg[]): { line: number } | undefined {
  let node: unknown = doc.contents;
  let pos: number | undefined;
  for (const seg of segs) {
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => keyOf(p.key) === String(seg));
      if (pair === undefined) break;
      const keyRange = isScalar(pair.key) ? pair.key.range : undefined;
      if (keyRange) pos = keyRange[0];
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item: unknown = node.items[seg];
      if (item === undefined) break;
      const range = (item as { range?: [number, number, number] | null }).range;
      if (range) pos = range[0];
      node = item;
    } else {
      break;
    }
  }
  return pos === undefined ? undefined : { line: lines.linePos(pos).line };
}

// ---------------------------------------------------------------------------
// zod issues to problems.

const TYPE_NAMES: Record<string, string> = {
  int: 'an integer',
  number: 'a number',
  string: 'a string',
  boolean: 'true or false',
  object: 'a mapping',
  record: 'a mapping',
  array: 'a list',
};

function describe(value: unknown, secret: boolean): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (secret) return `a ${typeof value}`;
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 80 ? value.slice(0, 77) + '...' : value)}`;
  return `the ${typeof value} ${String(value)}`;
}

function requiredHint(segs: Seg[]): string | undefined {
  const path = pathToString(segs);
  if (path === 'cluster.secret') return `set it (at least 16 bytes; e.g. openssl rand -hex 32), or export ${ENV_CLUSTER_SECRET}`;
  if (path === 'api.token') return `set it (e.g. openssl rand -hex 24), or export ${ENV_TOKEN}`;
  if (path === 'nodes') return "list the cluster's nodes (id, raft, api, proxy, postgres); see cluster.example.yml";
  const [first, index, field] = segs;
  if (first === 'nodes' && typeof index === 'number' && segs.length === 3) {
    if (field === 'id') return `add e.g. id: n${index + 1}`;
    if (ADDRESS_ROLES.includes(field as AddressRole)) return `add e.g. ${String(field)}: 127.0.0.1:${localPort(field as AddressRole, index)}`;
  }
  return undefined;
}

function fromIssue(issue: z.core.$ZodIssue): Found[] {
  const segs: Seg[] = issue.path.map((p) => (typeof p === 'number' ? p : String(p)));
  const secret = SECRET_PATHS.has(pathToString(segs));
  const input: unknown = issue.input;
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => {
        const known = knownFieldsAt(segs);
        const guess = closest(key, known);
        return guess !== undefined
          ? { segs: [...segs, key], message: `unknown field; did you mean '${guess}'?` }
          : { segs: [...segs, key], message: 'unknown field', hint: `remove it; the fields here are ${known.join(', ')}` };
      });
    case 'invalid_type': {
      if (input === undefined) return [{ segs, message: 'is required', hint: requiredHint(segs) }];
      const expected = issue.expected === 'number' && fieldKindAt(segs) === 'integer' ? TYPE_NAMES.int : (TYPE_NAMES[issue.expected] ?? issue.expected);
      let hint: string | undefined;
      if (issue.expected === 'boolean' && typeof input === 'string' && /^(yes|no|on|off|y|n)$/i.test(input)) {
        hint = 'YAML 1.2 reads yes/no/on/off as strings: write true or false';
      } else if ((issue.expected === 'int' || issue.expected === 'number') && typeof input === 'string' && /^[-+]?[0-9.]+$/.test(input)) {
        hint = 'remove the quotes';
      } else if (issue.expected === 'string' && (typeof input === 'number' || typeof input === 'boolean') && !secret) {
        hint = `quote it: "${String(input)}"`;
      }
      return [{ segs, message: `expected ${expected}, got ${describe(input, secret)}`, hint }];
    }
    case 'too_small':
    case 'too_big': {
      const bound = issue.code === 'too_small' ? issue.minimum : issue.maximum;
      const word = issue.code === 'too_small' ? (issue.inclusive === false ? 'greater than' : 'at least') : issue.inclusive === false ? 'less than' : 'at most';
      return [{ segs, message: `must be ${word} ${String(bound)}, got ${describe(input, secret).replace(/^the number /, '')}` }];
    }
    case 'invalid_value': {
      const options = issue.values.map((v) => `'${String(v)}'`).join(', ');
      const guess = typeof input === 'string' ? closest(input, issue.values.map(String)) : undefined;
      return [
        {
          segs,
          message: `must be one of ${options}, got ${describe(input, secret)}${guess !== undefined ? `; did you mean '${guess}'?` : ''}`,
        },
      ];
    }
    case 'invalid_union':
      return [{ segs, message: `expected a string, number or boolean, got ${describe(input, secret)}` }];
    case 'custom': {
      const params = (issue.params ?? {}) as IssueParams;
      let hint = params.hint;
      if (hint === undefined && params.addressHost !== undefined) hint = addressHint(segs, params.addressHost);
      else if (hint === undefined && 'addressHost' in params) hint = addressHint(segs, undefined);
      return [{ segs, message: issue.message, hint }];
    }
    default:
      return [{ segs, message: issue.message }];
  }
}

/** "use e.g. 127.0.0.1:7102" for nodes[1].api, keeping the host if it was fine. */
function addressHint(segs: Seg[], host: string | undefined): string | undefined {
  const [, index, role] = segs;
  if (typeof index !== 'number' || !ADDRESS_ROLES.includes(role as AddressRole)) return undefined;
  const h = host === undefined ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return `use e.g. ${h}:${localPort(role as AddressRole, index)}`;
}

// ---------------------------------------------------------------------------
// Rules that span fields. They read the raw input defensively, so they run
// (and report) even when other fields are broken.

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function dropNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(dropNulls);
  if (isRecord(v)) {
    for (const [k, x] of Object.entries(v)) {
      if (x === null) delete v[k];
      else v[k] = dropNulls(x);
    }
  }
  return v;
}

function section(raw: unknown, name: string): Record<string, unknown> | undefined {
  if (!isRecord(raw)) return undefined;
  const s = raw[name];
  if (s === undefined) return {};
  return isRecord(s) ? s : undefined;
}

/** The field's value if it is a valid integer, its default if absent, else undefined. */
function intOr(s: Record<string, unknown> | undefined, key: string, fallback: number): number | undefined {
  if (s === undefined) return undefined;
  const v = s[key];
  if (v === undefined) return fallback;
  return Number.isSafeInteger(v) ? (v as number) : undefined;
}

/**
 * Settings ogel itself writes; setting them by hand would break replication,
 * routing or fencing. The one list: the Postgres settings renderer checks it too.
 */
export const MANAGED_PARAMETERS: Readonly<Record<string, string>> = {
  port: 'set the port in nodes[].postgres',
  listen_addresses: 'set nodes[].listenHost',
  unix_socket_directories: 'ogel chooses the socket directory',
  data_directory: 'set cluster.dataDir',
  config_file: 'ogel writes the config files',
  hba_file: 'ogel writes pg_hba.conf',
  ident_file: 'ogel writes the config files',
  external_pid_file: 'ogel supervises the process',
  synchronous_standby_names: 'set postgres.syncMode and postgres.syncQuorum',
  synchronous_commit: 'set postgres.syncMode (a global synchronous_commit below on can lose acknowledged writes)',
  primary_conninfo: 'ogel points standbys at the primary',
  primary_slot_name: 'ogel manages replication slots',
  restore_command: 'ogel manages recovery',
  recovery_target: 'ogel manages recovery',
  recovery_target_lsn: 'ogel manages recovery',
  recovery_target_name: 'ogel manages recovery',
  recovery_target_time: 'ogel manages recovery',
  recovery_target_xid: 'ogel manages recovery',
  recovery_target_timeline: 'ogel manages recovery',
  recovery_target_action: 'ogel manages recovery',
  hot_standby: 'standbys must serve reads',
};

/** Common settings, to catch typos (Postgres refuses to start on an unknown name). */
const KNOWN_PARAMETERS = [
  'shared_buffers',
  'work_mem',
  'maintenance_work_mem',
  'effective_cache_size',
  'max_connections',
  'temp_buffers',
  'wal_buffers',
  'max_wal_size',
  'min_wal_size',
  'checkpoint_timeout',
  'checkpoint_completion_target',
  'wal_compression',
  'wal_log_hints',
  'wal_level',
  'wal_keep_size',
  'max_wal_senders',
  'max_replication_slots',
  'hot_standby_feedback',
  'random_page_cost',
  'seq_page_cost',
  'effective_io_concurrency',
  'max_worker_processes',
  'max_parallel_workers',
  'max_parallel_workers_per_gather',
  'max_parallel_maintenance_workers',
  'log_min_duration_statement',
  'log_statement',
  'log_connections',
  'log_disconnections',
  'log_line_prefix',
  'log_lock_waits',
  'log_temp_files',
  'log_checkpoints',
  'shared_preload_libraries',
  'statement_timeout',
  'idle_in_transaction_session_timeout',
  'lock_timeout',
  'default_statistics_target',
  'autovacuum',
  'autovacuum_max_workers',
  'autovacuum_naptime',
  'autovacuum_vacuum_scale_factor',
  'autovacuum_analyze_scale_factor',
  'huge_pages',
  'timezone',
  'datestyle',
  'default_transaction_isolation',
  'jit',
  'track_io_timing',
  'track_activity_query_size',
  'archive_mode',
  'archive_library',
  'archive_command',
  'archive_timeout',
  'password_encryption',
  'ssl',
  'max_locks_per_transaction',
  'max_prepared_transactions',
  'full_page_writes',
  'fsync',
  'wal_sender_timeout',
  'wal_receiver_timeout',
  'max_slot_wal_keep_size',
  'tcp_keepalives_idle',
  'tcp_keepalives_interval',
  'tcp_keepalives_count',
  ...Object.keys(MANAGED_PARAMETERS),
];

const GUC_NAME = /^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?$/;

function crossFieldChecks(raw: unknown, found: Found[], warnings: string[]): void {
  if (!isRecord(raw)) {
    found.push({ segs: [], message: `the top level must be a mapping of sections (cluster:, nodes:, ...), got ${describe(raw, false)}` });
    return;
  }
  const add = (segs: Seg[], message: string, hint?: string): void => {
    found.push({ segs, message, hint });
  };
  const warn = (path: string, message: string): void => {
    warnings.push(`${path}: ${message}`);
  };

  // Nodes: count, unique ids, unique addresses.
  const nodes = Array.isArray(raw.nodes) ? (raw.nodes as unknown[]) : undefined;
  let nodeCount: number | undefined;
  if (nodes !== undefined) {
    if (nodes.length === 0) add(['nodes'], 'must list at least 1 node', 'list 3 nodes for a cluster that survives one failure');
    else if (nodes.length > MAX_NODES) {
      add(['nodes'], `must list at most ${MAX_NODES} nodes, got ${nodes.length}`, 'use 3 or 5 nodes: more voters only slow down commits');
    } else {
      nodeCount = nodes.length;
      if (nodes.length % 2 === 0) {
        warn('nodes', `${nodes.length} nodes tolerate no more failures than ${nodes.length - 1} do; an odd count (3 or 5) is recommended`);
      }
    }
    const ids = new Map<string, number>();
    const addresses = new Map<string, string>();
    nodes.forEach((node, i) => {
      if (!isRecord(node)) return;
      if (typeof node.id === 'string') {
        const first = ids.get(node.id);
        if (first !== undefined)
          add(['nodes', i, 'id'], `duplicate node id ${JSON.stringify(node.id)} (also nodes[${first}].id)`, 'give every node its own id');
        else ids.set(node.id, i);
      }
      const ports = new Map<number, AddressRole>();
      for (const role of ADDRESS_ROLES) {
        const v = node[role];
        if (typeof v !== 'string') continue;
        const a = parseHostPort(v);
        if (!a.ok || isWildcardHost(a.host)) continue;
        const key = addressKey(a.host, a.port);
        const first = addresses.get(key);
        if (first !== undefined) {
          add(
            ['nodes', i, role],
            `${JSON.stringify(v)} is already used by ${first}`,
            'every raft, api, proxy and postgres address in the cluster must be different',
          );
        } else {
          addresses.set(key, pathToString(['nodes', i, role]));
          // Bound to one listenHost, two roles on different hosts can still collide.
          const clash = ports.get(a.port);
          if (typeof node.listenHost === 'string' && clash !== undefined) {
            add(
              ['nodes', i, role],
              `port ${a.port} is also used by nodes[${i}].${clash}, and both listen on ${node.listenHost}`,
              'give each role of a node its own port',
            );
          }
          ports.set(a.port, role);
        }
      }
    });
  }

  // Raft timing.
  const raft = section(raw, 'raft');
  const tickMs = intOr(raft, 'tickMs', DEFAULTS.raft.tickMs);
  const electionTicks = intOr(raft, 'electionTicks', DEFAULTS.raft.electionTicks);
  const heartbeatTicks = intOr(raft, 'heartbeatTicks', DEFAULTS.raft.heartbeatTicks);
  if (electionTicks !== undefined && heartbeatTicks !== undefined && electionTicks <= heartbeatTicks) {
    add(
      ['raft', 'electionTicks'],
      `must be greater than raft.heartbeatTicks (${heartbeatTicks}), got ${electionTicks}`,
      `use e.g. ${Math.max(heartbeatTicks * 10, 2)}: followers must hear several heartbeats before an election timeout`,
    );
  }

  // Replication and leases.
  const pg = section(raw, 'postgres');
  if (pg !== undefined) {
    const syncMode = pg.syncMode === undefined ? DEFAULTS.postgres.syncMode : pg.syncMode;
    const syncQuorum = intOr(pg, 'syncQuorum', DEFAULTS.postgres.syncQuorum);
    if (syncMode === 'quorum' && nodeCount === 1) {
      add(
        ['postgres', 'syncMode'],
        'is quorum, but a single node has no standby to confirm commits: every write would wait forever',
        'set postgres.syncMode: async, or list 3 nodes',
      );
    } else if (syncMode === 'quorum' && nodeCount !== undefined && syncQuorum !== undefined && syncQuorum > nodeCount - 1) {
      add(
        ['postgres', 'syncQuorum'],
        `is ${syncQuorum}, but ${nodeCount} nodes have only ${nodeCount - 1} standbys to confirm a commit`,
        `use ${nodeCount - 1 === 1 ? '1' : `1 to ${nodeCount - 1}`}`,
      );
    } else if (syncMode === 'quorum' && nodeCount !== undefined && syncQuorum !== undefined && syncQuorum === nodeCount - 1 && nodeCount > 1) {
      warn('postgres.syncQuorum', `${syncQuorum} of ${nodeCount - 1} standbys must confirm every commit: one standby down stops all writes`);
    }
    if (syncMode === 'async') warn('postgres.syncMode', 'async replication can lose acknowledged writes when the primary fails');
    const leaseMs = intOr(pg, 'leaseMs', DEFAULTS.postgres.leaseMs);
    if (leaseMs !== undefined && tickMs !== undefined && electionTicks !== undefined) {
      const electionMaxMs = 2 * electionTicks * tickMs;
      if (leaseMs <= electionMaxMs) {
        warn(
          'postgres.leaseMs',
          `${leaseMs} ms is not longer than the longest Raft election timeout (${electionMaxMs} ms): the primary may fence itself during an ordinary leader change`,
        );
      }
    }
    const failover = pg.failover;
    if (isRecord(failover) && failover.enabled === false)
      warn('postgres.failover.enabled', 'automatic failover is off: a failed primary stays down until `ogel failover`');

    const params = pg.parameters;
    if (isRecord(params)) {
      for (const [name, value] of Object.entries(params)) {
        const segs: Seg[] = ['postgres', 'parameters', name];
        if (!GUC_NAME.test(name)) {
          add(
            segs,
            `${JSON.stringify(name)} is not a PostgreSQL setting name`,
            'names are letters, digits and underscores, with one dot for an extension setting (pg_stat_statements.max)',
          );
          continue;
        }
        const lower = name.toLowerCase();
        const managed = MANAGED_PARAMETERS[lower];
        if (managed !== undefined) {
          add(segs, 'is managed by ogel', `remove it: ${managed}`);
          continue;
        }
        if (lower === 'wal_level' && value !== 'replica' && value !== 'logical') {
          add(segs, `must be 'replica' or 'logical' for replication, got ${describe(value, false)}`);
        }
        if (typeof value === 'string' && /[\n\r\0]/.test(value)) add(segs, 'must not contain line breaks or NUL characters');
        if (!lower.includes('.') && !KNOWN_PARAMETERS.includes(lower)) {
          const guess = closest(lower, KNOWN_PARAMETERS);
          if (guess !== undefined)
            warn(pathToString(segs), `not a setting ogel knows; did you mean '${guess}'? (Postgres refuses to start on an unknown setting)`);
        }
      }
    }
  }

  storageChecks(raw, nodes, add, warn);

  const api = section(raw, 'api');
  if (api !== undefined && typeof api.token === 'string' && api.token.length > 0 && api.token.length < 16) {
    warn('api.token', 'shorter than 16 characters: easy to guess, and it controls the whole cluster');
  }
}

/** The object store: what the backend needs, credentials in pairs, and where an fs store is shared. */
function storageChecks(
  raw: Record<string, unknown>,
  nodes: unknown[] | undefined,
  add: (segs: Seg[], message: string, hint?: string) => void,
  warn: (path: string, message: string) => void,
): void {
  const storage = section(raw, 'storage');
  if (storage === undefined) return;
  const backend = storage.backend ?? DEFAULTS.storage.backend;
  const s3 = isRecord(storage.s3) ? storage.s3 : {};
  const fs = isRecord(storage.fs) ? storage.fs : {};
  if (backend === 's3' && s3.bucket === undefined) {
    add(['storage', 's3', 'bucket'], 'is required when storage.backend is s3', 'name an existing bucket, e.g. bucket: ogel-backups');
  }
  const hasId = s3.accessKeyId !== undefined;
  const hasSecret = s3.secretAccessKey !== undefined;
  if (hasId !== hasSecret) {
    const missing = hasId ? 'secretAccessKey' : 'accessKeyId';
    add(
      ['storage', 's3', missing],
      `is required with storage.s3.${hasId ? 'accessKeyId' : 'secretAccessKey'}: the two go together`,
      `set it, or export ${hasId ? ENV_S3_SECRET_ACCESS_KEY : ENV_S3_ACCESS_KEY_ID}`,
    );
  }
  if (backend !== 'fs' || nodes === undefined) return;
  // The default directory sits beside the nodes' own <dataDir>/<nodeId>.
  if (fs.dir === undefined) {
    nodes.forEach((n, i) => {
      if (isRecord(n) && n.id === DEFAULT_OBJECTS_DIR_NAME) {
        add(
          ['nodes', i, 'id'],
          `${JSON.stringify(n.id)} is the name of the default object store directory <cluster.dataDir>/${DEFAULT_OBJECTS_DIR_NAME}`,
          'rename the node, or set storage.fs.dir',
        );
      }
    });
  }
  const hosts = new Set<string>();
  for (const n of nodes) {
    const a = isRecord(n) && typeof n.api === 'string' ? parseHostPort(n.api) : undefined;
    if (a?.ok) hosts.add(a.host);
  }
  // An explicit dir may be a shared mount; the default one never is across hosts.
  if (hosts.size > 1 && fs.dir === undefined) {
    warn(
      'storage.fs.dir',
      `unset, so each node keeps objects in its own <cluster.dataDir>/${DEFAULT_OBJECTS_DIR_NAME}, but the nodes are on different hosts: a backup taken on one node cannot be restored on another; set storage.fs.dir to one shared mount, or use storage.backend s3`,
    );
  }
}

/** The fs store's directory when storage.fs.dir is unset: <cluster.dataDir>/objects. */
export const DEFAULT_OBJECTS_DIR_NAME = 'objects';
