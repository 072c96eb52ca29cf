// The admin API server (docs/admin-api.md). Routes are thin: they validate the
// request and call the backend (the daemon). A write that reaches a follower is
// forwarded once to the leader's API; reads are answered locally (linearizable
// through a ReadIndex barrier unless ?stale=true).

import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { request, type Dispatcher } from 'undici';
import { NotLeaderError, RequestTimeoutError } from '../../raft/src/node/raft-node.js';
import { TENANT_LIMITS } from '../../fsm/index.js';
import type { Logger } from '../log.js';
import { SCHEDULED_AT_HINT, checkScheduledAt } from '../controllers/switchover-schedule.js';
import {
  ApiError,
  checkBearer,
  expectObject,
  optionalInt,
  optionalString,
  describe,
  readJsonBody,
  rejectUnknownFields,
  requiredString,
  Router,
  sendError,
  sendJson,
  type RequestContext,
} from './http.js';

export interface MemberAddresses {
  raft: string;
  api: string;
  proxy: string;
  postgres: string;
}

export interface TenantLimits {
  maxConnections: number;
  rateLimitPerSec: number;
  /** Server connections per proxy pool; null: the proxy's defaultPoolSize. */
  poolSize: number | null;
}

/** PATCH /v1/tenants/:name: the limits to change; the others keep their value. */
export type TenantLimitsChange = Partial<TenantLimits>;

/** What the API needs from the daemon. Write methods throw NotLeaderError on a follower. */
export interface ApiBackend {
  readonly nodeId: string;
  status(stale: boolean): Promise<unknown>;
  isLeader(): boolean;
  /** Base URL of the leader's admin API, if a leader is known. */
  leaderApiUrl(): string | undefined;
  transferLeadership(to: string | undefined): Promise<{ from: string; to: string; durationMs: number }>;
  listMembers(): Promise<unknown[]>;
  addMember(id: string, addresses: MemberAddresses): Promise<unknown>;
  removeMember(id: string): Promise<void>;
  setPaused(paused: boolean, reason: string | undefined): Promise<{ paused: boolean; reason: string | null }>;
  history(): Promise<unknown[]>;
  listTenants(): Promise<unknown[]>;
  getTenant(name: string): Promise<unknown | undefined>;
  createTenant(name: string, password: string | undefined, limits: Partial<Omit<TenantLimits, 'poolSize'>>): Promise<{ tenant: unknown; password: string; url: string }>;
  deleteTenant(name: string): Promise<boolean>;
  /** Changes some limits (tenant.setLimits through the leader); undefined when no live tenant has that name. */
  setTenantLimits(name: string, change: TenantLimitsChange): Promise<unknown | undefined>;
  config(): unknown;
  /** The failover fence step on this node's Postgres: stop the WAL receiver, report the flushed LSN. */
  stopReceiver(generation: number, renewalSeq: number | undefined): Promise<{ flushedLsn: string; replayedLsn: string }>;
  /** This node's proxy: clients, pools and counters (in the spirit of PgBouncer's SHOW POOLS). */
  proxyStats(): unknown;
  /** This node's Postgres as a primary sees its standbys (pg_stat_replication), for the leader's status. */
  localReplication(): Promise<unknown>;
  /** The old primary's half of a switchover (leader to primary). */
  stepDown(generation: number, to: string): Promise<unknown>;
  /** `ogel switchover`: leader only (NotLeaderError elsewhere). */
  switchover(to: string | undefined): Promise<unknown>;
  /** `ogel switchover --scheduled TIME`: records it and answers at once (leader only). */
  scheduleSwitchover(to: string | undefined, notBeforeMs: number): Promise<unknown>;
  /** `ogel switchover --cancel` (leader only). */
  cancelScheduledSwitchover(): Promise<{ cancelled: boolean }>;
  /** `ogel failover`: leader only. */
  failover(to: string | undefined, force: boolean): Promise<unknown>;
  /** `ogel reinit NODE`: re-clone a standby (leader only). */
  reinit(node: string): Promise<unknown>;
  /** Proposes a state-machine command sent by another daemon's agent (validated again here). */
  proposeCommand(body: unknown): Promise<unknown>;
  metrics(): Promise<string>;
  health(): { role: string; term: number; primary: boolean; replicaLagBytes: number | null };
  /** Counts a request for the metrics. */
  countRequest(route: string, status: number): void;
}

