// AdminClient: the admin API (docs/admin-api.md) over HTTP, with endpoint failover.
//
// Failover rule: endpoints are tried in order. The client moves on to the next one
// only when the request certainly did not take effect, or when repeating it is
// harmless:
//   - the connection failed (refused, unreachable, DNS, connect timeout): always;
//   - 503 no_leader (that node sees no leader, so it proposed nothing): always;
//   - a timeout or reset after the request was sent, 503 unavailable, 502/504:
//     only for idempotent requests (reads, pause, resume). For other writes the
//     outcome is unknown and repeating them elsewhere could apply them twice
//     (a second leadership transfer, a confusing 409 for a tenant that was in fact
//     created), so the client stops and says the outcome is unknown.
// Any other HTTP answer (2xx, 4xx, other 5xx) is final.
//
// Built on node:http rather than undici: a CLI makes a handful of requests, and
// node:http starts ~80 ms faster and tells us exactly when a request was sent.

import http from 'node:http';
import https from 'node:https';
import type { z } from 'zod';
import {
  AddMemberResponse,
  BackupResponse,
  DeleteBackupResponse,
  VerifyBackupResponse,
  BackupsResponse,
  CancelResult,
  ConfigResponse,
  CreateTenantResult,
  DeleteTenantResponse,
  FailoverResult,
  HistoryResponse,
  MembersResponse,
  PauseResult,
  ProxyPools,
  ReinitResult,
  RemoveMemberResponse,
  RestorePointResponse,
  RestorePointsResponse,
  ScheduleResult,
  Status,
  SwitchoverResult,
  TenantResponse,
  TenantsResponse,
  TransferResult,
  describe,
} from '../api/contract/index.js';
import type { AddMemberRequest, CreateTenantRequest, SetTenantLimitsRequest } from '../api/contract/index.js';

export const CLIENT_TIMEOUT_MS_DEFAULT = 10_000;
const RESPONSE_BYTES_MAX = 64 * 1024 * 1024;
const SNIPPET_CHARS_MAX = 200;

export interface AdminClientOptions {
  /** Base URLs such as http://127.0.0.1:8001, tried in order. */
  endpoints: string[];
  token?: string | undefined;
  /** Per-request (per endpoint attempt) timeout. */
  timeoutMs?: number;
  userAgent?: string;
}

export interface RequestOptions {
  body?: unknown;
  /** Safe to repeat on another node after an unknown outcome. Default: GET only. */
  idempotent?: boolean;
  /** Ask only this endpoint (no failover). */
  endpoint?: string;
  timeoutMs?: number;
}

export interface EndpointFailure {
  endpoint: string;
  reason: string;
}

/** The API answered with an error status and (usually) a {"error":{...}} body. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly hint: string | undefined;
  readonly endpoint: string;
  /** Whether a bearer token was sent (for the 401 message). */
  readonly tokenSent: boolean;
  /** Endpoints that failed before this answer, if any. */
  readonly failures: EndpointFailure[];
  constructor(status: number, code: string, message: string, hint: string | undefined, endpoint: string, tokenSent: boolean, failures: EndpointFailure[]) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.hint = hint;
    this.endpoint = endpoint;
    this.tokenSent = tokenSent;
    this.failures = failures;
  }
}

/** No endpoint answered at all. */
export class UnreachableError extends Error {
  readonly failures: EndpointFailure[];
  constructor(failures: EndpointFailure[]) {
    super(`no admin API reachable: ${failures.map((f) => `${f.endpoint} (${f.reason})`).join(', ')}`);
    this.name = 'UnreachableError';
    this.failures = failures;
  }
}

/** A non-idempotent request was sent but no answer came: it may or may not have applied. */
export class OutcomeUnknownError extends Error {
  readonly endpoint: string;
  constructor(endpoint: string, reason: string) {
    super(`${endpoint}: ${reason} after the request was sent; the outcome is unknown (it may still take effect)`);
    this.name = 'OutcomeUnknownError';
    this.endpoint = endpoint;
  }
}

