// A ProxyServer in front of a real temporary Postgres 17, for the proxy tests.
// The identity resolver is a test double (one tenant: role and database "app",
// client password CLIENT_PASSWORD); SCRAM is the real server exchange
// (src/proxy/scram-server.ts), so psql, pgbench and node-postgres log in as
// they would against Postgres.

import { spawn } from 'node:child_process';
import { makeScramVerifier } from '../../src/auth/scram.js';
import { ProxyServer, type ProxyPoolOptions, type ProxyServerOptions, type ProxyTlsOptions } from '../../src/proxy/server.js';
import { StaticRouter, type Router } from '../../src/proxy/router.js';
import { checkParams } from '../../src/proxy/identity.js';
import { scramServerExchange } from '../../src/proxy/scram-server.js';
import type { ClaimedIdentity, ProxyRefusal, StartupParams } from '../../src/proxy/types.js';
import { makeTempPrimary, type TempPrimary } from './postgres.js';

export const CLIENT_PASSWORD = 'client-secret-pw';
export const SERVER_PASSWORD = 'server-only-pw-0123';
export const TENANT = 'app';

/**
 * The test double for identity.ts: tenant "app" only; read-only by
 * target_session_attrs. poolSize: a number, or a function read at each login
 * (to change the tenant's limit while the proxy runs).
 */
export function testIdentity(maxClientConnections: number | null = null, poolSize: number | null | (() => number | null) = null) {
  const verifier = makeScramVerifier(CLIENT_PASSWORD, 4096);
  return (params: StartupParams): ClaimedIdentity | ProxyRefusal => {
    // The real rules for parameter names and forms (identity.ts); only the tenant lookup is a double.
    const checked = checkParams(params);
    if ('code' in checked) return checked;
    const { user, database, readOnly, poolMode, serverParams } = checked;
    if (user !== TENANT || database !== TENANT)
      return { code: '28000', message: `no such tenant for user ${JSON.stringify(user)} and database ${JSON.stringify(database)}` };
    return {
      kind: 'tenant',
      tenantId: 't-app',
      role: TENANT,
      database: TENANT,
      verifier,
      readOnly,
      poolMode,
      serverParams,
      maxClientConnections,
      poolSize: typeof poolSize === 'function' ? poolSize() : poolSize,
    };
  };
}

export interface ProxyFixture {
  pg: TempPrimary;
  proxy: ProxyServer;
  router: StaticRouter;
  port: number;
  /** node-postgres config for the proxy. */
  clientConfig(extra?: Record<string, unknown>): { host: string; port: number; user: string; password: string; database: string };
  /** libpq connection string for the proxy. */
  url(extra?: string): string;
  /** Restarts the proxy with other pool options (same Postgres). */
  cleanup(): Promise<void>;
}

export interface FixtureOptions {
  pool?: Partial<ProxyPoolOptions>;
  tls?: ProxyTlsOptions;
  router?: Router;
  maxClientConnections?: number | null;
  /** The tenant's poolSize in its identity (null: defaultPoolSize); a function is read at each login. */
  poolSize?: number | null | (() => number | null);
  /** ProxyServer's poolSizeOf (the daemon reads the state machine there). */
  poolSizeOf?: (database: string, role: string) => number | null | undefined;
  /** An existing Postgres (role and database already made). */
  pg?: TempPrimary;
  cancelRouting?: ProxyServerOptions['cancelRouting'];
}

export const POOL_DEFAULTS: ProxyPoolOptions = {
  mode: 'transaction',
  defaultPoolSize: 4,
  maxClientConnections: 200,
  queueTimeoutMs: 10_000,
  serverIdleTimeoutMs: 60_000,
  holdTimeoutMs: 5_000,
  maxMessageBytes: 64 * 1024 * 1024,
};

/** A temporary Postgres with role and database "app" (server password SERVER_PASSWORD). */
export async function makeAppPostgres(): Promise<TempPrimary> {
  const pg = await makeTempPrimary({ settings: { parameters: { shared_buffers: '32MB', max_connections: 60, fsync: false } } });
  try {
    await pg.pg.query(`CREATE ROLE ${TENANT} LOGIN PASSWORD '${SERVER_PASSWORD}'`);
    await pg.pg.query(`CREATE DATABASE ${TENANT} OWNER ${TENANT}`);
  } catch (e) {
    await pg.cleanup();
    throw e;
  }
  return pg;
}

export async function startProxy(o: FixtureOptions = {}): Promise<ProxyFixture> {
  const pg = o.pg ?? (await makeAppPostgres());
  const router = (o.router as StaticRouter | undefined) ?? new StaticRouter({ node: 'n1', host: '127.0.0.1', port: pg.port, generation: 1 });
  const proxy = new ProxyServer({
    host: '127.0.0.1',
    port: 0,
    pool: { ...POOL_DEFAULTS, ...o.pool },
    resolveIdentity: testIdentity(o.maxClientConnections ?? null, o.poolSize ?? null),
    scram: (verifier, id) => scramServerExchange(verifier, { user: id.role }),
    credentials: (role) => ({ user: role, password: SERVER_PASSWORD }),
    poolSizeOf: o.poolSizeOf,
    router,
    tls: o.tls,
    cancelRouting: o.cancelRouting,
  });
  const { port } = await proxy.listen();
  return {
    pg,
    proxy,
    router,
    port,
    clientConfig: (extra = {}) => ({ host: '127.0.0.1', port, user: TENANT, password: CLIENT_PASSWORD, database: TENANT, ...extra }),
    url: (extra = '') => `postgresql://${TENANT}:${CLIENT_PASSWORD}@127.0.0.1:${port}/${TENANT}${extra}`,
    cleanup: async () => {
      await proxy.close();
      if (!o.pg) await pg.cleanup();
    },
  };
}

/** Runs a client program (psql, pgbench) to its end; never through a shell. */
export function run(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env: { ...process.env, PGCONNECT_TIMEOUT: '10', ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    p.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    p.stdin.end(opts.input ?? '');
  });
}
