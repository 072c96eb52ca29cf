// The admin API server (docs/admin-api.md). Routes are thin: they validate the
// request and call the backend (the daemon). A write that reaches a follower is
// forwarded once to the leader's API; reads are answered locally (linearizable
// through a ReadIndex barrier unless ?stale=true).

import { readFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { request, type Dispatcher } from 'undici';
import { NotLeaderError, RequestTimeoutError } from '../../raft/index.js';
import type { Logger } from '../log.js';
import { SCHEDULED_AT_HINT, checkScheduledAt } from '../controllers/switchover-schedule.js';
import { ApiError, checkBearer, readJsonBody, Router, sendError, sendJson, type Handler, type RequestContext } from './http.js';
import {
  AddMemberRequest,
  CreateBackupRequest,
  VerifyBackupRequest,
  CreateRestorePointRequest,
  CreateTenantRequest,
  EmptyRequest,
  FailoverRequest,
  PauseRequest,
  ROUTES,
  SetTenantLimitsRequest,
  StepDownRequest,
  StopReceiverRequest,
  SwitchoverRequest,
  TransferRequest,
  buildOpenApi,
  type ApplyResultBody,
  type Backup,
  type BackupProgress,
  type BackupsResponse,
  type VerifyBackupResponse,
  type CancelResult,
  type ConfigBody,
  type CreateTenantResult,
  type FailoverResult,
  type Health,
  type HistoryEntry,
  type Member,
  type MemberAddresses,
  type MemberRecord,
  type NewTenantLimits,
  type PauseResult,
  type ProxyPools,
  type ReinitResult,
  type ReplicationAnswerBody,
  type RestorePoint,
  type RestorePointsResponse,
  type RouteKey,
  type ScheduleResult,
  type Status,
  type StepDownResult,
  type StopReceiverResult,
  type SwitchoverResult,
  type Tenant,
  type TenantLimitsChange,
  type TransferResult,
} from './contract/index.js';
import { parseBody } from './validate.js';

/** What the API needs from the daemon: the contract's types (src/api/contract). Write methods throw NotLeaderError on a follower. */
export interface ApiBackend {
  readonly nodeId: string;
  status(stale: boolean): Promise<Status>;
  isLeader(): boolean;
  /** Base URL of the leader's admin API, if a leader is known. */
  leaderApiUrl(): string | undefined;
  transferLeadership(to: string | undefined): Promise<TransferResult>;
  listMembers(): Promise<Member[]>;
  addMember(id: string, addresses: MemberAddresses): Promise<MemberRecord>;
  removeMember(id: string): Promise<void>;
  setPaused(paused: boolean, reason: string | undefined): Promise<PauseResult>;
  history(): Promise<HistoryEntry[]>;
  /** The backup index, oldest first, and where the objects are. */
  listBackups(): Promise<BackupsResponse>;
  getBackup(id: string): Promise<Backup | undefined>;
  /** How far a running backup has streamed: asked of its node (null when it does not answer). */
  backupProgress(b: Backup): Promise<BackupProgress | null>;
  /** How far a backup running on this node has streamed; null when none by that id runs here. */
  localBackupProgress(id: string): BackupProgress | null;
  /** `ogel backup create`: leader only (NotLeaderError elsewhere); resolves once the backup is recorded as running. */
  createBackup(kind: 'full' | 'incremental' | 'auto'): Promise<Backup>;
  /** `ogel backup delete`: leader only; false when there is no such backup. */
  deleteBackup(id: string): Promise<boolean>;
  /** `ogel backup verify`: on this node (the store is shared); the verdict is recorded through the leader. */
  verifyBackup(id: string, restoreTest: boolean): Promise<VerifyBackupResponse>;
  /** `ogel restore-point create`: leader only (NotLeaderError elsewhere); 409 for a name already recorded. */
  createRestorePoint(name: string): Promise<RestorePoint>;
  /** The restore points recorded in the object store, oldest first. */
  listRestorePoints(): Promise<RestorePointsResponse>;
  listTenants(): Promise<Tenant[]>;
  getTenant(name: string): Promise<Tenant | undefined>;
  createTenant(name: string, password: string | undefined, limits: NewTenantLimits): Promise<CreateTenantResult>;
  deleteTenant(name: string): Promise<boolean>;
  /** Changes some limits (tenant.setLimits through the leader); undefined when no live tenant has that name. */
  setTenantLimits(name: string, change: TenantLimitsChange): Promise<Tenant | undefined>;
  config(): ConfigBody;
  /** The failover fence step on this node's Postgres: stop the WAL receiver, report the flushed LSN. */
  stopReceiver(generation: number, renewalSeq: number | undefined): Promise<StopReceiverResult>;
  /** This node's proxy: clients, pools and counters (in the spirit of PgBouncer's SHOW POOLS). */
  proxyStats(): ProxyPools;
  /** This node's Postgres as a primary sees its standbys (pg_stat_replication), for the leader's status. */
  localReplication(): Promise<ReplicationAnswerBody>;
  /** The old primary's half of a switchover (leader to primary). */
  stepDown(generation: number, to: string): Promise<StepDownResult>;
  /** `ogel switchover`: leader only (NotLeaderError elsewhere). */
  switchover(to: string | undefined): Promise<SwitchoverResult>;
  /** `ogel switchover --scheduled TIME`: records it and answers at once (leader only). */
  scheduleSwitchover(to: string | undefined, notBeforeMs: number): Promise<ScheduleResult>;
  /** `ogel switchover --cancel` (leader only). */
  cancelScheduledSwitchover(): Promise<CancelResult>;
  /** `ogel failover`: leader only. */
  failover(to: string | undefined, force: boolean): Promise<FailoverResult>;
  /** `ogel reinit NODE`: re-clone a standby (leader only). */
  reinit(node: string): Promise<ReinitResult>;
  /**
   * Proposes a state-machine command sent by another daemon's agent. The body is
   * unknown on purpose: the state machine validates it (validateCommand), with the
   * versioned command formats it owns.
   */
  proposeCommand(body: unknown): Promise<ApplyResultBody>;
  metrics(): Promise<string>;
  health(): Omit<Health, 'node' | 'status'>;
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
/** A switchover or failover answers once the new primary takes writes (step-down up to 30 s, then 15 s). */
const ROLE_CHANGE_TIMEOUT_MS = 60_000;
const NO_TENANT_HINT = "list them with 'ogel tenants list'";

export class ApiServer {
  private readonly server: http.Server;
  private readonly router = new Router();
  /** Built on first request: it never changes while the daemon runs. */
  private openApiText: string | undefined;

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

  /** The routes the server answers (method and path pattern), for the contract test. */
  registeredRoutes(): { method: string; path: string }[] {
    return this.router.list();
  }

  /** Registers one route of the contract's table (src/api/contract/routes.ts): its method, path and auth. */
  private on(key: RouteKey, handler: Handler): void {
    const spec = ROUTES[key];
    this.router.add(spec.method, spec.path, spec.auth, handler);
  }

  private routes(): void {
    const b = this.o.backend;
    // Health: no token (load balancers), Patroni-style status codes.
    this.on('GET /health', ({ res }) => sendJson(res, 200, { node: b.nodeId, status: 'ok', ...b.health() } satisfies Health));
    this.on('GET /leader', ({ res }) => {
      const h = b.health();
      sendJson(res, b.isLeader() ? 200 : 503, { node: b.nodeId, role: h.role, term: h.term });
    });
    this.on('GET /primary', ({ res }) => {
      const h = b.health();
      sendJson(res, h.primary ? 200 : 503, { node: b.nodeId, primary: h.primary });
    });
    this.on('GET /replica', ({ res, url }) => {
      const lagParam = url.searchParams.get('lag');
      const lagMax = lagParam === null ? Number.POSITIVE_INFINITY : Number(lagParam);
      if (!Number.isFinite(lagMax) && lagParam !== null) {
        throw new ApiError(400, 'invalid_query', `lag: expected a number of bytes, got ${JSON.stringify(lagParam)}`, 'e.g. /replica?lag=1048576');
      }
      const h = b.health();
      const ok = h.replicaLagBytes !== null && h.replicaLagBytes <= lagMax;
      sendJson(res, ok ? 200 : 503, { node: b.nodeId, replica: h.replicaLagBytes !== null, lagBytes: h.replicaLagBytes });
    });
    this.on('GET /metrics', async ({ res }) => {
      const text = await b.metrics();
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(text);
    });
    // No token: the document describes the API and holds no cluster data (no
    // addresses, names or secrets), and tools (client generators, API explorers)
    // fetch it before they have one. Every route it lists still needs the token.
    this.on('GET /v1/openapi.json', ({ res }) => {
      this.openApiText ??= JSON.stringify(buildOpenApi(packageVersion()));
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(this.openApiText) });
      res.end(this.openApiText);
    });

    this.on('GET /v1/status', async (ctx) => {
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
    this.on('POST /v1/leadership/transfer', async ({ req, res }) => {
      const body = parseBody(TransferRequest, await readJsonBody(req));
      sendJson(res, 200, await b.transferLeadership(body.to ?? undefined));
    });
    this.on('GET /v1/members', async ({ res }) => sendJson(res, 200, { members: await b.listMembers() }));
    this.on('POST /v1/members', async (ctx) => {
      const { id, ...addresses } = parseBody(AddMemberRequest, await readJsonBody(ctx.req));
      await this.write(ctx, { id, ...addresses }, async () => sendJson(ctx.res, 200, { member: await b.addMember(id, addresses) }));
    });
    this.on('DELETE /v1/members/:id', async (ctx) => {
      await this.write(ctx, undefined, async () => {
        await b.removeMember(ctx.params.id!);
        sendJson(ctx.res, 200, { removed: ctx.params.id });
      });
    });
    this.on('POST /v1/pause', async (ctx) => {
      const body = parseBody(PauseRequest, await readJsonBody(ctx.req));
      await this.write(ctx, body, async () => sendJson(ctx.res, 200, await b.setPaused(true, body.reason ?? undefined)));
    });
    this.on('POST /v1/resume', async (ctx) => {
      const body = parseBody(EmptyRequest, await readJsonBody(ctx.req));
      await this.write(ctx, body, async () => sendJson(ctx.res, 200, await b.setPaused(false, undefined)));
    });
    // Agents on every node report their Postgres and renew the primary's lease
    // through this: only the leader can propose, so a follower forwards it.
    this.on('POST /v1/internal/commands', async (ctx) => {
      const body = await readJsonBody(ctx.req);
      await this.write(ctx, body, async () => sendJson(ctx.res, 200, await b.proposeCommand(body)));
    });
    this.on('POST /v1/internal/pg/stop-receiver', async ({ req, res }) => {
      const body = parseBody(StopReceiverRequest, await readJsonBody(req));
      sendJson(res, 200, await b.stopReceiver(body.generation, body.renewalSeq ?? undefined));
    });
    this.on('GET /v1/proxy/pools', ({ res }) => sendJson(res, 200, b.proxyStats()));
    this.on('GET /v1/internal/pg/replication', async ({ res }) => sendJson(res, 200, await b.localReplication()));
    this.on('POST /v1/internal/pg/step-down', async ({ req, res }) => {
      const body = parseBody(StepDownRequest, await readJsonBody(req));
      sendJson(res, 200, await b.stepDown(body.generation, body.to));
    });
    // Switchover and failover wait for the new primary to take writes: longer than other writes.
    this.on('POST /v1/switchover', async (ctx) => {
      const body = parseBody(SwitchoverRequest, await readJsonBody(ctx.req));
      const to = body.to ?? undefined;
      if (body.scheduledAt !== undefined) {
        // Checked against this node's clock, where the request arrives; the leader
        // runs it by its own (the node clocks are assumed NTP-synchronized).
        const check = checkScheduledAt(body.scheduledAt, Date.now());
        if (!check.ok) throw new ApiError(400, 'invalid_body', `field 'scheduledAt': ${check.message}`, SCHEDULED_AT_HINT);
        await this.write(ctx, body, async () => sendJson(ctx.res, 200, await b.scheduleSwitchover(to, check.notBeforeMs)));
        return;
      }
      await this.write(ctx, body, async () => sendJson(ctx.res, 200, await b.switchover(to)), ROLE_CHANGE_TIMEOUT_MS);
    });
    this.on('DELETE /v1/switchover', async (ctx) => {
      await this.write(ctx, undefined, async () => sendJson(ctx.res, 200, await b.cancelScheduledSwitchover()));
    });
    this.on('POST /v1/failover', async (ctx) => {
      const body = parseBody(FailoverRequest, await readJsonBody(ctx.req));
      await this.write(ctx, body, async () => sendJson(ctx.res, 200, await b.failover(body.to ?? undefined, body.force ?? false)), ROLE_CHANGE_TIMEOUT_MS);
    });
    this.on('POST /v1/nodes/:id/reinit', async (ctx) => {
      const body = parseBody(EmptyRequest, await readJsonBody(ctx.req));
      await this.write(ctx, body, async () => sendJson(ctx.res, 200, await b.reinit(ctx.params.id!)));
    });
    this.on('GET /v1/history', async ({ res }) => sendJson(res, 200, { history: await b.history() }));
    this.on('GET /v1/config', ({ res }) => sendJson(res, 200, b.config()));
    this.on('GET /v1/backups', async ({ res }) => sendJson(res, 200, await b.listBackups()));
    this.on('GET /v1/backups/:id', async ({ res, params }) => {
      const backup = await b.getBackup(params.id!);
      if (backup === undefined) throw new ApiError(404, 'not_found', `no backup '${params.id}'`, "'ogel backup list' shows them");
      sendJson(res, 200, { backup, progress: backup.state === 'running' ? await b.backupProgress(backup) : null });
    });
    this.on('GET /v1/internal/backups/:id/progress', ({ res, params }) => sendJson(res, 200, { progress: b.localBackupProgress(params.id!) }));
    this.on('POST /v1/backups', async (ctx) => {
      const body = parseBody(CreateBackupRequest, await readJsonBody(ctx.req));
      await this.write(ctx, body, async () => sendJson(ctx.res, 200, { backup: await b.createBackup(body.kind ?? 'auto') }));
    });
    this.on('DELETE /v1/backups/:id', async (ctx) => {
      await this.write(ctx, undefined, async () => {
        if (!(await b.deleteBackup(ctx.params.id!))) throw new ApiError(404, 'not_found', `no backup '${ctx.params.id}'`, "'ogel backup list' shows them");
        sendJson(ctx.res, 200, { deleted: ctx.params.id });
      });
    });
    this.on('POST /v1/backups/:id/verify', async (ctx) => {
      const body = parseBody(VerifyBackupRequest, await readJsonBody(ctx.req));
      sendJson(ctx.res, 200, await b.verifyBackup(ctx.params.id!, body.restoreTest ?? false));
    });
    this.on('GET /v1/restore-points', async ({ res }) => sendJson(res, 200, await b.listRestorePoints()));
    this.on('POST /v1/restore-points', async (ctx) => {
      const body = parseBody(CreateRestorePointRequest, await readJsonBody(ctx.req));
      await this.write(ctx, body, async () => sendJson(ctx.res, 200, { restorePoint: await b.createRestorePoint(body.name) }));
    });
    this.on('GET /v1/tenants', async ({ res }) => sendJson(res, 200, { tenants: await b.listTenants() }));
    this.on('GET /v1/tenants/:name', async ({ res, params }) => {
      const t = await b.getTenant(params.name!);
      if (t === undefined) throw new ApiError(404, 'not_found', `no tenant named '${params.name}'`, NO_TENANT_HINT);
      sendJson(res, 200, { tenant: t });
    });
    this.on('POST /v1/tenants', async (ctx) => {
      const body = parseBody(CreateTenantRequest, await readJsonBody(ctx.req));
      await this.write(ctx, body, async () => sendJson(ctx.res, 200, await b.createTenant(body.name, body.password ?? undefined, body.limits ?? {})));
    });
    this.on('PATCH /v1/tenants/:name', async (ctx) => {
      const body = parseBody(SetTenantLimitsRequest, await readJsonBody(ctx.req));
      await this.write(ctx, body, async () => {
        const t = await b.setTenantLimits(ctx.params.name!, body.limits);
        if (t === undefined) throw new ApiError(404, 'not_found', `no tenant named '${ctx.params.name}'`, NO_TENANT_HINT);
        sendJson(ctx.res, 200, { tenant: t });
      });
    });
    this.on('DELETE /v1/tenants/:name', async (ctx) => {
      await this.write(ctx, undefined, async () => {
        if (!(await b.deleteTenant(ctx.params.name!))) {
          throw new ApiError(404, 'not_found', `no tenant named '${ctx.params.name}'`, NO_TENANT_HINT);
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
  private async fetchFromLeader(
    ctx: RequestContext,
    leaderUrl: string,
    body: unknown,
    timeoutMs = this.o.forwardTimeoutMs,
  ): Promise<{ status: number; text: string }> {
    const target = new URL(ctx.url.pathname + ctx.url.search, leaderUrl);
    let answer: Dispatcher.ResponseData;
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

function parseStale(url: URL): boolean {
  const v = url.searchParams.get('stale');
  if (v === null || v === 'false' || v === '0') return false;
  if (v === 'true' || v === '1' || v === '') return true;
  throw new ApiError(400, 'invalid_query', `stale: expected true or false, got ${JSON.stringify(v)}`);
}

let version: string | undefined;
/** The daemon's version for the OpenAPI document (package.json, read once). */
function packageVersion(): string {
  version ??= (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  return version;
}

function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof NotLeaderError) return new ApiError(503, 'no_leader', e.message, 'retry in a moment');
  if (e instanceof RequestTimeoutError)
    return new ApiError(503, 'unavailable', e.message, 'the outcome of a write is unknown; check with a read before retrying');
  const err = e as Error;
  return new ApiError(500, 'internal', err.message ?? String(e));
}