/** The endpoint answered something that is not the admin API's JSON. */
export class BadResponseError extends Error {
  readonly endpoint: string;
  constructor(endpoint: string, message: string) {
    super(`${endpoint}: ${message}`);
    this.name = 'BadResponseError';
    this.endpoint = endpoint;
  }
}

export function isClientError(err: unknown): err is ApiError | UnreachableError | OutcomeUnknownError | BadResponseError {
  return err instanceof ApiError || err instanceof UnreachableError || err instanceof OutcomeUnknownError || err instanceof BadResponseError;
}

/** A one-line message and an optional hint for any client error, for CLIs and logs. */
export function describeClientError(err: unknown): { message: string; hint?: string } | null {
  if (err instanceof ApiError) {
    if (err.status === 401) {
      return {
        message: 'the API rejected the token (401); pass --token or set OGEL_TOKEN',
        ...(err.tokenSent ? {} : { hint: 'no token was found in --token, OGEL_TOKEN or the state file' }),
      };
    }
    return { message: err.message, ...(err.hint ? { hint: err.hint } : {}) };
  }
  if (err instanceof UnreachableError) {
    return { message: `${err.message}; is the cluster running? start it with 'ogel up'` };
  }
  if (err instanceof OutcomeUnknownError) {
    return { message: err.message, hint: "check with 'ogel status' before retrying" };
  }
  if (err instanceof BadResponseError) {
    return { message: err.message, hint: 'is this URL an ogel admin API?' };
  }
  return null;
}

class AttemptError extends Error {
  /** True when the request may have reached the server. */
  readonly sent: boolean;
  constructor(reason: string, sent: boolean) {
    super(reason);
    this.sent = sent;
  }
}

interface RawAnswer {
  status: number;
  text: string;
}

function reasonOf(err: unknown): string {
  const seen = new Set<unknown>();
  let e: unknown = err;
  // Node reports happy-eyeballs failures as an AggregateError; look inside.
  while (e && typeof e === 'object' && !seen.has(e)) {
    seen.add(e);
    const code = (e as { code?: unknown }).code;
    switch (code) {
      case 'ECONNREFUSED':
        return 'connection refused';
      case 'ENOTFOUND':
      case 'EAI_AGAIN':
        return 'host not found';
      case 'EHOSTUNREACH':
      case 'ENETUNREACH':
        return 'host unreachable';
      case 'ECONNRESET':
        return 'connection reset';
      case 'EPIPE':
        return 'connection closed';
      case 'ETIMEDOUT':
        return 'connect timed out';
      default:
        break;
    }
    const inner = (e as { errors?: unknown[] }).errors?.[0] ?? (e as { cause?: unknown }).cause;
    if (inner === undefined) break;
    e = inner;
  }
  return err instanceof Error ? err.message : String(err);
}

function attempt(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  bodyText: string | undefined,
  timeoutMs: number,
): Promise<RawAnswer> {
  return new Promise<RawAnswer>((resolve, reject) => {
    let url: URL;
    try {
      url = new URL(base + path);
    } catch {
      reject(new AttemptError(`bad URL ${base}${path}`, false));
      return;
    }
    const mod = url.protocol === 'https:' ? https : http;
    let sent = false;
    let done = false;
    const finish = (fn: () => void): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      fn();
    };
    // agent: false gives a fresh connection per request, so 'connect' marks the
    // moment the request can reach the server (no stale keep-alive sockets).
    const req = mod.request(url, { method, headers, agent: false });
    const timer = setTimeout(() => {
      const reason = `timed out after ${timeoutMs} ms`;
      finish(() => reject(new AttemptError(reason, sent)));
      req.destroy();
    }, timeoutMs);
    req.on('socket', (socket) => {
      if (!socket.connecting) sent = true;
      else socket.once('connect', () => (sent = true));
    });
    req.on('error', (err) => finish(() => reject(new AttemptError(reasonOf(err), sent))));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes > RESPONSE_BYTES_MAX) {
          finish(() => reject(new AttemptError(`response larger than ${RESPONSE_BYTES_MAX} bytes`, true)));
          req.destroy();
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => finish(() => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') })));
      res.on('error', (err) => finish(() => reject(new AttemptError(reasonOf(err), true))));
      res.on('aborted', () => finish(() => reject(new AttemptError('connection closed mid-response', true))));
    });
    if (bodyText !== undefined) req.end(bodyText);
    else req.end();
  });
}

