// Makes every tenant's role and database exist on the primary's Postgres as the
// state machine says, on the leader (docs/proxy.md, "Authentication"): `ogel
// tenants create` records a tenant; this creates its role (LOGIN, the derived
// server password, no special powers, its connection limit) and its database
// (owned by the role, CONNECT revoked from PUBLIC), and drops both once the
// tenant is deleted, then purges the record. Level-triggered and idempotent:
// each pass reads the catalogs, plans (tenant-plan.ts) and acts on the
// difference, so a crash half-way is finished by the next pass or leader.
//
// It acts only on a writable primary (reported primary, current lease with a
// committed renewal), over TCP as the superuser with the admin password, like
// any client: a fenced node refuses it at pg_hba.conf, so a stale view fails
// closed.

import { createHash, createHmac, pbkdf2 } from 'node:crypto';
import { promisify } from 'node:util';
import pg from 'pg';
import type { ApplyOk, ClusterState, ClusterStateMachine, Command, TenantId } from '../../fsm/index.js';
import { formatPostgresVerifier, SCRAM_ITERATIONS_DEFAULT } from '../auth/scram.js';
import type { Config } from '../config/index.js';
import { parseHostPort } from '../config/address.js';
import { DEFAULT_DATABASE, quoteIdent, quoteLiteral, sqlState, SUPERUSER } from '../postgres/query.js';
import { sleep, type Controller, type ControllerContext } from './manager.js';
import {
  parseTenantTag,
  planProvisioning,
  tenantTag,
  type Observed,
  type ObservedDatabase,
  type ObservedRole,
  type ProvisionAction,
  type ProvisionPlan,
  type WantedTenant,
} from './tenant-plan.js';
import { adminPassword, tenantServerPassword } from '../auth/passwords.js';

/** Idle passes: a cheap read of two catalogs. Changes come through poke() at once. */
const INTERVAL_MS = 2_000;
const CONNECT_TIMEOUT_MS = 5_000;
/** Bound on one statement (CREATE DATABASE copies template0: well under a second here). */
const STATEMENT_TIMEOUT_MS = 30_000;
/**
 * Bound on one action including its commit: a commit waiting for a synchronous
 * standby ignores statement_timeout, so the connection is dropped instead.
 */
const ACTION_TIMEOUT_MS = 45_000;
/** Rounds of act-then-recheck per pass, so one pass usually ends with everything done. */
const ROUNDS_PER_PASS_MAX = 3;
const WAITERS_MAX = 1_000;
const APPLICATION_NAME = 'ogel-tenant-provisioner';
/** Verifiers computed at once (the libuv pool has 4 threads by default). */
const VERIFIER_BATCH = 16;
/** Bound on the verifier cache: twice LIMITS.tenants. */
const VERIFIERS_MAX = 20_000;
const pbkdf2Async = promisify(pbkdf2);

/**
 * The Postgres-format SCRAM verifier of a tenant role's server password, with a
 * salt derived from the cluster secret: the same on every pass and node, so
 * whether the role's password is right is a string compare with rolpassword.
 * (auth/scram.ts's makeScramVerifier, computed off the event loop; the derived
 * password is base64url, which SASLprep leaves as is.)
 */
