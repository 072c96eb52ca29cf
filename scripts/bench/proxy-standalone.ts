// The ogel proxy in a process of its own, in front of one Postgres, for
// bench:proxy: the same ProxyServer the daemon runs, with a fixed route and one
// tenant. A process of its own so its memory per idle client can be read from
// its RSS. Prints {"port":N} once listening; answers "rss\n" on stdin with
// {"rss":bytes,"clients":N} (after a GC when exposed).

import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import type { Tenant } from '../../fsm/index.js';
import { makeScramVerifier } from '../../src/auth/scram.js';
import { makeIdentityResolver } from '../../src/proxy/identity.js';
import { StaticRouter } from '../../src/proxy/router.js';
import { scramServerExchange } from '../../src/proxy/scram-server.js';
import { ProxyServer } from '../../src/proxy/server.js';

const { values: a } = parseArgs({
  options: {
    'upstream-port': { type: 'string' },
    user: { type: 'string' },
    password: { type: 'string' },
    database: { type: 'string' },
    'pool-size': { type: 'string', default: '20' },
    mode: { type: 'string', default: 'transaction' },
  },
  strict: true,
});
for (const k of ['upstream-port', 'user', 'password', 'database'] as const) if (!a[k]) throw new Error(`--${k} is required`);
const user = a.user!;
const password = a.password!;
const mode = a.mode === 'session' ? 'session' : 'transaction';

const tenant: Tenant = {
  id: 'bench',
  name: user,
  database: a.database!,
  role: user,
  limits: { maxConnections: 100_000, rateLimitPerSec: 1_000_000, poolSize: null, poolMode: null },
  state: 'active',
  placement: null,
  scram: makeScramVerifier(password),
  createdAtMs: 0,
  deletedAtMs: null,
};
const tenants = new Map([[tenant.id, tenant]]);
const proxy = new ProxyServer({
  host: '127.0.0.1',
  port: 0,
  pool: {
    mode,
    defaultPoolSize: Number(a['pool-size']),
    maxClientConnections: 100_000,
    queueTimeoutMs: 60_000,
    serverIdleTimeoutMs: 600_000,
    holdTimeoutMs: 10_000,
    maxMessageBytes: 64 * 1024 * 1024,
  },
  resolveIdentity: makeIdentityResolver(() => ({ tenants }), { verifier: makeScramVerifier(`${password}-admin-unused`) }),
  scram: (verifier) => scramServerExchange(verifier),
  credentials: () => ({ user, password }),
  router: new StaticRouter({ node: 'pg', host: '127.0.0.1', port: Number(a['upstream-port']), generation: 1 }),
});

// A clean exit on SIGTERM, so that --cpu-prof (OGEL_BENCH_PROXY_NODE_ARGS) writes its profile.
process.on('SIGTERM', () => process.exit(0));

const { port } = await proxy.listen();
process.stdout.write(`${JSON.stringify({ port })}\n`);
const gc = (globalThis as { gc?: () => void }).gc;
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === 'rss') {
    gc?.();
    gc?.();
    process.stdout.write(`${JSON.stringify({ rss: process.memoryUsage().rss, clients: proxy.stats().clients.total })}\n`);
  }
}
await proxy.close();
