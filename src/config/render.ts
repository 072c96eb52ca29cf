// Configs made by ogel itself (`ogel up`), and configs shown or written back.

import { join } from 'node:path';
import { stringify } from 'yaml';
import { ADDRESS_ROLES, LOCAL_BASE_PORT, LOCAL_PORT_SPAN, localPort, parseHostPort, type AddressRole, type HostPort } from './address.js';
import { escapeReferences } from './env.js';
import { ConfigError, type ConfigProblem } from './errors.js';
import { DEFAULTS, MAX_NODES, type Config, type ConfigDefaults, type NodeConfig } from './schema.js';
import { DEFAULT_OBJECTS_DIR_NAME, validateConfig } from './validate.js';

/** The value of every field that has a default (a fresh copy). */
export function defaultConfig(): ConfigDefaults {
  return structuredClone(DEFAULTS) as ConfigDefaults;
}

export interface LocalClusterOptions {
  /** Data directory; node nK keeps its data under <dataDir>/nK. */
  dataDir: string;
  /** Ports are basePort + 100 * role + index: raft 7001.., api 7101.., proxy 7201.., postgres 7301.. */
  basePort?: number;
  /** 1 to 7; default 3. */
  nodes?: number;
  secret: string;
  token: string;
}

/**
 * The config `ogel up` writes: nodes n1..nN on 127.0.0.1, every other field at
 * its default. A single node replicates asynchronously (it has no standby).
 */
export function localClusterConfig(opts: LocalClusterOptions): Config {
  const count = opts.nodes ?? 3;
  const basePort = opts.basePort ?? LOCAL_BASE_PORT;
  const problems: ConfigProblem[] = [];
  if (!Number.isInteger(count) || count < 1 || count > MAX_NODES) problems.push({ path: 'nodes', message: `must be 1 to ${MAX_NODES}, got ${count}` });
  if (!Number.isInteger(basePort) || basePort < 1 || basePort + LOCAL_PORT_SPAN > 65535) {
    problems.push({ path: 'basePort', message: `must be 1 to ${65535 - LOCAL_PORT_SPAN}, got ${basePort}` });
  }
  if (problems.length > 0) throw new ConfigError('local cluster options', problems);

  const nodes = Array.from({ length: count }, (_, i) => {
    const node: Record<string, unknown> = { id: `n${i + 1}` };
    for (const role of ADDRESS_ROLES) node[role] = `127.0.0.1:${localPort(role, i, basePort)}`;
    node.priority = DEFAULTS.node.priority;
    return node;
  });
  const d = defaultConfig();
  return validateConfig(
    {
      cluster: { ...d.cluster, secret: opts.secret, dataDir: opts.dataDir },
      nodes,
      raft: d.raft,
      api: { token: opts.token, ...d.api },
      log: d.log,
      postgres: { ...d.postgres, syncMode: count === 1 ? 'async' : d.postgres.syncMode },
      proxy: d.proxy,
      storage: d.storage,
      backups: d.backups,
    },
    'local cluster config',
  );
}

/** A copy with the cluster secret and API token replaced by '***' (for `ogel config show`). */
export function redactConfig(c: Config): Config {
  const copy = structuredClone(c);
  copy.cluster.secret = '***';
  copy.api.token = '***';
  if (copy.storage.s3.secretAccessKey !== undefined) copy.storage.s3.secretAccessKey = '***';
  return copy;
}

/**
 * YAML that parseConfig reads back to an equal Config (warnings are derived, so
 * not written). Every field is written, defaults included; `${` in values is
 * escaped so it is not substituted on the way back.
 */
export function configToYaml(c: Config, opts: { comment?: string } = {}): string {
  const node = (n: NodeConfig): Record<string, unknown> => {
    const out: Record<string, unknown> = { id: n.id, raft: n.raft, api: n.api, proxy: n.proxy, postgres: n.postgres };
    if (n.listenHost !== undefined) out.listenHost = n.listenHost;
    out.priority = n.priority;
    return out;
  };
  const postgres: Record<string, unknown> = {};
  if (c.postgres.binDir !== undefined) postgres.binDir = c.postgres.binDir;
  Object.assign(postgres, {
    syncMode: c.postgres.syncMode,
    syncQuorum: c.postgres.syncQuorum,
    parameters: c.postgres.parameters,
    leaseMs: c.postgres.leaseMs,
    failover: { enabled: c.postgres.failover.enabled },
  });
  const plain = escapeStrings({
    cluster: { name: c.cluster.name, secret: c.cluster.secret, dataDir: c.cluster.dataDir },
    nodes: c.nodes.map(node),
    raft: c.raft,
    api: { token: c.api.token, forwardTimeoutMs: c.api.forwardTimeoutMs },
    log: c.log,
    postgres,
    proxy: c.proxy,
    storage: c.storage,
    backups: c.backups,
    ...(c.restoreFrom === undefined ? {} : { restoreFrom: c.restoreFrom }),
  });
  const header =
    opts.comment === undefined
      ? ''
      : opts.comment
          .split('\n')
          .map((l) => (l === '' ? '#' : `# ${l}`))
          .join('\n') + '\n';
  return header + stringify(plain, { lineWidth: 0 });
}

function escapeStrings(v: unknown): unknown {
  if (typeof v === 'string') return escapeReferences(v);
  if (Array.isArray(v)) return v.map(escapeStrings);
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, escapeStrings(x)]));
  return v;
}

/** <dataDir>/<nodeId>. A relative dataDir is relative to the daemon's working directory. */
export function nodeDataDir(c: Config, nodeId: string): string {
  return join(c.cluster.dataDir, nodeId);
}

/**
 * The fs object store's directory: storage.fs.dir, or <cluster.dataDir>/objects.
 * One directory for every node (a backup taken on one restores on another).
 */
export function objectStoreDir(c: Pick<Config, 'cluster' | 'storage'>): string {
  return c.storage.fs.dir ?? join(c.cluster.dataDir, DEFAULT_OBJECTS_DIR_NAME);
}

/** Where a node binds the listener for `role`: listenHost if set, else the advertised host. */
export function listenAddress(node: NodeConfig, role: AddressRole): HostPort {
  const a = parseHostPort(node[role]);
  if (!a.ok) throw new Error(`listenAddress: ${node.id}.${role} ${JSON.stringify(node[role])} was not validated`);
  return { host: node.listenHost ?? a.host, port: a.port };
}

/** The advertised address of a node's listener, parsed. */
export function advertisedAddress(node: NodeConfig, role: AddressRole): HostPort {
  const a = parseHostPort(node[role]);
  if (!a.ok) throw new Error(`advertisedAddress: ${node.id}.${role} ${JSON.stringify(node[role])} was not validated`);
  return { host: a.host, port: a.port };
}
