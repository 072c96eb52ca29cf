// The three Railway services of an OgelBase cluster, as plain data.
//
// `.railway/railway.ts` (Railway Infrastructure as Code, evaluated by the Railway
// CLI) turns these into Railway resources; test/railway-config.test.ts checks them
// against deploy/railway/cluster.yml and the Dockerfile without needing Railway.
//
// Constraints on this file, because the Railway CLI evaluates railway.ts (and so
// this module) with `node --experimental-strip-types`: no imports, and only
// erasable TypeScript (no enums, namespaces or parameter properties).

/** Railway's private DNS zone: service `n1` is `n1.railway.internal`. */
export const PRIVATE_DOMAIN_SUFFIX = 'railway.internal';

/** Where the Dockerfile puts the application. */
export const APP_DIR = '/app';

/** Mount path of each service's volume; also `cluster.dataDir` (via OGEL_DATA_DIR). */
export const DATA_MOUNT_PATH = '/data';

/** The cluster config every node reads (inside the image). */
export const CONFIG_PATH = `${APP_DIR}/deploy/railway/cluster.yml`;

/** Bind host of every listener: Railway's private network needs `::` (IPv6; dual-stack on Linux). */
export const LISTEN_HOST = '::';

/**
 * Ports, identical on every node (each service is its own host). The admin API
 * port is also Railway's PORT, which Railway's healthcheck probes.
 */
export const PORTS = {
  raft: 7000,
  api: 8080,
  proxy: 5432,
  postgres: 5433,
} as const;

export type PortRole = keyof typeof PORTS;

/** Patroni-style liveness endpoint of the admin API: 200 while the daemon runs. */
export const HEALTHCHECK_PATH = '/health';

/** The Railway service names; each is also the node id and its private DNS label. */
export const NODE_IDS = ['n1', 'n2', 'n3'] as const;

/** Environment variables whose values are secrets: Railway shared variables, never in source. */
export const SHARED_SECRET_VARIABLES = ['OGEL_CLUSTER_SECRET', 'OGEL_TOKEN'] as const;

/**
 * Variables Railway sets in every deployment (docs.railway.com/variables/reference
 * and the `RailwayProvidedVariable` type of the `railway` SDK). cluster.yml may
 * reference these as well as the ones a service defines.
 */
export const RAILWAY_PROVIDED_VARIABLES = [
  'PORT',
  'RAILWAY_PUBLIC_DOMAIN',
  'RAILWAY_PRIVATE_DOMAIN',
  'RAILWAY_TCP_PROXY_DOMAIN',
  'RAILWAY_TCP_PROXY_PORT',
  'RAILWAY_TCP_APPLICATION_PORT',
  'RAILWAY_PROJECT_NAME',
  'RAILWAY_PROJECT_ID',
  'RAILWAY_ENVIRONMENT',
  'RAILWAY_ENVIRONMENT_NAME',
  'RAILWAY_ENVIRONMENT_ID',
  'RAILWAY_SERVICE_NAME',
  'RAILWAY_SERVICE_ID',
  'RAILWAY_REPLICA_ID',
  'RAILWAY_REPLICA_REGION',
  'RAILWAY_DEPLOYMENT_ID',
  'RAILWAY_DEPLOYMENT_DRAINING_SECONDS',
  'RAILWAY_SNAPSHOT_ID',
  'RAILWAY_VOLUME_NAME',
  'RAILWAY_VOLUME_MOUNT_PATH',
] as const;

/**
 * The image's entry wrapper, in front of the daemon command: tini as PID 1 (signals,
 * zombie reaping), then entrypoint.sh, which hands the volume to the unprivileged
 * `node` user and drops to it when the container starts as root (RAILWAY_RUN_UID=0).
 */
export const ENTRY_WRAPPER = ['/usr/bin/tini', '--', `${APP_DIR}/deploy/railway/entrypoint.sh`] as const;

