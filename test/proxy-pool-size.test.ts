// A tenant's poolSize bounds its server connections (docs/proxy.md, Pooling),
// checked on a real Postgres 17 through a real proxy: with poolSize 2, six clients
// running transactions at once never have more than 2 backends, the others wait
// and then succeed; and when the size changes, the pools follow (a shrink closes
// connections only between transactions).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startProxy, type ProxyFixture } from './helpers/proxy.js';
import { setTimeout as sleep } from 'node:timers/promises';

const CLIENTS = 6;
/** Long enough that all six transactions overlap, short enough for a quick test. */
const TX_SLEEP_S = 0.4;
const SAMPLE_EVERY_MS = 20;
/** Transactions held open across a shrink: longer than a login and a few checks take. */
const HOLD_S = 2;

describe('proxy: per-tenant pool size', { timeout: 120_000 }, () => {
  let fx: ProxyFixture;
  /** What the test double's identity says the tenant's poolSize is, read at each login. */
  let tenantPoolSize: number | null = 2;

  before(async () => {
    fx = await startProxy({ pool: { defaultPoolSize: 10 }, poolSize: () => tenantPoolSize });
  });
  after(async () => {
    await fx?.cleanup();
  });

  /** The tenant's server connections as Postgres sees them. */
  async function backends(): Promise<number> {
    const r = await fx.pg.pg.query<{ n: string }>(`SELECT count(*) AS n FROM pg_stat_activity WHERE usename = 'app' AND backend_type = 'client backend'`);
    return Number(r.rows[0]!.n);
  }

  /** Samples backends() until stopped; resolves with the largest count seen. */
  function sampleMaxBackends(): { stop: () => Promise<number> } {
    let max = 0;
    let running = true;
    const loop = (async () => {
      while (running) {
        max = Math.max(max, await backends());
        await sleep(SAMPLE_EVERY_MS);
      }
    })();
    return {
      stop: async () => {
        running = false;
        await loop;
        return max;
      },
    };
  }

  async function connectAll(n: number): Promise<pg.Client[]> {
    const clients = Array.from({ length: n }, () => new pg.Client(fx.clientConfig()));
    await Promise.all(clients.map((c) => c.connect()));
    return clients;
  }

  async function transaction(c: pg.Client, sleepS: number): Promise<number> {
    await c.query('BEGIN');
    const r = await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid, pg_sleep($1)', [sleepS]);
    await c.query('COMMIT');
    return r.rows[0]!.pid;
  }

  function appPool() {
    const pools = fx.proxy.stats().pools.filter((p) => p.role === 'app' && p.database === 'app');
    assert.equal(pools.length, 1, JSON.stringify(pools));
    return pools[0]!;
  }

  it(`poolSize 2: ${CLIENTS} concurrent transactions use at most 2 server connections; the others wait, then succeed`, async () => {
    const clients = await connectAll(CLIENTS);
    try {
      const sampler = sampleMaxBackends();
      const pids = await Promise.all(clients.map((c) => transaction(c, TX_SLEEP_S)));
      const maxBackends = await sampler.stop();
      assert.ok(maxBackends <= 2, `Postgres saw ${maxBackends} backends for the tenant; poolSize is 2`);
      assert.ok(new Set(pids).size <= 2, `transactions ran on ${new Set(pids).size} server backends: ${pids.join(', ')}`);
      const pool = appPool();
      assert.equal(pool.size, 2, 'the pool shows its size');
      assert.ok(pool.opened <= 2, `opened ${pool.opened} server connections`);
      assert.ok(pool.waits >= CLIENTS - 2, `only ${pool.waits} acquires waited; ${CLIENTS - 2} had to`);
      assert.equal(fx.proxy.stats().defaultPoolSize, 10);
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });

  it('a changed poolSize reaches existing pools: growing opens more, shrinking closes extras between transactions only', async () => {
    // Grow: a client logging in with the new limit resizes the pool it shares with the others.
    tenantPoolSize = 4;
    const clients = await connectAll(CLIENTS);
    try {
      assert.equal(appPool().size, 4);
      const grown = sampleMaxBackends();
      await Promise.all(clients.map((c) => transaction(c, TX_SLEEP_S)));
      const maxGrown = await grown.stop();
      assert.ok(maxGrown > 2 && maxGrown <= 4, `with poolSize 4, Postgres saw ${maxGrown} backends`);

      // Shrink while 4 transactions are open: none is cut; the extras close as they end.
      const inFlight = clients.slice(0, 4).map((c) => transaction(c, HOLD_S));
      await waitFor(async () => (await backends()) === 4 && appPool().active === 4, 'four transactions running');
      tenantPoolSize = 1;
      // Its login resizes the pool, then waits itself: the session needs a server
      // connection to finish its startup, and none is free until a transaction ends.
      const late = new pg.Client(fx.clientConfig());
      const lateConnected = late.connect();
      try {
        await waitFor(async () => appPool().size === 1, 'the login of a client with the new limit to resize the pool');
        assert.equal(await backends(), 4, 'busy connections are not closed mid-transaction');
        assert.equal(appPool().active, 4);
        const pids = await Promise.all(inFlight); // every open transaction commits
        assert.equal(new Set(pids).size, 4);
        await lateConnected;
        await transaction(late, 0);
        await waitFor(async () => (await backends()) <= 1, 'the tenant down to 1 server connection');
        const shrunk = sampleMaxBackends();
        await Promise.all([...clients, late].map((c) => transaction(c, 0.05)));
        const maxShrunk = await shrunk.stop();
        assert.ok(maxShrunk <= 1, `with poolSize 1, Postgres saw ${maxShrunk} backends`);
      } finally {
        await late.end();
      }
    } finally {
      tenantPoolSize = 2;
      await Promise.all(clients.map((c) => c.end()));
    }
  });
});

describe('proxy: a pool size changed in the state reaches connected clients without a new login', { timeout: 60_000 }, () => {
  let fx: ProxyFixture;
  /** The state machine's view, as the daemon's poolSizeOf reads it. */
  let stateSize: number | null = 1;

  before(async () => {
    fx = await startProxy({
      pool: { defaultPoolSize: 3 },
      poolSize: 1,
      poolSizeOf: (database, role) => (database === 'app' && role === 'app' ? stateSize : undefined),
    });
  });
  after(async () => {
    await fx?.cleanup();
  });

  it('size 1, then null (the default, 3) within a second or so, with the same clients', async () => {
    const clients = Array.from({ length: 4 }, () => new pg.Client(fx.clientConfig()));
    await Promise.all(clients.map((c) => c.connect()));
    try {
      await Promise.all(clients.map((c) => c.query('SELECT 1')));
      const pool = () => fx.proxy.stats().pools.find((p) => p.role === 'app')!;
      assert.equal(pool().size, 1);
      stateSize = null;
      await waitFor(async () => pool().size === 3, 'the pool to take the default size from the state', 5_000);
      await Promise.all(clients.map((c) => c.query('SELECT pg_sleep(0.3)')));
      assert.ok(pool().opened > 1 && pool().opened <= 3, `opened ${pool().opened}`);
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });
});

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(SAMPLE_EVERY_MS);
  }
}
