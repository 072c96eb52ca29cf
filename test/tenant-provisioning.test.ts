// `ogel tenants create` creates the tenant's role and database on the primary
// (the tenant-provisioner controller), with isolation enforced by Postgres
// itself: checked here by connecting DIRECTLY to the primary's Postgres with the
// role's derived server password, around the proxy.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { loadConfig, type Config } from '../src/config/index.js';
import { DaemonCluster } from './helpers/daemons.js';
import { adminPassword, tenantServerPassword } from '../src/auth/passwords.js';

interface PgView {
  primary: string | null;
  lease: { renewalSeq: number } | null;
  nodes: Record<string, { role: string; reportedRole: string }>;
}

describe('tenant provisioning on the primary', () => {
  let c: DaemonCluster;
  let config: Config;

  before(async () => {
    c = await DaemonCluster.create(['n1', 'n2', 'n3'], 'postgres:\n  leaseMs: 1000\n');
    config = loadConfig(c.configPath);
    await c.startAll();
  });
  after(async () => c.destroy());

  async function primary(): Promise<string> {
    let p: string | null = null;
    await c.waitFor(
      async () => {
        try {
          const leader = await c.waitForLeader();
          const v = ((await c.get(leader, '/v1/status')).body as { postgres: PgView }).postgres;
          p = v.primary;
          if (p === null || v.nodes[p]?.reportedRole !== 'primary' || (v.lease?.renewalSeq ?? 0) < 1) return false;
          const rows = await query(
            p,
            'postgres',
            adminPassword(config),
            'postgres',
            "SELECT count(*)::int AS n FROM pg_stat_replication WHERE state = 'streaming' AND application_name <> 'ogel-wal-archive'",
          );
          return rows[0]?.n === 2;
        } catch {
          return false;
        }
      },
      'a writable primary with both standbys streaming',
      90_000,
    );
    return p!;
  }

  async function connect(node: string, user: string, password: string, database: string): Promise<pg.Client> {
    const client = new pg.Client({ host: '127.0.0.1', port: c.nodes.get(node)!.postgresPort, user, password, database, connectionTimeoutMillis: 5_000 });
    client.on('error', () => {});
    try {
      await client.connect();
    } catch (e) {
      await client.end().catch(() => {});
      throw e;
    }
    return client;
  }

  async function query(node: string, user: string, password: string, database: string, sql: string): Promise<Record<string, unknown>[]> {
    const client = await connect(node, user, password, database);
    try {
      return (await client.query(sql)).rows as Record<string, unknown>[];
    } finally {
      await client.end();
    }
  }

  async function connectError(node: string, user: string, password: string, database: string): Promise<{ code?: string; message: string }> {
    try {
      const client = await connect(node, user, password, database);
      await client.end();
    } catch (e) {
      return e as { code?: string; message: string };
    }
    assert.fail(`${user} could connect to database ${database}`);
  }

  it('creates the role and database; the role is confined to its own database and has no special powers', async () => {
    const p = await primary();
    const created = await c.cli(['tenants', 'create', 'acme', '--max-connections', '7', '--json']);
    assert.equal(created.code, 0, created.stderr);
    const body = JSON.parse(created.stdout) as { password: string; url: string };
    assert.match(body.url, /^postgresql:\/\/acme:.+@127\.0\.0\.1:\d+\/acme$/);
    const beta = await c.cli(['tenants', 'create', 'beta', '--json']);
    assert.equal(beta.code, 0, beta.stderr);

    // The command returned only after the provisioner made it: usable at once.
    const acmePw = tenantServerPassword(config, 'acme');
    const acme = await connect(p, 'acme', acmePw, 'acme');
    try {
      await acme.query('CREATE TABLE notes (id int PRIMARY KEY, body text)');
      await acme.query("INSERT INTO notes VALUES (1, 'hello')");
      assert.deepEqual((await acme.query('SELECT body FROM notes')).rows, [{ body: 'hello' }]);
      const me = (
        await acme.query('SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolconnlimit FROM pg_roles WHERE rolname = current_user')
      ).rows[0];
      assert.deepEqual(me, { rolsuper: false, rolcreatedb: false, rolcreaterole: false, rolreplication: false, rolbypassrls: false, rolconnlimit: 7 });
      assert.equal((await acme.query("SELECT current_setting('is_superuser') AS s")).rows[0].s, 'off');
      assert.equal((await acme.query('SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = current_database()')).rows[0].owner, 'acme');
      await assert.rejects(acme.query('CREATE DATABASE sneaky'), /permission denied/);
      await assert.rejects(acme.query('CREATE ROLE sneaky'), /permission denied/);
      await assert.rejects(acme.query('ALTER ROLE beta PASSWORD NULL'), /permission denied/);
    } finally {
      await acme.end();
    }

    // Another tenant's database is refused by Postgres itself, even with valid credentials.
    const toBeta = await connectError(p, 'acme', acmePw, 'beta');
    assert.equal(toBeta.code, '42501', toBeta.message);
    assert.match(toBeta.message, /permission denied for database "beta"/);
    const toAcme = await connectError(p, 'beta', tenantServerPassword(config, 'beta'), 'acme');
    assert.equal(toAcme.code, '42501', toAcme.message);
    // PUBLIC may not connect to a tenant database.
    const rows = await query(
      p,
      'postgres',
      adminPassword(config),
      'postgres',
      "SELECT has_database_privilege('public', 'acme', 'CONNECT') AS pub, has_database_privilege('beta', 'beta', 'CONNECT') AS own",
    );
    assert.deepEqual(rows, [{ pub: false, own: true }]);

    // The client's password (from the URL) is the proxy's business only: it does not open Postgres directly.
    const direct = await connectError(p, 'acme', body.password, 'acme');
    assert.equal(direct.code, '28P01', direct.message);

    // The role and database are replicated: a standby has them too.
    const standby = [...c.nodes.keys()].find((id) => id !== p)!;
    await c.waitFor(
      async () => {
        try {
          return (await query(standby, 'acme', acmePw, 'acme', 'SELECT count(*)::int AS n FROM notes'))[0]?.n === 1;
        } catch {
          return false;
        }
      },
      `standby ${standby} to serve acme's table`,
      15_000,
    );
  });

  it('through the proxy: the printed URL works as is, and no tenant reaches another', async () => {
    await primary();
    const created = await c.cli(['tenants', 'create', 'gamma', '--json']);
    assert.equal(created.code, 0, created.stderr);
    const { url, password } = JSON.parse(created.stdout) as { password: string; url: string };
    const other = await c.cli(['tenants', 'create', 'delta', '--password', 'delta-password-123', '--json']);
    assert.equal(other.code, 0, other.stderr);

    // The URL as printed (this node's proxy), then every node's proxy.
    for (const target of [url, ...[...c.nodes.values()].map((n) => `postgresql://gamma:${encodeURIComponent(password)}@127.0.0.1:${n.proxyPort}/gamma`)]) {
      const client = new pg.Client({ connectionString: target, connectionTimeoutMillis: 10_000 });
      await client.connect();
      try {
        await client.query('CREATE TABLE IF NOT EXISTS via_proxy (n int)');
        await client.query('INSERT INTO via_proxy VALUES (1)');
        assert.equal((await client.query('SELECT current_user AS u, current_database() AS d')).rows[0].u, 'gamma');
      } finally {
        await client.end();
      }
    }
    const port = c.nodes.get('n1')!.proxyPort;
    const attempt = async (user: string, pw: string, database: string, options?: string): Promise<{ code?: string; message: string }> => {
      const client = new pg.Client({ host: '127.0.0.1', port, user, password: pw, database, connectionTimeoutMillis: 10_000, ...(options ? { options } : {}) });
      client.on('error', () => {});
      try {
        await client.connect();
        await client.end();
        return { message: 'connected' };
      } catch (e) {
        return { code: (e as { code?: string }).code, message: (e as Error).message };
      }
    };
    // Wrong password, unknown tenant: the same answer (no tenant's existence leaks).
    const wrong = await attempt('gamma', 'not-the-password', 'gamma');
    assert.equal(wrong.code, '28P01', wrong.message);
    const unknown = await attempt('nosuch', 'whatever', 'nosuch');
    assert.equal(unknown.code, '28P01', unknown.message);
    assert.equal(unknown.message.replace('nosuch', 'X'), wrong.message.replace('gamma', 'X'));
    // Cross-tenant: by database name, by the other's user, by options tricks.
    const byName = await attempt('gamma', password, 'delta');
    assert.notEqual(byName.message, 'connected');
    const byUser = await attempt('delta', password, 'delta');
    assert.equal(byUser.code, '28P01', byUser.message);
    const byEndpoint = await attempt('gamma', password, 'gamma', 'endpoint=delta');
    assert.notEqual(byEndpoint.message, 'connected');
    const byGuc = await attempt('gamma', password, 'gamma', '-c role=delta');
    assert.notEqual(byGuc.message, 'connected');
    assert.equal((await attempt('delta', 'delta-password-123', 'delta')).message, 'connected');
  });

  it("a tenant's pool mode (tenants set-limits --pool-mode session) gives each client its own server connection for its session", async () => {
    await primary();
    const created = await c.cli(['tenants', 'create', 'pinned', '--pool-size', '1', '--pool-mode', 'session', '--json']);
    assert.equal(created.code, 0, created.stderr);
    const { password, tenant } = JSON.parse(created.stdout) as { password: string; tenant: { limits: { poolMode: string | null; poolSize: number } } };
    assert.deepEqual([tenant.limits.poolSize, tenant.limits.poolMode], [1, 'session']);
    const port = c.nodes.get('n1')!.proxyPort;
    const connect = async (options?: string) => {
      const client = new pg.Client({
        host: '127.0.0.1',
        port,
        user: 'pinned',
        password,
        database: 'pinned',
        connectionTimeoutMillis: 10_000,
        ...(options ? { options } : {}),
      });
      await client.connect();
      return client;
    };
    // Connected first: a login takes the pool's one server connection for a moment.
    const other = await connect('pool_mode=transaction');
    const s = await connect();
    try {
      await s.query('CREATE TEMPORARY TABLE mine (n int)');
      let answered = false;
      const waiting = other.query<{ temp: string | null }>(`SELECT to_regclass('pg_temp.mine')::text AS temp`).then((r) => {
        answered = true;
        return r;
      });
      for (let i = 0; i < 5; i++) await s.query('INSERT INTO mine VALUES ($1)', [i]);
      assert.equal(answered, false, "the session-mode client holds the tenant's only server connection");
      assert.equal((await s.query<{ n: number }>('SELECT count(*)::int AS n FROM mine')).rows[0]!.n, 5);
      await s.end();
      assert.equal((await waiting).rows[0]!.temp, null, 'the next client gets the connection, without the temporary table');
    } finally {
      await s.end().catch(() => {});
      await other.end();
    }
    const back = await c.cli(['tenants', 'set-limits', 'pinned', '--pool-mode', 'default', '--json']);
    assert.equal(back.code, 0, back.stderr);
    assert.equal((JSON.parse(back.stdout) as { tenant: { limits: { poolMode: string | null } } }).tenant.limits.poolMode, null);
  });

  it('read-only sessions (options=target_session_attrs=read-only) run on a standby within the lag bound, others on the primary', async () => {
    const p = await primary();
    const created = await c.cli(['tenants', 'create', 'epsilon', '--json']);
    assert.equal(created.code, 0, created.stderr);
    const { password } = JSON.parse(created.stdout) as { password: string };
    const postgresPorts = new Map([...c.nodes.values()].map((n) => [n.postgresPort, n.id]));
    const session = async (node: string, options?: string): Promise<pg.Client> => {
      const client = new pg.Client({
        host: '127.0.0.1',
        port: c.nodes.get(node)!.proxyPort,
        user: 'epsilon',
        password,
        database: 'epsilon',
        connectionTimeoutMillis: 10_000,
        ...(options ? { options } : {}),
      });
      client.on('error', () => {});
      await client.connect();
      return client;
    };
    const writer = await session(p);
    try {
      await writer.query('CREATE TABLE marks (n int)');
      await writer.query('INSERT INTO marks VALUES (1)');
      assert.deepEqual((await writer.query('SELECT pg_is_in_recovery() AS r')).rows, [{ r: false }]);
    } finally {
      await writer.end();
    }
    for (const n of c.nodes.values()) {
      // A standby qualifies once its reported replay position is within proxy.maxReplicaLagBytes.
      let where: { r: boolean; port: number; n: number } | undefined;
      let lastError = '';
      await c
        .waitFor(
          async () => {
            const ro = await session(n.id, 'target_session_attrs=read-only').catch((e: Error) => {
              lastError = e.message;
              return null;
            });
            if (ro === null) return false;
            try {
              where = (
                await ro.query<{ r: boolean; port: number; n: number }>(
                  'SELECT pg_is_in_recovery() AS r, inet_server_port() AS port, (SELECT count(*)::int FROM marks) AS n',
                )
              ).rows[0];
              // Through a standby's own proxy, once its standby qualifies, the read stays on that node.
              return where?.r === true && where.n === 1 && (n.id === p || where.port === n.postgresPort);
            } catch (e) {
              lastError = (e as Error).message;
              return false;
            } finally {
              await ro.end();
            }
          },
          `a read-only session through ${n.id}'s proxy on a standby that has the row${n.id === p ? '' : ` (${n.id}'s own)`}`,
          30_000,
        )
        .catch(async (e: Error) => {
          const st = await c.get(n.id, '/v1/status?stale=true');
          throw new Error(
            `${e.message}; the last session ran ${JSON.stringify(where)}${lastError ? `, last error: ${lastError}` : ''}; status: ${JSON.stringify((st.body as { postgres?: unknown }).postgres)}`,
          );
        });
      const ranOn = postgresPorts.get(where!.port);
      assert.ok(ranOn !== undefined && ranOn !== p, `ran on ${ranOn}, a standby, not the primary ${p}`);
      // A new session may land on the other standby, which the (reported, up to a
      // second old) lag lets qualify before it has replayed the tenant's database
      // or table: retry those, and require the read-only refusal.
      await c.waitFor(
        async () => {
          // The refusal may come at login already (the proxy logs in to that standby then).
          const ro = await session(n.id, 'target_session_attrs=read-only').catch((e: { code?: string }) => {
            if (e.code === '3D000' || e.code === '42P01') return null;
            throw e;
          });
          if (ro === null) return false;
          try {
            await ro.query('INSERT INTO marks VALUES (2)');
          } catch (e) {
            const code = (e as { code?: string }).code;
            if (code === '25006') return true;
            if (code === '3D000' || code === '42P01') return false; // that standby has not replayed it yet
            throw e;
          } finally {
            // After the proxy's FATAL, end() rejects with that same error: the session is over either way.
            await ro.end().catch(() => {});
          }
          throw new Error(`a write through ${n.id}'s proxy on a read-only session succeeded`);
        },
        `a write on a read-only session through ${n.id}'s proxy refused with 25006`,
        15_000,
      );
    }
    // ogel pools on the primary's node: the writer's pool on the primary, and the read pools on the standbys.
    const pools = await c.cli(['pools', '--api', `http://127.0.0.1:${c.nodes.get(p)!.apiPort}`]);
    assert.equal(pools.code, 0, pools.stderr);
    assert.match(pools.stdout, new RegExp(`^\\| epsilon +\\| epsilon +\\| ${p} \\(primary\\) +\\|`, 'm'));
    assert.match(pools.stdout, /^\| epsilon +\| epsilon +\| n\d +\|/m, 'a read pool on a standby');
    // A pool size set through the API (tenant.setLimits through Raft) reaches the running proxy's pool.
    const set = await c.cli(['tenants', 'set-limits', 'epsilon', '--pool-size', '3', '--json']);
    assert.equal(set.code, 0, set.stderr);
    assert.equal((JSON.parse(set.stdout) as { tenant: { limits: { poolSize: number } } }).tenant.limits.poolSize, 3);
    const poolSizeOnPrimary = async () => {
      const r = await c.cli(['pools', '--json', '--api', `http://127.0.0.1:${c.nodes.get(p)!.apiPort}`]);
      return (JSON.parse(r.stdout) as { pools: { database: string; primary: boolean; size: number }[] }).pools.find(
        (x) => x.database === 'epsilon' && x.primary,
      )?.size;
    };
    // A connected client of the tenant (the proxy follows the limits of tenants it serves).
    const client = await session(p);
    try {
      await client.query('SELECT 1');
      await c.waitFor(async () => (await poolSizeOnPrimary()) === 3, "the primary's epsilon pool resized to 3", 15_000);
    } finally {
      await client.end();
    }
  });

  it('delete drops the database and role (ending their sessions) and purges the record; the name can be reused, fresh', async () => {
    const p = await primary();
    const acmePw = tenantServerPassword(config, 'acme');
    const session = await connect(p, 'acme', acmePw, 'acme');
    const ended = new Promise<void>((r) => session.once('end', () => r()));
    const del = await c.cli(['tenants', 'delete', 'acme', '--yes']);
    assert.equal(del.code, 0, del.stderr);
    await ended; // the open session was terminated by the drop
    const admin = adminPassword(config);
    assert.deepEqual(await query(p, 'postgres', admin, 'postgres', "SELECT datname FROM pg_database WHERE datname = 'acme'"), []);
    assert.deepEqual(await query(p, 'postgres', admin, 'postgres', "SELECT rolname FROM pg_roles WHERE rolname = 'acme'"), []);
    const err = await connectError(p, 'acme', acmePw, 'acme');
    assert.equal(err.code, '28P01', err.message);
    const list = await c.cli(['tenants', 'list', '--json']);
    assert.doesNotMatch(list.stdout, /"acme"/);
    // beta is untouched.
    assert.deepEqual(await query(p, 'beta', tenantServerPassword(config, 'beta'), 'beta', 'SELECT 1 AS one'), [{ one: 1 }]);

    const again = await c.cli(['tenants', 'create', 'acme', '--json']);
    assert.equal(again.code, 0, again.stderr);
    const tables = await query(p, 'acme', acmePw, 'acme', "SELECT count(*)::int AS n FROM pg_tables WHERE tablename = 'notes'");
    assert.deepEqual(tables, [{ n: 0 }], 'a new tenant of the same name starts empty');
  });
  it("a tenant that cannot be provisioned (the cluster's own replication role) is refused and undone, touching nothing", async () => {
    const p = await primary();
    const r = await c.cli(['tenants', 'create', 'ogel_replication']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /tenant 'ogel_replication' was not created: role "ogel_replication" belongs to the cluster itself/);
    await c.waitFor(async () => !(await c.cli(['tenants', 'list', '--json'])).stdout.includes('"ogel_replication"'), 'the undone tenant to be purged', 15_000);
    const rows = await query(
      p,
      'postgres',
      adminPassword(config),
      'postgres',
      "SELECT rolreplication, rolcanlogin FROM pg_roles WHERE rolname = 'ogel_replication'",
    );
    assert.deepEqual(rows, [{ rolreplication: true, rolcanlogin: true }]);
    await primary(); // both standbys still streaming
  });
});