/** `ogel daemon --config <path> --node <id>`, as argv (the `ogel` bin is dist/src/main.js). */
export function daemonArgv(nodeId: string): string[] {
  return ['node', `${APP_DIR}/dist/src/main.js`, 'daemon', '--config', CONFIG_PATH, '--node', nodeId];
}

/**
 * Railway's start command for a node. Railway runs a Dockerfile service's start
 * command in exec form in place of the image ENTRYPOINT (no shell, no variable
 * expansion), so it is plain words: the entry wrapper, then the daemon command.
 */
export function startCommand(nodeId: string): string {
  return [...ENTRY_WRAPPER, ...daemonArgv(nodeId)].join(' ');
}

export function privateHost(nodeId: string): string {
  return `${nodeId}.${PRIVATE_DOMAIN_SUFFIX}`;
}

export interface RailwayServiceSpec {
  /** Railway service name = node id = private DNS label. */
  name: string;
  nodeId: string;
  /** `<name>.railway.internal`: the host of every address this node advertises. */
  privateHost: string;
  /** Railway start command (exec form; see startCommand). */
  start: string;
  /** Literal service variables. */
  env: Record<string, string>;
  /** Service variables that reference environment shared variables of the same name. */
  sharedEnv: readonly string[];
  /** One volume per service (Railway allows exactly one), mounted at DATA_MOUNT_PATH. */
  volume: { name: string; mountPath: string };
  /** Railway healthcheck: HTTP GET `path` on `port` (Railway probes the PORT variable). */
  healthcheck: { path: string; port: number; timeoutSeconds: number };
  ports: { [R in PortRole]: number };
  /** Ports published through a Railway TCP proxy (a public host:port chosen by Railway). */
  tcpProxyPorts: number[];
  /** Seconds between SIGTERM and SIGKILL on a stop or redeploy (leader hand-off, Postgres shutdown). */
  drainingSeconds: number;
  restartPolicy: 'ALWAYS' | 'ON_FAILURE' | 'NEVER';
}

function serviceSpec(nodeId: string): RailwayServiceSpec {
  const endpoints = NODE_IDS.map((id) => `http://${privateHost(id)}:${PORTS.api}`).join(',');
  return {
    name: nodeId,
    nodeId,
    privateHost: privateHost(nodeId),
    start: startCommand(nodeId),
    env: {
      // Read by the image's default command (a plain `docker run` without a start command).
      OGEL_NODE_ID: nodeId,
      // Railway's healthcheck probes this port: the admin API's.
      PORT: String(PORTS.api),
      // cluster.dataDir: the volume. The daemon keeps its node's data in <dataDir>/<node id>.
      OGEL_DATA_DIR: DATA_MOUNT_PATH,
      OGEL_LOG_LEVEL: 'info',
      // The public TCP proxy carries Postgres: TLS required (cluster.yml proxy.tls.mode).
      OGEL_PROXY_TLS: 'required',
      // The `ogel` CLI inside the container (railway ssh) finds every node's admin API from this.
      OGEL_API: endpoints,
      // Railway mounts volumes owned by root; start as root so entrypoint.sh can give the
      // volume to `node`, then it drops to `node` before anything else runs.
      RAILWAY_RUN_UID: '0',
    },
    sharedEnv: SHARED_SECRET_VARIABLES,
    volume: { name: `${nodeId}-data`, mountPath: DATA_MOUNT_PATH },
    healthcheck: { path: HEALTHCHECK_PATH, port: PORTS.api, timeoutSeconds: 120 },
    ports: { ...PORTS },
    tcpProxyPorts: [PORTS.proxy],
    drainingSeconds: 30,
    restartPolicy: 'ALWAYS',
  };
}

/** The Railway project name `railway config plan` compares against. */
export const PROJECT_NAME = 'ogelbase';

export const SERVICES: readonly RailwayServiceSpec[] = NODE_IDS.map(serviceSpec);
