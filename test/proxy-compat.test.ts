// Client compatibility: the same scenario through node-postgres, postgres.js
// (porsager: pipelines, prepares every query by default) and Kysely (a query
// builder on node-postgres's pool), run directly against Postgres and through
// the proxy in both pooling modes; each client's answers through the proxy must
// equal its answers directly.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Kysely, PostgresDialect, sql as ksql } from 'kysely';
import pg from 'pg';
import postgres from 'postgres';
import { makeAppPostgres, SERVER_PASSWORD, startProxy, TENANT, type ProxyFixture } from './helpers/proxy.js';
import type { TempPrimary } from './helpers/postgres.js';

interface Target {
  name: string;
  config: { host: string; port: number; user: string; password: string; database: string };
}

/** node-postgres: simple and extended queries, a named statement, a rolled-back transaction, an error and what follows. */
async function withNodePostgres(t: Target, table: string): Promise<unknown[]> {
  const c = new pg.Client(t.config);
  await c.connect();
  try {
    const out: unknown[] = [];
    await c.query(`CREATE TABLE ${table} (id int PRIMARY KEY, v text)`);
    out.push((await c.query(`INSERT INTO ${table} SELECT g, 'v' || g FROM generate_series(1, 5) g`)).rowCount);
    out.push((await c.query(`SELECT v FROM ${table} WHERE id = $1`, [3])).rows);
    out.push((await c.query({ name: `by-id-${table}`, text: `SELECT id, v FROM ${table} WHERE id > $1 ORDER BY id`, values: [3] })).rows);
    out.push((await c.query({ name: `by-id-${table}`, text: `SELECT id, v FROM ${table} WHERE id > $1 ORDER BY id`, values: [4] })).rows);
    await c.query('BEGIN');
    await c.query(`DELETE FROM ${table}`);
    await c.query('ROLLBACK');
    out.push((await c.query(`SELECT count(*)::int AS n FROM ${table}`)).rows);
    const e = await c.query(`INSERT INTO ${table} VALUES (1, 'dup')`).then(
      () => null,
      (err: { code?: string }) => err.code,
    );
    out.push(e);
    out.push((await c.query(`SELECT sum(id)::int AS s FROM ${table}`)).rows);
    await c.query(`DROP TABLE ${table}`);
    return out;
  } finally {
    await c.end();
  }
}

/** postgres.js: tagged templates (prepared), pipelined queries on one connection, a transaction, an error. */
async function withPostgresJs(t: Target, table: string): Promise<unknown[]> {
  const sql = postgres({ ...t.config, pass: t.config.password, max: 1, onnotice: () => {} });
  try {
    const out: unknown[] = [];
    await sql`CREATE TABLE ${sql(table)} (id int PRIMARY KEY, v text)`;
    await sql`INSERT INTO ${sql(table)} ${sql([1, 2, 3, 4, 5].map((id) => ({ id, v: `v${id}` })))}`;
    // Pipelined: several queries in flight on one connection.
    out.push(await Promise.all([1, 2, 3, 4, 5].map(async (id) => [...(await sql`SELECT v FROM ${sql(table)} WHERE id = ${id}`)])));
    out.push(
      await sql.begin(async (tx) => {
        await tx`UPDATE ${sql(table)} SET v = 'changed' WHERE id = 1`;
        return [...(await tx`SELECT v FROM ${sql(table)} WHERE id = 1`)];
      }),
    );
    const e = await sql`INSERT INTO ${sql(table)} VALUES (2, 'dup')`.then(
      () => null,
      (err: { code?: string }) => err.code,
    );
    out.push(e);
    out.push([...(await sql`SELECT count(*)::int AS n, min(v) AS m FROM ${sql(table)}`)]);
    await sql`DROP TABLE ${sql(table)}`;
    return out;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

interface Row {
  id: number;
  v: string;
}

/** Kysely on a node-postgres pool: schema, inserts, a typed select, a transaction. */
async function withKysely(t: Target, table: string): Promise<unknown[]> {
  const db = new Kysely<Record<string, Row>>({ dialect: new PostgresDialect({ pool: new pg.Pool({ ...t.config, max: 2 }) }) });
  try {
    const out: unknown[] = [];
    await db.schema
      .createTable(table)
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('v', 'text')
      .execute();
    await db
      .insertInto(table)
      .values([1, 2, 3].map((id) => ({ id, v: `k${id}` })))
      .execute();
    out.push(await db.selectFrom(table).select(['id', 'v']).where('id', '>=', 2).orderBy('id').execute());
    await db.transaction().execute(async (trx) => {
      await trx.updateTable(table).set({ v: 'in-tx' }).where('id', '=', 3).execute();
    });
    out.push(await db.selectFrom(table).select('v').where('id', '=', 3).execute());
    out.push((await ksql<{ n: number }>`SELECT count(*)::int AS n FROM ${ksql.table(table)}`.execute(db)).rows);
    await db.schema.dropTable(table).execute();
    return out;
  } finally {
    await db.destroy();
  }
}

describe('client compatibility: node-postgres, postgres.js and Kysely through the proxy, as directly', { timeout: 120_000 }, () => {
  let pgsrv: TempPrimary;
  let tx: ProxyFixture;
  let session: ProxyFixture;

  before(async () => {
    pgsrv = await makeAppPostgres();
    tx = await startProxy({ pg: pgsrv, pool: { mode: 'transaction', defaultPoolSize: 2 } });
    session = await startProxy({ pg: pgsrv, pool: { mode: 'session', defaultPoolSize: 4 } });
  });
  after(async () => {
    await tx?.cleanup();
    await session?.cleanup();
    await pgsrv?.cleanup();
  });

  const targets = (): Target[] => [
    { name: 'direct', config: { host: '127.0.0.1', port: pgsrv.port, user: TENANT, password: SERVER_PASSWORD, database: TENANT } },
    { name: 'proxy (transaction mode)', config: tx.clientConfig() },
    { name: 'proxy (session mode)', config: session.clientConfig() },
  ];

  for (const [client, run] of [
    ['node-postgres', withNodePostgres],
    ['postgres.js', withPostgresJs],
    ['Kysely', withKysely],
  ] as const) {
    it(`${client}: the same answers through the proxy in both pooling modes as directly`, async () => {
      const [direct, ...proxied] = targets();
      const want = await run(direct!, `compat_${client.replace(/\W/g, '_').toLowerCase()}_direct`);
      for (const [i, t] of proxied.entries()) {
        const got = await run(t, `compat_${client.replace(/\W/g, '_').toLowerCase()}_${i}`);
        assert.deepEqual(got, want, `${client} through the ${t.name}`);
      }
    });
  }
});