function snippet(text: string): string {
  const t = text.replace(/\s+/g, ' ').trim();
  return t.length > SNIPPET_CHARS_MAX ? `${t.slice(0, SNIPPET_CHARS_MAX)}...` : t;
}

function parseJson(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function errorFields(body: unknown): { code: string; message: string; hint: string | undefined } | null {
  if (typeof body !== 'object' || body === null) return null;
  const e = (body as { error?: unknown }).error;
  if (typeof e !== 'object' || e === null) return null;
  const { code, message, hint } = e as { code?: unknown; message?: unknown; hint?: unknown };
  if (typeof code !== 'string' || typeof message !== 'string') return null;
  return { code, message, hint: typeof hint === 'string' && hint !== '' ? hint : undefined };
}

/**
 * The answer checked against the contract: a daemon answering something else (an
 * older or broken one, or not an ogel API) gets a one-line error naming the
 * field, not a crash somewhere in the rendering.
 */
function checkAnswer<S extends z.ZodType>(schema: S, body: unknown, endpoint: string, what: string): z.output<S> {
  const r = schema.safeParse(body, { reportInput: true });
  // The body as it came, not r.data: the parse moves the fields a daemon added
  // after the known ones, and `--json` prints the answer as the API sent it. The
  // same value: the contract's answer schemas hold no defaults or transforms.
  if (r.success) return body as z.output<S>;
  const issue = r.error.issues[0]!;
  const field = issue.path.length === 0 ? 'the body' : `field '${issue.path.map(String).join('.')}'`;
  const why =
    issue.code === 'invalid_type' ? `expected ${issue.expected}, got ${issue.input === undefined ? 'nothing' : describe(issue.input)}` : issue.message;
  throw new BadResponseError(endpoint, `unexpected answer for ${what}: ${field}: ${why}`);
}

export class AdminClient {
  readonly endpoints: readonly string[];
  readonly timeoutMs: number;
  private readonly token: string | undefined;
  private readonly userAgent: string;
  /** The endpoint that gave the last answer (success or API error). */
  lastEndpoint: string | undefined;

  constructor(opts: AdminClientOptions) {
    if (opts.endpoints.length === 0) throw new Error('AdminClient: at least one endpoint is required');
    const timeoutMs = opts.timeoutMs ?? CLIENT_TIMEOUT_MS_DEFAULT;
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new Error(`AdminClient: timeoutMs must be a positive integer, got ${timeoutMs}`);
    this.endpoints = opts.endpoints.map((e) => e.replace(/\/+$/, ''));
    this.token = opts.token;
    this.timeoutMs = timeoutMs;
    this.userAgent = opts.userAgent ?? 'ogel-cli';
  }

  /** Sends one request with failover; resolves with the parsed JSON body of a 2xx answer. */
  async request<T = unknown>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const idempotent = opts.idempotent ?? method === 'GET';
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': this.userAgent };
    if (this.token !== undefined) headers['authorization'] = `Bearer ${this.token}`;
    let bodyText: string | undefined;
    if (opts.body !== undefined) {
      bodyText = JSON.stringify(opts.body);
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(bodyText));
    }
    const targets = opts.endpoint !== undefined ? [opts.endpoint.replace(/\/+$/, '')] : [...this.endpoints];
    const failures: EndpointFailure[] = [];
    let lastApiError: ApiError | undefined;
    for (const endpoint of targets) {
      let raw: RawAnswer;
      try {
        raw = await attempt(endpoint, method, path, headers, bodyText, timeoutMs);
      } catch (err) {
        if (!(err instanceof AttemptError)) throw err;
        if (err.sent && !idempotent) throw new OutcomeUnknownError(endpoint, err.message);
        failures.push({ endpoint, reason: err.message });
        continue;
      }
      const body = parseJson(raw.text);
      if (raw.status >= 200 && raw.status < 300) {
        if (body === undefined) throw new BadResponseError(endpoint, `answered HTTP ${raw.status} without a JSON body: ${snippet(raw.text)}`);
        this.lastEndpoint = endpoint;
        return body as T;
      }
      const fields = errorFields(body);
      const apiError = fields
        ? new ApiError(raw.status, fields.code, fields.message, fields.hint, endpoint, this.token !== undefined, failures)
        : new ApiError(
            raw.status,
            `http_${raw.status}`,
            `${endpoint} answered HTTP ${raw.status}${raw.text.trim() ? `: ${snippet(raw.text)}` : ''}`,
            undefined,
            endpoint,
            this.token !== undefined,
            failures,
          );
      const moveOn = (raw.status === 503 && fields?.code === 'no_leader') || (idempotent && (raw.status === 502 || raw.status === 503 || raw.status === 504));
      if (moveOn) {
        failures.push({ endpoint, reason: `${raw.status} ${fields?.code ?? ''}`.trim() });
        lastApiError = apiError;
        continue;
      }
      this.lastEndpoint = endpoint;
      throw apiError;
    }
    if (lastApiError !== undefined) {
      this.lastEndpoint = lastApiError.endpoint;
      throw new ApiError(
        lastApiError.status,
        lastApiError.code,
        lastApiError.message,
        lastApiError.hint,
        lastApiError.endpoint,
        lastApiError.tokenSent,
        failures,
      );
    }
    throw new UnreachableError(failures);
  }

  /** One request (with failover) whose 2xx answer is checked against `schema`. */
  private async call<S extends z.ZodType>(schema: S, method: string, path: string, opts: RequestOptions = {}): Promise<z.output<S>> {
    const body = await this.request(method, path, opts);
    return checkAnswer(schema, body, this.lastEndpoint ?? '', `${method} ${path}`);
  }

  async status(opts: { stale?: boolean; endpoint?: string; timeoutMs?: number } = {}): Promise<Status> {
    return this.call(Status, 'GET', `/v1/status${opts.stale ? '?stale=true' : ''}`, {
      ...(opts.endpoint !== undefined ? { endpoint: opts.endpoint } : {}),
      ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    });
  }

  async transferLeadership(to?: string): Promise<TransferResult> {
    return this.call(TransferResult, 'POST', '/v1/leadership/transfer', { body: to === undefined ? {} : { to } });
  }

  async members(): Promise<z.output<typeof MembersResponse>> {
    return this.call(MembersResponse, 'GET', '/v1/members');
  }

  async addMember(spec: AddMemberRequest): Promise<z.output<typeof AddMemberResponse>> {
    return this.call(AddMemberResponse, 'POST', '/v1/members', { body: spec });
  }

  async removeMember(id: string): Promise<z.output<typeof RemoveMemberResponse>> {
    return this.call(RemoveMemberResponse, 'DELETE', `/v1/members/${encodeURIComponent(id)}`);
  }

  async pause(reason?: string): Promise<PauseResult> {
    return this.call(PauseResult, 'POST', '/v1/pause', { body: reason === undefined ? {} : { reason }, idempotent: true });
  }

  async resume(): Promise<PauseResult> {
    return this.call(PauseResult, 'POST', '/v1/resume', { body: {}, idempotent: true });
  }

  async history(): Promise<z.output<typeof HistoryResponse>> {
    return this.call(HistoryResponse, 'GET', '/v1/history');
  }

  async proxyPools(): Promise<ProxyPools> {
    return this.call(ProxyPools, 'GET', '/v1/proxy/pools');
  }

  /** The cluster config, secrets redacted; its shape is src/config/schema.ts's. */
  async config(): Promise<z.output<typeof ConfigResponse>> {
    return this.call(ConfigResponse, 'GET', '/v1/config');
  }

  async backups(): Promise<z.output<typeof BackupsResponse>> {
    return this.call(BackupsResponse, 'GET', '/v1/backups');
  }

  async backup(id: string): Promise<z.output<typeof BackupResponse>> {
    return this.call(BackupResponse, 'GET', `/v1/backups/${encodeURIComponent(id)}`);
  }

  /** Not idempotent: a retry after a lost answer could start a second backup (one runs at a time, so it is refused). */
  async createBackup(kind: 'full' | 'incremental' | 'auto'): Promise<z.output<typeof BackupResponse>> {
    return this.call(BackupResponse, 'POST', '/v1/backups', { body: { kind } });
  }

  async deleteBackup(id: string): Promise<z.output<typeof DeleteBackupResponse>> {
    return this.call(DeleteBackupResponse, 'DELETE', `/v1/backups/${encodeURIComponent(id)}`);
  }

  /** Answers when the verdict is in: a restore test can take minutes (timeoutMs). */
  async verifyBackup(id: string, restoreTest: boolean, timeoutMs: number): Promise<z.output<typeof VerifyBackupResponse>> {
    return this.call(VerifyBackupResponse, 'POST', `/v1/backups/${encodeURIComponent(id)}/verify`, { body: { restoreTest }, timeoutMs });
  }

  /** Not idempotent: after a lost answer a retry would find the name taken (409) whether or not the first one made it. */
  async createRestorePoint(name: string): Promise<RestorePointResponse> {
    return this.call(RestorePointResponse, 'POST', '/v1/restore-points', { body: { name } });
  }

  async restorePoints(): Promise<RestorePointsResponse> {
    return this.call(RestorePointsResponse, 'GET', '/v1/restore-points');
  }

  async tenants(): Promise<z.output<typeof TenantsResponse>> {
    return this.call(TenantsResponse, 'GET', '/v1/tenants');
  }

  async tenant(name: string): Promise<TenantResponse> {
    return this.call(TenantResponse, 'GET', `/v1/tenants/${encodeURIComponent(name)}`);
  }

  async createTenant(req: CreateTenantRequest): Promise<CreateTenantResult> {
    return this.call(CreateTenantResult, 'POST', '/v1/tenants', { body: req });
  }

  /** Each limit is set to a value, not changed by an amount: a retry does no harm. */
  async setTenantLimits(name: string, req: SetTenantLimitsRequest): Promise<TenantResponse> {
    return this.call(TenantResponse, 'PATCH', `/v1/tenants/${encodeURIComponent(name)}`, { body: req, idempotent: true });
  }

  async deleteTenant(name: string): Promise<z.output<typeof DeleteTenantResponse>> {
    return this.call(DeleteTenantResponse, 'DELETE', `/v1/tenants/${encodeURIComponent(name)}`);
  }

  /** Answers once the new primary takes writes: the server's bound is 60 s, so wait a little longer. */
  async switchover(to?: string): Promise<SwitchoverResult> {
    return this.call(SwitchoverResult, 'POST', '/v1/switchover', {
      body: to === undefined ? {} : { to },
      timeoutMs: Math.max(this.timeoutMs, ROLE_CHANGE_TIMEOUT_MS),
    });
  }

  /** Records a switchover for later (ISO 8601 `scheduledAt`); answers at once. */
  async scheduleSwitchover(opts: { to?: string | undefined; scheduledAt: string }): Promise<ScheduleResult> {
    const req = { ...(opts.to !== undefined ? { to: opts.to } : {}), scheduledAt: opts.scheduledAt };
    return this.call(ScheduleResult, 'POST', '/v1/switchover', { body: req });
  }

  /** Cancels the scheduled switchover; repeating it is harmless (cancelled: false the second time). */
  async cancelScheduledSwitchover(): Promise<CancelResult> {
    return this.call(CancelResult, 'DELETE', '/v1/switchover', { idempotent: true });
  }

  async failover(opts: { to?: string | undefined; force: boolean }): Promise<FailoverResult> {
    const req = { ...(opts.to !== undefined ? { to: opts.to } : {}), force: opts.force };
    return this.call(FailoverResult, 'POST', '/v1/failover', { body: req, timeoutMs: Math.max(this.timeoutMs, ROLE_CHANGE_TIMEOUT_MS) });
  }

  async reinit(node: string): Promise<ReinitResult> {
    return this.call(ReinitResult, 'POST', `/v1/nodes/${encodeURIComponent(node)}/reinit`, { body: {}, idempotent: true });
  }
}

const ROLE_CHANGE_TIMEOUT_MS = 65_000;
