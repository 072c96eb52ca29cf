// The Postgres view of a DaemonCluster, and "healthy": a writable primary (its
// lease renewed, /primary answers 200) with both other nodes streaming from it
// and none fenced or re-cloning. Shared by the integration tests that change roles.

import pg from 'pg';
import type { DaemonCluster } from './daemons.js';

export interface PgNodeView {
  role: string;
  reportedRole: string;
  timeline: number;
}

export interface PgView {
  primary: string | null;
  generation: number;
  lease: { holder: string; renewalSeq: number } | null;
  nodes: Record<string, PgNodeView>;
}

/** The leader's /v1/status, postgres part (T: a richer view the caller expects). */
export async function pgView<T extends PgView = PgView>(c: DaemonCluster): Promise<T> {
  const leader = await c.waitForLeader();
  const r = await c.get(leader, '/v1/status');
  if (r.status !== 200) throw new Error(`GET /v1/status on ${leader}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
  return (r.body as { postgres: T }).postgres;
}

/** How many standbys stream from `primary` (its pg_stat_replication), as the admin user. */
export async function streamingStandbys(c: DaemonCluster, primary: string, password: string): Promise<number> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port: c.nodes.get(primary)!.postgresPort,
    user: 'postgres',
    password,
    database: 'postgres',
    connectionTimeoutMillis: 5_000,
  });
  client.on('error', () => {});
  await client.connect();
  try {
    const r = await client.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_replication WHERE state = 'streaming' AND application_name <> 'ogel-wal-archive'",
    );
    return r.rows[0]?.n ?? 0;
  } finally {
    await client.end();
  }
}

/** Until the cluster is healthy (see above); returns the view. */
export async function waitHealthy<T extends PgView = PgView>(c: DaemonCluster, password: string, what: string, timeoutMs = 60_000): Promise<T> {
  let v: T | undefined;
  await c.waitFor(
    async () => {
      try {
        v = await pgView<T>(c);
        const p = v.primary;
        if (p === null || v.nodes[p]?.reportedRole !== 'primary' || (v.lease?.renewalSeq ?? 0) < 1) return false;
        if ((await c.get(p, '/primary', null)).status !== 200) return false;
        const others = Object.keys(v.nodes).length - 1;
        return (await streamingStandbys(c, p, password)) === others && Object.values(v.nodes).every((n) => n.role !== 'recloning' && n.role !== 'fenced');
      } catch {
        return false;
      }
    },
    what,
    timeoutMs,
  );
  return v!;
}