export interface ApiServerOptions {
  host: string;
  port: number;
  token: string;
  forwardTimeoutMs: number;
  backend: ApiBackend;
  log: Logger;
  /**
   * For requests forwarded to the leader: bound to this node's address
   * (src/net/bind.ts), so they leave from it. Owned by the caller. Default: undici's global one.
   */
  dispatcher?: Dispatcher;
}

const FORWARDED_HEADER = 'x-ogel-forwarded-by';
const ADDRESS_HINT = 'HOST:PORT, e.g. 127.0.0.1:8004';
/** A switchover or failover answers once the new primary takes writes (step-down up to 30 s, then 15 s). */
const ROLE_CHANGE_TIMEOUT_MS = 60_000;

export class ApiServer {
  private readonly server: http.Server;
  private readonly router = new Router();

  constructor(private readonly o: ApiServerOptions) {
    this.routes();
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.server.keepAliveTimeout = 30_000;
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.o.port, this.o.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const a = this.server.address();
    return typeof a === 'object' && a ? a.port : this.o.port;
  }

  async close(): Promise<void> {
    this.server.closeIdleConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private routes(): void {
    const b = this.o.backend;
    const r = this.router;
    // Health: no token (load balancers), Patroni-style status codes.
    r.add('GET', '/health', false, ({ res }) => sendJson(res, 200, { node: b.nodeId, status: 'ok', ...b.health() }));
    r.add('GET', '/leader', false, ({ res }) => {
      const h = b.health();
      sendJson(res, b.isLeader() ? 200 : 503, { node: b.nodeId, role: h.role, term: h.term });
    });
    r.add('GET', '/primary', false, ({ res }) => {
      const h = b.health();
      sendJson(res, h.primary ? 200 : 503, { node: b.nodeId, primary: h.primary });
    });
    r.add('GET', '/replica', false, ({ res, url }) => {
      const lagParam = url.searchParams.get('lag');
      const lagMax = lagParam === null ? Number.POSITIVE_INFINITY : Number(lagParam);
      if (!Number.isFinite(lagMax) && lagParam !== null) {
        throw new ApiError(400, 'invalid_query', `lag: expected a number of bytes, got ${JSON.stringify(lagParam)}`, 'e.g. /replica?lag=1048576');
      }
      const h = b.health();
      const ok = h.replicaLagBytes !== null && h.replicaLagBytes <= lagMax;
      sendJson(res, ok ? 200 : 503, { node: b.nodeId, replica: h.replicaLagBytes !== null, lagBytes: h.replicaLagBytes });
    });
    r.add('GET', '/metrics', false, async ({ res }) => {
      const text = await b.metrics();
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(text);
    });

    r.add('GET', '/v1/status', true, async (ctx) => {
      const stale = parseStale(ctx.url);
      // Per-peer Raft progress (match index, lag, last contact) is known only to the
      // leader, so a follower has the leader answer; if the leader cannot be
      // reached, the local view is better than nothing.
      const leader = b.leaderApiUrl();
      if (!stale && !b.isLeader() && leader && ctx.req.headers[FORWARDED_HEADER] === undefined) {
        try {
          const answer = await this.fetchFromLeader(ctx, leader, undefined);
          if (answer.status === 200) {
            ctx.res.writeHead(200, { 'content-type': 'application/json' });
            ctx.res.end(answer.text);
            return;
          }
        } catch {
          /* fall through to the local answer */
        }
      }
      sendJson(ctx.res, 200, await b.status(stale));
    });
    r.add('POST', '/v1/leadership/transfer', true, async ({ req, res }) => {
      const body = expectObject(await readJsonBody(req));
      rejectUnknownFields(body, ['to']);
      sendJson(res, 200, await b.transferLeadership(optionalString(body, 'to')));
    });
    r.add('GET', '/v1/members', true, async ({ res }) => sendJson(res, 200, { members: await b.listMembers() }));
    r.add('POST', '/v1/members', true, async (ctx) => {
      const body = expectObject(await readJsonBody(ctx.req));
      rejectUnknownFields(body, ['id', 'raft', 'api', 'proxy', 'postgres']);
      const id = requiredString(body, 'id', 'a node id like n4');
      const addresses = {
        raft: requiredString(body, 'raft', ADDRESS_HINT),
        api: requiredString(body, 'api', ADDRESS_HINT),
        proxy: requiredString(body, 'proxy', ADDRESS_HINT),
        postgres: requiredString(body, 'postgres', ADDRESS_HINT),
      };
      for (const [k, v] of Object.entries(addresses)) checkAddress(k, v);
      await this.write(ctx, body, async () => sendJson(ctx.res, 200, { member: await b.addMember(id, addresses) }));
    });
    r.add('DELETE', '/v1/members/:id', true, async (ctx) => {
      await this.write(ctx, undefined, async () => {
        await b.removeMember(ctx.params.id!);
        sendJson(ctx.res, 200, { removed: ctx.params.id });
      });
    });
    r.add('POST', '/v1/pause', true, async (ctx) => {
      const body = expectObject(await readJsonBody(ctx.req));
      rejectUnknownFields(body, ['reason']);
      await this.write(ctx, body, async () => sendJson(ctx.res, 200, await b.setPaused(true, optionalString(body, 'reason'))));
    });
    r.add('POST', '/v1/resume', true, async (ctx) => {
      const body = expectObject(await readJsonBody(ctx.req));
      rejectUnknownFields(body, []);
      await this.write(ctx, body, async () => sendJson(ctx.res, 200, await b.setPaused(false, undefined)));
    });
    // Agents on every node report their Postgres and renew the primary's lease
    // through this: only the leader can propose, so a follower forwards it.
    r.add('POST', '/v1/internal/commands', true, async (ctx) => {
      const body = await readJsonBody(ctx.req);
      await this.write(ctx, body, async () => sendJson(ctx.res, 200, await b.proposeCommand(body)));
    });
    r.add('POST', '/v1/internal/pg/stop-receiver', true, async ({ req, res }) => {
      const body = expectObject(await readJsonBody(req));
      rejectUnknownFields(body, ['generation', 'renewalSeq']);
      const generation = optionalInt(body, 'generation', 1, Number.MAX_SAFE_INTEGER);
      if (generation === undefined) throw new ApiError(400, 'invalid_body', "field 'generation' is required");
      sendJson(res, 200, await b.stopReceiver(generation, optionalInt(body, 'renewalSeq', 0, Number.MAX_SAFE_INTEGER)));
    });
    r.add('GET', '/v1/proxy/pools', true, ({ res }) => sendJson(res, 200, b.proxyStats()));
    r.add('GET', '/v1/internal/pg/replication', true, async ({ res }) => sendJson(res, 200, await b.localReplication()));
    r.add('POST', '/v1/internal/pg/step-down', true, async ({ req, res }) => {
      const body = expectObject(await readJsonBody(req));
      rejectUnknownFields(body, ['generation', 'to']);
      const generation = optionalInt(body, 'generation', 1, Number.MAX_SAFE_INTEGER);
      if (generation === undefined) throw new ApiError(400, 'invalid_body', "field 'generation' is required");
      sendJson(res, 200, await b.stepDown(generation, requiredString(body, 'to', 'the switchover target, a node id like n2')));
    });
    // Switchover and failover wait for the new primary to take writes: longer than other writes.
    r.add('POST', '/v1/switchover', true, async (ctx) => {
      const body = expectObject(await readJsonBody(ctx.req));
      rejectUnknownFields(body, ['to', 'scheduledAt']);
      const to = optionalString(body, 'to');
      // An explicit null must not quietly become "switch over now".
      if (body['scheduledAt'] === null) throw new ApiError(400, 'invalid_body', "field 'scheduledAt': null; leave the field out for a switchover now", SCHEDULED_AT_HINT);
      const scheduledAt = optionalString(body, 'scheduledAt');
      if (scheduledAt !== undefined) {
        // Checked against this node's clock, where the request arrives; the leader
        // runs it by its own (the node clocks are assumed NTP-synchronized).
        const check = checkScheduledAt(scheduledAt, Date.now());
        if (!check.ok) throw new ApiError(400, 'invalid_body', `field 'scheduledAt': ${check.message}`, SCHEDULED_AT_HINT);
        await this.write(ctx, body, async () => sendJson(ctx.res, 200, await b.scheduleSwitchover(to, check.notBeforeMs)));
        return;
      }
      await this.write(ctx, body, async () => sendJson(ctx.res, 200, await b.switchover(to)), ROLE_CHANGE_TIMEOUT_MS);
    });
    r.add('DELETE', '/v1/switchover', true, async (ctx) => {
      await this.write(ctx, undefined, async () => sendJson(ctx.res, 200, await b.cancelScheduledSwitchover()));
    });
    r.add('POST', '/v1/failover', true, async (ctx) => {
      const body = expectObject(await readJsonBody(ctx.req));
      rejectUnknownFields(body, ['to', 'force']);
      const force = body['force'] ?? false;
      if (typeof force !== 'boolean') throw new ApiError(400, 'invalid_body', `field 'force': expected true or false, got ${JSON.stringify(force)}`);
      await this.write(ctx, body, async () => sendJson(ctx.res, 200, await b.failover(optionalString(body, 'to'), force)), ROLE_CHANGE_TIMEOUT_MS);
    });
    r.add('POST', '/v1/nodes/:id/reinit', true, async (ctx) => {
      const body = expectObject(await readJsonBody(ctx.req));
      rejectUnknownFields(body, []);
      await this.write(ctx, body, async () => sendJson(ctx.res, 200, await b.reinit(ctx.params.id!)));
    });
    r.add('GET', '/v1/history', true, async ({ res }) => sendJson(res, 200, { history: await b.history() }));
    r.add('GET', '/v1/config', true, ({ res }) => sendJson(res, 200, b.config()));
    r.add('GET', '/v1/tenants', true, async ({ res }) => sendJson(res, 200, { tenants: await b.listTenants() }));
    r.add('GET', '/v1/tenants/:name', true, async ({ res, params }) => {
      const t = await b.getTenant(params.name!);
      if (t === undefined) throw new ApiError(404, 'not_found', `no tenant named '${params.name}'`, "list them with 'ogel tenants list'");
      sendJson(res, 200, { tenant: t });
    });
    r.add('POST', '/v1/tenants', true, async (ctx) => {
      const body = expectObject(await readJsonBody(ctx.req));
      rejectUnknownFields(body, ['name', 'password', 'limits']);
      const name = requiredString(body, 'name', 'a tenant name: lowercase letters, digits and _, at most 63');
      // The name is also the tenant's database and role, so it must be a plain Postgres identifier.
      if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) {
        throw new ApiError(
          400,
          'invalid_body',
          `field 'name': ${JSON.stringify(name)} is not a valid tenant name`,
          'use 1-63 characters of a-z, 0-9 and _, not starting with a digit (it becomes the database and role name)',
        );
      }
      const password = optionalString(body, 'password');
      if (password !== undefined && password.length < 8) {
        throw new ApiError(400, 'invalid_body', 'field \'password\': at least 8 characters', 'or omit it and a password is generated');
      }
      const limitsObj = body.limits === undefined ? {} : expectObject(body.limits, "field 'limits'");
      rejectUnknownFields(limitsObj, ['maxConnections', 'rateLimitPerSec']);
      const limits: Partial<Omit<TenantLimits, 'poolSize'>> = {};
      // The state machine's bounds: a value it would refuse fails here, naming the field.
      if (limitsObj['maxConnections'] !== undefined) limits.maxConnections = limitInt(limitsObj, 'maxConnections', TENANT_LIMITS.maxConnections, 'client connections');
      if (limitsObj['rateLimitPerSec'] !== undefined) limits.rateLimitPerSec = limitInt(limitsObj, 'rateLimitPerSec', TENANT_LIMITS.rateLimitPerSec, 'queries per second');
      await this.write(ctx, body, async () => sendJson(ctx.res, 200, await b.createTenant(name, password, limits)));
    });
    r.add('PATCH', '/v1/tenants/:name', true, async (ctx) => {
      const change = parseLimitsChange(expectObject(await readJsonBody(ctx.req)));
      await this.write(ctx, { limits: change }, async () => {
        const t = await b.setTenantLimits(ctx.params.name!, change);
        if (t === undefined) throw new ApiError(404, 'not_found', `no tenant named '${ctx.params.name}'`, "list them with 'ogel tenants list'");
        sendJson(ctx.res, 200, { tenant: t });
      });
    });
    r.add('DELETE', '/v1/tenants/:name', true, async (ctx) => {
      await this.write(ctx, undefined, async () => {
        if (!(await b.deleteTenant(ctx.params.name!))) {
          throw new ApiError(404, 'not_found', `no tenant named '${ctx.params.name}'`, "list them with 'ogel tenants list'");
        }
        sendJson(ctx.res, 200, { deleted: ctx.params.name });
      });
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let routeName = 'unknown';
    try {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const m = this.router.match(req.method ?? 'GET', url.pathname);
      if (m instanceof ApiError) throw m;
      routeName = `${m.route.method} ${m.route.pattern}`;
      if (m.route.auth) checkBearer(req, this.o.token);
      await m.route.handler({ req, res, url, params: m.params });
    } catch (e) {
      const err = toApiError(e);
      if (err.status >= 500) this.o.log({ level: 'warn', msg: 'api request failed', route: routeName, status: err.status, error: err.message });
      if (!res.headersSent) sendError(res, err);
      else res.destroy();
    } finally {
      this.o.backend.countRequest(routeName, res.statusCode);
    }
  }

  /** Runs a write; on a follower, forwards the request to the leader instead (once). */
  private async write(ctx: RequestContext, body: unknown, run: () => Promise<void>, forwardTimeoutMs?: number): Promise<void> {
    try {
      await run();
    } catch (e) {
      if (!(e instanceof NotLeaderError)) throw e;
      const by = ctx.req.headers[FORWARDED_HEADER];
      const leader = this.o.backend.leaderApiUrl();
      if (by !== undefined || leader === undefined) {
        throw new ApiError(503, 'no_leader', 'no Raft leader is available to take this write', 'retry in a moment; `ogel status` shows the cluster');
      }
      await this.forward(ctx, leader, body, forwardTimeoutMs);
    }
  }

  private async forward(ctx: RequestContext, leaderUrl: string, body: unknown, timeoutMs?: number): Promise<void> {
    const answer = await this.fetchFromLeader(ctx, leaderUrl, body, timeoutMs);
    ctx.res.writeHead(answer.status, { 'content-type': 'application/json' });
    ctx.res.end(answer.text);
  }

  /** Sends the request on to the leader's API; throws ApiError 503 when it cannot be reached. */
  private async fetchFromLeader(ctx: RequestContext, leaderUrl: string, body: unknown, timeoutMs = this.o.forwardTimeoutMs): Promise<{ status: number; text: string }> {
    const target = new URL(ctx.url.pathname + ctx.url.search, leaderUrl);
    let answer;
    try {
      answer = await request(target, {
        method: (ctx.req.method ?? 'POST') as 'POST',
        headers: {
          authorization: ctx.req.headers.authorization ?? '',
          'content-type': 'application/json',
          [FORWARDED_HEADER]: this.o.backend.nodeId,
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        ...(this.o.dispatcher !== undefined ? { dispatcher: this.o.dispatcher } : {}),
      });
    } catch (e) {
      throw new ApiError(503, 'unavailable', `forwarding to the leader at ${leaderUrl} failed: ${(e as Error).message}`, 'retry in a moment');
    }
    return { status: answer.statusCode, text: await answer.body.text() };
  }
}

const LIMITS_CHANGE_EXAMPLE = '{"limits": {"poolSize": 10}}';

/** The body of PATCH /v1/tenants/:name: {limits: {poolSize?, maxConnections?, rateLimitPerSec?}}, at least one. */
function parseLimitsChange(body: Record<string, unknown>): TenantLimitsChange {
  rejectUnknownFields(body, ['limits']);
  if (body['limits'] === undefined) throw new ApiError(400, 'invalid_body', "field 'limits': missing", `send the limits to change, e.g. ${LIMITS_CHANGE_EXAMPLE}`);
  const limits = expectObject(body['limits'], "field 'limits'");
  const known = ['poolSize', 'maxConnections', 'rateLimitPerSec'];
  for (const k of Object.keys(limits)) {
    if (!known.includes(k)) throw new ApiError(400, 'invalid_body', `unknown field 'limits.${k}'`, `known limits: ${known.join(', ')}`);
  }
  const change: TenantLimitsChange = {};
  if (limits['poolSize'] === null) change.poolSize = null;
  else if (limits['poolSize'] !== undefined) change.poolSize = limitInt(limits, 'poolSize', TENANT_LIMITS.poolSize, 'server connections per pool, or null for the proxy\'s defaultPoolSize');
  if (limits['maxConnections'] !== undefined) change.maxConnections = limitInt(limits, 'maxConnections', TENANT_LIMITS.maxConnections, 'client connections');
  if (limits['rateLimitPerSec'] !== undefined) change.rateLimitPerSec = limitInt(limits, 'rateLimitPerSec', TENANT_LIMITS.rateLimitPerSec, 'queries per second');
  if (Object.keys(change).length === 0) {
    throw new ApiError(400, 'invalid_body', "field 'limits': changes nothing", `give at least one of poolSize, maxConnections, rateLimitPerSec, e.g. ${LIMITS_CHANGE_EXAMPLE}`);
  }
  return change;
}

function limitInt(limits: Record<string, unknown>, key: string, range: { min: number; max: number }, what: string): number {
  const v = limits[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < range.min || v > range.max) {
    throw new ApiError(400, 'invalid_body', `field 'limits.${key}': expected an integer from ${range.min} to ${range.max} (${what}), got ${describe(v)}`, `e.g. {"limits": {"${key}": ${Math.min(10, range.max)}}}`);
  }
  return v;
}

function parseStale(url: URL): boolean {
  const v = url.searchParams.get('stale');
  if (v === null || v === 'false' || v === '0') return false;
  if (v === 'true' || v === '1' || v === '') return true;
  throw new ApiError(400, 'invalid_query', `stale: expected true or false, got ${JSON.stringify(v)}`);
}

function checkAddress(field: string, v: string): void {
  const i = v.lastIndexOf(':');
  const port = Number(v.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ApiError(400, 'invalid_body', `field '${field}': ${JSON.stringify(v)} is not HOST:PORT`, ADDRESS_HINT);
  }
}

function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof NotLeaderError) return new ApiError(503, 'no_leader', e.message, 'retry in a moment');
  if (e instanceof RequestTimeoutError) return new ApiError(503, 'unavailable', e.message, 'the outcome of a write is unknown; check with a read before retrying');
  const err = e as Error;
  return new ApiError(500, 'internal', err.message ?? String(e));
}