export async function tenantRoleVerifier(config: Pick<Config, 'cluster'>, role: string): Promise<string> {
  const salt = createHmac('sha256', config.cluster.secret).update(`ogel-tenant-salt:${role}`).digest().subarray(0, 16);
  const iterations = SCRAM_ITERATIONS_DEFAULT;
  const salted = await pbkdf2Async(tenantServerPassword(config, role), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  return formatPostgresVerifier({
    iterations,
    salt: salt.toString('base64'),
    storedKey: createHash('sha256').update(clientKey).digest('base64'),
    serverKey: createHmac('sha256', salted).update('Server Key').digest('base64'),
  });
}

export type ProvisionStatus =
  | { state: 'provisioned' }
  /** An operator must act (e.g. a role of that name exists and is not ogel's). */
  | { state: 'failed'; reason: string }
  | { state: 'pending'; reason: string };

/** The SQL connection the provisioner needs (a pg.Client; a fake in tests). */
export interface SqlClient {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>>;
  end(): Promise<void>;
}

export interface PrimaryTarget {
  node: string;
  generation: number;
  host: string;
  port: number;
}

export interface TenantProvisionerOptions {
  /** Brings the local state machine up to the leader's commit (a ReadIndex) before anything is dropped. */
  syncState: () => Promise<void>;
  /** Opens a superuser connection to `database` on the primary (default: pg over TCP with the admin password). */
  connect?: (target: PrimaryTarget, database: string) => Promise<SqlClient>;
  intervalMs?: number;
}

interface Waiter {
  done: () => boolean;
  finish: () => void;
}

/** The primary the provisioner may act on, or why there is none. */
export function writablePrimary(s: ClusterState): PrimaryTarget | string {
  const pgs = s.postgres;
  if (pgs.primary === null) return 'there is no primary';
  const node = pgs.nodes.get(pgs.primary);
  if (node?.reportedRole !== 'primary') return `primary ${pgs.primary} has not reported itself primary yet`;
  const lease = pgs.lease;
  if (lease === null || lease.holder !== pgs.primary || lease.generation !== pgs.generation || lease.renewalSeq < 1) {
    return `primary ${pgs.primary} has no renewed lease yet (not writable)`;
  }
  const addr = s.members.get(pgs.primary)?.addresses.postgres;
  const hp = addr === undefined ? undefined : parseHostPort(addr);
  if (hp === undefined || !hp.ok) return `primary ${pgs.primary} has no usable postgres address (${JSON.stringify(addr)})`;
  return { node: pgs.primary, generation: pgs.generation, host: hp.host, port: hp.port };
}

export class TenantProvisioner implements Controller {
  readonly name = 'tenant-provisioner';
  private readonly statuses = new Map<TenantId, ProvisionStatus>();
  /** Last error per tenant (and '' for the pass), so a repeating failure is logged once. */
  private readonly lastLogged = new Map<string, string>();
  private readonly verifiers = new Map<string, string>();
  private waiters: Waiter[] = [];
  private wake: (() => void) | undefined;
  private woken = false;
  private client: { key: string; client: SqlClient } | undefined;
  private passReason = 'the provisioner has not run yet (not the leader?)';

  constructor(
    private readonly config: Config,
    private readonly fsm: ClusterStateMachine,
    private readonly propose: (cmd: Command) => Promise<ApplyOk>,
    private readonly opts: TenantProvisionerOptions,
  ) {}

  /** Run a pass now (a tenant was created or deleted, or the primary changed). */
  poke(): void {
    this.woken = true;
    this.wake?.();
  }

  /** The last pass's verdict on a live tenant. */
  status(id: TenantId): ProvisionStatus {
    const t = this.fsm.state.tenants.get(id);
    if (t === undefined) return { state: 'failed', reason: 'no such tenant' };
    if (t.state === 'deleted') return { state: 'pending', reason: 'the tenant is deleted' };
    return this.statuses.get(id) ?? { state: 'pending', reason: this.passReason };
  }

  /** Resolves with the tenant's status once it is provisioned or failed, or after timeoutMs with why it is still pending. */
  async waitProvisioned(id: TenantId, timeoutMs: number): Promise<ProvisionStatus> {
    this.poke();
    await this.waitUntil(() => this.status(id).state !== 'pending', timeoutMs);
    return this.status(id);
  }

  /** Resolves true once a deleted tenant's role and database are dropped and its record purged; false after timeoutMs. */
  async waitPurged(id: TenantId, timeoutMs: number): Promise<boolean> {
    this.poke();
    await this.waitUntil(() => !this.fsm.state.tenants.has(id), timeoutMs);
    return !this.fsm.state.tenants.has(id);
  }

  async run(ctx: ControllerContext): Promise<void> {
    try {
      while (!ctx.signal.aborted) {
        this.woken = false;
        await this.pass(ctx);
        this.notifyWaiters();
        if (!this.woken) await this.idle(ctx.signal);
      }
    } finally {
      await this.closeClient();
      this.statuses.clear();
      this.passReason = 'leadership moved: the new leader provisions tenants';
      this.notifyWaiters(true);
    }
  }

  // --- one pass ---------------------------------------------------------------------

  private async pass(ctx: ControllerContext): Promise<void> {
    if (this.fsm.state.tenants.size === 0) {
      // Nothing to keep (marks of purged tenants are cleared only when a tenant needs the name).
      await this.closeClient();
      return;
    }
    const target = writablePrimary(this.fsm.state);
    if (typeof target === 'string') {
      this.setPassReason(ctx, `waiting for a writable primary: ${target}`);
      await this.closeClient();
      return;
    }
    try {
      for (let round = 0; round < ROUNDS_PER_PASS_MAX && !ctx.signal.aborted; round++) {
        const client = await this.clientFor(target);
        let plan = await this.plan(client);
        if (plan.actions.some(isDestructive)) {
          // Drops act on "deleted" and "unknown" ids: be sure they are not merely not applied here yet.
          await this.opts.syncState();
          plan = await this.plan(client);
        }
        this.record(ctx, plan);
        if (plan.actions.length === 0) break;
        for (const a of plan.actions) {
          if (ctx.signal.aborted) return;
          await this.act(ctx, client, target, a);
        }
      }
      this.setPassReason(ctx, 'in progress');
    } catch (e) {
      // The connection or the primary failed: start over with a new connection next pass.
      await this.closeClient();
      if (!ctx.signal.aborted)
        this.setPassReason(ctx, `a pass against the primary ${target.node} (${target.host}:${target.port}) failed: ${(e as Error).message}`);
    }
  }

  private async plan(client: SqlClient): Promise<ProvisionPlan> {
    const s = this.fsm.state;
    await this.ensureVerifiers(s);
    return planProvisioning(s.tenants, await inspect(client, s), (role) => this.verifierFor(role));
  }

  private record(ctx: ControllerContext, plan: ProvisionPlan): void {
    for (const [id, t] of this.fsm.state.tenants) {
      if (t.state === 'deleted') continue;
      const conflict = plan.conflicts.get(id);
      if (conflict !== undefined) {
        this.statuses.set(id, { state: 'failed', reason: conflict });
        this.logOnce(ctx, id, 'error', `tenant ${t.name} cannot be provisioned: ${conflict}`, { tenant: t.name, id });
      } else if (plan.done.has(id)) {
        if (this.statuses.get(id)?.state !== 'provisioned') ctx.log({ level: 'info', msg: 'tenant provisioned on the primary', tenant: t.name, id });
        this.statuses.set(id, { state: 'provisioned' });
        this.lastLogged.delete(id);
      } else if (this.statuses.get(id)?.state !== 'pending') {
        this.statuses.set(id, { state: 'pending', reason: 'creating its role and database' });
      }
    }
    for (const id of [...this.statuses.keys()]) {
      const t = this.fsm.state.tenants.get(id);
      if (t === undefined || t.state === 'deleted') this.statuses.delete(id);
    }
  }

  private async act(ctx: ControllerContext, client: SqlClient, target: PrimaryTarget, a: ProvisionAction): Promise<void> {
    const id = 'tenant' in a ? a.tenant.id : a.tenantId;
    try {
      await withTimeout(this.execute(client, target, a), ACTION_TIMEOUT_MS, `${a.kind} took longer than ${ACTION_TIMEOUT_MS} ms`);
      ctx.log({ level: 'info', msg: `tenant provisioner: ${describe(a)}`, action: a.kind, id });
    } catch (e) {
      const msg = `${describe(a)} failed: ${(e as Error).message}`;
      const live = this.fsm.state.tenants.get(id);
      if (live !== undefined && live.state !== 'deleted') this.statuses.set(id, { state: 'pending', reason: msg });
      this.logOnce(ctx, id, 'warn', `tenant provisioner: ${msg}`, { action: a.kind, id, sqlState: sqlState(e) });
      // Not an SQL error (a purge's rejection aside): the connection is suspect, start over.
      if (sqlState(e) === undefined && a.kind !== 'purge') throw e;
    }
  }

  private async execute(client: SqlClient, target: PrimaryTarget, a: ProvisionAction): Promise<void> {
    switch (a.kind) {
      case 'dropDatabase':
        // WITH (FORCE) ends the sessions still using it (PG 13+).
        await client.query(`DROP DATABASE IF EXISTS ${quoteIdent(a.database)} WITH (FORCE)`);
        return;
      case 'dropRole':
        await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [a.role]);
        // Revokes what it was granted on shared objects (other databases' CONNECT);
        // its own database is gone (dropped first), so it owns nothing else.
        await client.query(`DROP OWNED BY ${quoteIdent(a.role)}`);
        await client.query(`DROP ROLE IF EXISTS ${quoteIdent(a.role)}`);
        return;
      case 'createRole':
        // One transaction: a role exists only with its mark, so an unmarked role is never ours.
        await client.query(
          [
            'BEGIN',
            `CREATE ROLE ${quoteIdent(a.tenant.role)} WITH ${roleOptions(a.tenant)}`,
            `COMMENT ON ROLE ${quoteIdent(a.tenant.role)} IS ${quoteLiteral(tenantTag(a.tenant.id))}`,
            'COMMIT',
          ].join(';\n'),
        );
        return;
      case 'alterRole':
        await client.query(`ALTER ROLE ${quoteIdent(a.tenant.role)} WITH ${roleOptions(a.tenant)}`);
        return;
      case 'createDatabase':
        // template0: a pristine database, nothing an operator added to template1.
        // Cannot run in a transaction block, hence the mark comes last (finishDatabase).
        await client.query(`CREATE DATABASE ${quoteIdent(a.tenant.database)} OWNER ${quoteIdent(a.tenant.role)} TEMPLATE template0`);
        await this.finishDatabase(client, target, a.tenant);
        return;
      case 'finishDatabase':
        await this.finishDatabase(client, target, a.tenant);
        return;
      case 'purge':
        await this.propose({ v: 1, type: 'tenant.purge', id: a.tenantId, atMs: Date.now() });
        return;
    }
  }

  /** Ownership and privileges of a tenant's database; the mark last, once it is complete. */
  private async finishDatabase(client: SqlClient, target: PrimaryTarget, t: WantedTenant): Promise<void> {
    const db = quoteIdent(t.database);
    const role = quoteIdent(t.role);
    const inDb = await this.connect(target, t.database);
    try {
      const hasPublic = (await inDb.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'public'`)).rows[0]?.n === 1;
      // The schema too is the tenant's alone (PG 15+ already gives PUBLIC no CREATE there).
      if (hasPublic) await inDb.query(`ALTER SCHEMA public OWNER TO ${role};\nREVOKE ALL ON SCHEMA public FROM PUBLIC`);
    } finally {
      await inDb.end().catch(() => {});
    }
    await client.query(
      [
        `ALTER DATABASE ${db} OWNER TO ${role}`,
        // Only its role may connect: another tenant's role, even with its own
        // valid credentials, is refused by Postgres itself.
        `REVOKE ALL ON DATABASE ${db} FROM PUBLIC`,
        `GRANT CONNECT, TEMPORARY ON DATABASE ${db} TO ${role}`,
        `COMMENT ON DATABASE ${db} IS ${quoteLiteral(tenantTag(t.id))}`,
      ].join(';\n'),
    );
  }

  // --- helpers ----------------------------------------------------------------------

  /** The stored verifier of a role's server password (computed by ensureVerifiers). */
  private verifierFor(role: string): string {
    const v = this.verifiers.get(role);
    // ensureVerifiers ran for every live tenant of this state just before planning.
    if (v === undefined) throw new Error(`programmer error: no verifier computed for role ${JSON.stringify(role)}`);
    return v;
  }

  /**
   * Computes the verifiers of live tenants' roles not computed yet. PBKDF2 runs
   * on the libuv pool, not the event loop: thousands of tenants at a new
   * leader's first pass must not stall Raft's heartbeats.
   */
  private async ensureVerifiers(s: ClusterState): Promise<void> {
    const missing = [...new Set([...s.tenants.values()].filter((t) => t.state !== 'deleted' && !this.verifiers.has(t.role)).map((t) => t.role))];
    if (this.verifiers.size + missing.length > VERIFIERS_MAX) this.verifiers.clear();
    for (let i = 0; i < missing.length; i += VERIFIER_BATCH) {
      const batch = missing.slice(i, i + VERIFIER_BATCH);
      const vs = await Promise.all(batch.map((role) => tenantRoleVerifier(this.config, role)));
      batch.forEach((role, j) => {
        this.verifiers.set(role, vs[j]!);
      });
    }
  }

  private async clientFor(target: PrimaryTarget): Promise<SqlClient> {
    const key = `${target.node}/${target.generation}/${target.host}:${target.port}`;
    if (this.client?.key === key) return this.client.client;
    await this.closeClient();
    const client = await this.connect(target, DEFAULT_DATABASE);
    this.client = { key, client };
    return client;
  }

  private connect(target: PrimaryTarget, database: string): Promise<SqlClient> {
    return this.opts.connect ? this.opts.connect(target, database) : connectPrimary(this.config, target, database);
  }

  private async closeClient(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    await c?.client.end().catch(() => {});
  }

  private setPassReason(ctx: ControllerContext, reason: string): void {
    this.passReason = reason;
    for (const [id, st] of this.statuses) if (st.state === 'pending' && reason !== 'in progress') this.statuses.set(id, { state: 'pending', reason });
    if (reason !== 'in progress') this.logOnce(ctx, '', 'info', `tenant provisioner: ${reason}`, {});
    else this.lastLogged.delete('');
  }

  private logOnce(ctx: ControllerContext, key: string, level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown>): void {
    if (this.lastLogged.get(key) === msg) return;
    if (this.lastLogged.size >= WAITERS_MAX) this.lastLogged.clear();
    this.lastLogged.set(key, msg);
    ctx.log({ level, msg, ...fields });
  }

  private idle(signal: AbortSignal): Promise<void> {
    const intervalMs = this.opts.intervalMs ?? INTERVAL_MS;
    const wakeSignal = new AbortController();
    this.wake = () => wakeSignal.abort();
    const onAbort = () => wakeSignal.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    return sleep(intervalMs, wakeSignal.signal).finally(() => {
      signal.removeEventListener('abort', onAbort);
      this.wake = undefined;
    });
  }

  private waitUntil(done: () => boolean, timeoutMs: number): Promise<void> {
    if (done()) return Promise.resolve();
    if (this.waiters.length >= WAITERS_MAX) return Promise.resolve(); // the caller reports "pending"
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish(), timeoutMs);
      const w: Waiter = { done, finish: () => finish() };
      const finish = () => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((x) => x !== w);
        resolve();
      };
      this.waiters.push(w);
    });
  }

  private notifyWaiters(all = false): void {
    for (const w of [...this.waiters]) if (all || w.done()) w.finish();
  }
}

function isDestructive(a: ProvisionAction): boolean {
  return a.kind === 'dropDatabase' || a.kind === 'dropRole' || a.kind === 'purge';
}

function roleOptions(t: WantedTenant): string {
  const limit = Math.trunc(t.connLimit);
  return `LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS CONNECTION LIMIT ${limit} PASSWORD ${quoteLiteral(t.passwordVerifier)}`;
}

function describe(a: ProvisionAction): string {
  switch (a.kind) {
    case 'dropDatabase':
      return `drop database ${a.database} (${a.why})`;
    case 'dropRole':
      return `drop role ${a.role} (${a.why})`;
    case 'createRole':
      return `create role ${a.tenant.role} for tenant ${a.tenant.name}`;
    case 'alterRole':
      return `repair role ${a.tenant.role} of tenant ${a.tenant.name} (${a.why})`;
    case 'createDatabase':
      return `create database ${a.tenant.database} for tenant ${a.tenant.name}`;
    case 'finishDatabase':
      return `repair database ${a.tenant.database} of tenant ${a.tenant.name} (${a.why})`;
    case 'purge':
      return `purge the record of deleted tenant ${a.name}`;
  }
}

/** The catalogs the plan needs: roles and databases by the wanted names, and everything ogel marked. */
async function inspect(client: SqlClient, s: ClusterState): Promise<Observed> {
  const roleNames = [...new Set([...s.tenants.values()].map((t) => t.role))];
  const dbNames = [...new Set([...s.tenants.values()].map((t) => t.database))];
  const roles = await client.query<{
    name: string;
    login: boolean;
    superuser: boolean;
    createdb: boolean;
    createrole: boolean;
    replication: boolean;
    bypassrls: boolean;
    conn_limit: number;
    password: string | null;
    comment: string | null;
  }>(
    `SELECT r.rolname AS name, r.rolcanlogin AS login, r.rolsuper AS superuser, r.rolcreatedb AS createdb, r.rolcreaterole AS createrole,
            r.rolreplication AS replication, r.rolbypassrls AS bypassrls, r.rolconnlimit AS conn_limit, r.rolpassword AS password,
            shobj_description(r.oid, 'pg_authid') AS comment
       FROM pg_authid r
      WHERE r.rolname = ANY($1::text[]) OR shobj_description(r.oid, 'pg_authid') LIKE 'ogel tenant %'`,
    [roleNames],
  );
  const dbs = await client.query<{ name: string; owner: string; comment: string | null; public_connect: boolean }>(
    `SELECT d.datname AS name, pg_get_userbyid(d.datdba) AS owner, shobj_description(d.oid, 'pg_database') AS comment,
            has_database_privilege('public', d.oid, 'CONNECT') AS public_connect
       FROM pg_database d
      WHERE d.datname = ANY($1::text[]) OR shobj_description(d.oid, 'pg_database') LIKE 'ogel tenant %'`,
    [dbNames],
  );
  const roleMap = new Map<string, ObservedRole>();
  for (const r of roles.rows) {
    roleMap.set(r.name, {
      name: r.name,
      tag: parseTenantTag(r.comment),
      login: r.login,
      superuser: r.superuser,
      createdb: r.createdb,
      createrole: r.createrole,
      replication: r.replication,
      bypassrls: r.bypassrls,
      connLimit: r.conn_limit,
      password: r.password,
    });
  }
  const dbMap = new Map<string, ObservedDatabase>();
  for (const d of dbs.rows) dbMap.set(d.name, { name: d.name, owner: d.owner, tag: parseTenantTag(d.comment), publicConnect: d.public_connect });
  return { roles: roleMap, databases: dbMap };
}

async function connectPrimary(config: Config, target: PrimaryTarget, database: string): Promise<SqlClient> {
  const client = new pg.Client({
    host: target.host,
    port: target.port,
    user: SUPERUSER,
    password: adminPassword(config),
    database,
    application_name: APPLICATION_NAME,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    statement_timeout: STATEMENT_TIMEOUT_MS,
  });
  // A server-side termination must not crash the daemon; the next query fails instead.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (e) {
    await client.end().catch(() => {});
    throw e;
  }
  return client;
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(what)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
