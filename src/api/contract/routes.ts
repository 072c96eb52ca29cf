// The admin API's route table: every endpoint with its auth, its request body
// and its answer. The server registers exactly these (src/api/server.ts) and the
// OpenAPI document is built from them (openapi.ts); a test checks both agree.

import type { z } from 'zod';
import * as Q from './requests.js';
import * as R from './responses.js';

export type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

export interface RouteSpec {
  method: Method;
  /** With `:name` for a path parameter, as the server's router matches it. */
  path: string;
  /** Needs the bearer token (api.token). */
  auth: boolean;
  summary: string;
  /** JSON body; absent: none is read. */
  request?: z.ZodType;
  /** The 200 answer's JSON body; absent: not JSON (see `contentType`). */
  response?: z.ZodType;
  /** Non-JSON answers (metrics). */
  contentType?: string;
  /** Query parameters the route reads. */
  query?: readonly { name: string; description: string }[];
  /** Answers 503 (with the same body) when the check fails: health checks for load balancers. */
  check?: boolean;
  /** Only daemons call it (agents, the leader's controllers). */
  internal?: boolean;
}

const STALE = [{ name: 'stale', description: "true: answer from this node's state without a ReadIndex barrier (may lag)" }];

/** Keyed by "METHOD /path": the server registers routes by these keys. */
export const ROUTES = {
  'GET /health': {
    method: 'GET',
    path: '/health',
    auth: false,
    summary: "this node's Raft role and Postgres health (no token: load balancers)",
    response: R.Health,
  },
  'GET /leader': { method: 'GET', path: '/leader', auth: false, check: true, summary: '200 on the Raft leader, else 503', response: R.LeaderCheck },
  'GET /primary': {
    method: 'GET',
    path: '/primary',
    auth: false,
    check: true,
    summary: '200 on the writable primary of the current generation, else 503',
    response: R.PrimaryCheck,
  },
  'GET /replica': {
    method: 'GET',
    path: '/replica',
    auth: false,
    check: true,
    summary: '200 on a streaming standby within ?lag bytes, else 503',
    response: R.ReplicaCheck,
    query: [{ name: 'lag', description: 'the most replay lag in bytes to still answer 200' }],
  },
  'GET /metrics': { method: 'GET', path: '/metrics', auth: false, summary: 'Prometheus metrics', contentType: 'text/plain; version=0.0.4' },
  'GET /v1/openapi.json': { method: 'GET', path: '/v1/openapi.json', auth: false, summary: 'this document', contentType: 'application/json' },
  'GET /v1/status': {
    method: 'GET',
    path: '/v1/status',
    auth: true,
    summary: 'the cluster: members, Raft progress, Postgres roles and lag, lease, maintenance',
    response: R.Status,
    query: STALE,
  },
  'POST /v1/leadership/transfer': {
    method: 'POST',
    path: '/v1/leadership/transfer',
    auth: true,
    summary: 'hand Raft leadership to another voter',
    request: Q.TransferRequest,
    response: R.TransferResult,
  },
  'GET /v1/members': { method: 'GET', path: '/v1/members', auth: true, summary: 'the members with their Raft progress', response: R.MembersResponse },
  'POST /v1/members': {
    method: 'POST',
    path: '/v1/members',
    auth: true,
    summary: 'add a member: a learner first, promoted to voter once caught up',
    request: Q.AddMemberRequest,
    response: R.AddMemberResponse,
  },
  'DELETE /v1/members/:id': { method: 'DELETE', path: '/v1/members/:id', auth: true, summary: 'remove a member', response: R.RemoveMemberResponse },
  'POST /v1/pause': {
    method: 'POST',
    path: '/v1/pause',
    auth: true,
    summary: 'maintenance mode: no automatic failover',
    request: Q.PauseRequest,
    response: R.PauseResult,
  },
  'POST /v1/resume': { method: 'POST', path: '/v1/resume', auth: true, summary: 'leave maintenance mode', request: Q.EmptyRequest, response: R.PauseResult },
  'POST /v1/internal/commands': {
    method: 'POST',
    path: '/v1/internal/commands',
    auth: true,
    internal: true,
    summary: "propose a state-machine command from another daemon's agent (forwarded to the leader)",
    request: Q.InternalCommandRequest,
    response: R.ApplyResultBody,
  },
  'POST /v1/internal/pg/stop-receiver': {
    method: 'POST',
    path: '/v1/internal/pg/stop-receiver',
    auth: true,
    internal: true,
    summary: "the failover fence on this node's Postgres: stop the WAL receiver, report the flushed LSN",
    request: Q.StopReceiverRequest,
    response: R.StopReceiverResult,
  },
  'GET /v1/proxy/pools': {
    method: 'GET',
    path: '/v1/proxy/pools',
    auth: true,
    summary: "this node's proxy: clients, pools and counters",
    response: R.ProxyPools,
  },
  'GET /v1/internal/pg/replication': {
    method: 'GET',
    path: '/v1/internal/pg/replication',
    auth: true,
    internal: true,
    summary: "this node's Postgres as a primary sees its standbys (pg_stat_replication)",
    response: R.ReplicationAnswer,
  },
  'POST /v1/internal/pg/step-down': {
    method: 'POST',
    path: '/v1/internal/pg/step-down',
    auth: true,
    internal: true,
    summary: "the old primary's half of a switchover",
    request: Q.StepDownRequest,
    response: R.StepDownResult,
  },
  'POST /v1/switchover': {
    method: 'POST',
    path: '/v1/switchover',
    auth: true,
    summary: 'planned switchover, now (answers once the new primary takes writes) or scheduled',
    request: Q.SwitchoverRequest,
    response: R.SwitchoverResponse,
  },
  'DELETE /v1/switchover': { method: 'DELETE', path: '/v1/switchover', auth: true, summary: 'cancel the scheduled switchover', response: R.CancelResult },
  'POST /v1/failover': {
    method: 'POST',
    path: '/v1/failover',
    auth: true,
    summary: 'promote a standby without the old primary',
    request: Q.FailoverRequest,
    response: R.FailoverResult,
  },
  'POST /v1/nodes/:id/reinit': {
    method: 'POST',
    path: '/v1/nodes/:id/reinit',
    auth: true,
    summary: 're-clone a standby from the primary',
    request: Q.EmptyRequest,
    response: R.ReinitResult,
  },
  'GET /v1/history': { method: 'GET', path: '/v1/history', auth: true, summary: 'promotions, oldest first', response: R.HistoryResponse },
  'GET /v1/config': { method: 'GET', path: '/v1/config', auth: true, summary: 'the cluster config, secrets redacted', response: R.ConfigResponse },
  'GET /v1/backups': { method: 'GET', path: '/v1/backups', auth: true, summary: 'the base backups in the index, oldest first', response: R.BackupsResponse },
  'GET /v1/backups/:id': {
    method: 'GET',
    path: '/v1/backups/:id',
    auth: true,
    summary: 'one backup, and while it runs how far it has streamed',
    response: R.BackupResponse,
  },
  'GET /v1/internal/backups/:id/progress': {
    method: 'GET',
    path: '/v1/internal/backups/:id/progress',
    auth: true,
    internal: true,
    summary: 'how far a backup running on this node has streamed',
    response: R.BackupProgressResponse,
  },
  'POST /v1/backups': {
    method: 'POST',
    path: '/v1/backups',
    auth: true,
    summary: 'start a base backup now (answers once it is recorded as running; poll GET /v1/backups/:id)',
    request: Q.CreateBackupRequest,
    response: R.BackupResponse,
  },
  'DELETE /v1/backups/:id': {
    method: 'DELETE',
    path: '/v1/backups/:id',
    auth: true,
    summary: 'forget a backup (refused while it runs or while an incremental or a compute depends on it); its objects are deleted shortly after',
    response: R.DeleteBackupResponse,
  },
  'POST /v1/backups/:id/verify': {
    method: 'POST',
    path: '/v1/backups/:id/verify',
    auth: true,
    summary: 'verify a complete backup now (answers with the verdict, which is also recorded; a restore test can take minutes)',
    request: Q.VerifyBackupRequest,
    response: R.VerifyBackupResponse,
  },
  'GET /v1/restore-points': {
    method: 'GET',
    path: '/v1/restore-points',
    auth: true,
    summary: "the named restore points recorded in the object store, oldest first (targets of 'ogel restore --target-name')",
    response: R.RestorePointsResponse,
  },
  'POST /v1/restore-points': {
    method: 'POST',
    path: '/v1/restore-points',
    auth: true,
    summary: 'make a named restore point on the primary (pg_create_restore_point) and record it in the object store; 409 for a name already recorded',
    request: Q.CreateRestorePointRequest,
    response: R.RestorePointResponse,
  },
  'GET /v1/tenants': { method: 'GET', path: '/v1/tenants', auth: true, summary: 'the tenants that are not deleted', response: R.TenantsResponse },
  'GET /v1/tenants/:name': { method: 'GET', path: '/v1/tenants/:name', auth: true, summary: 'one tenant', response: R.TenantResponse },
  'POST /v1/tenants': {
    method: 'POST',
    path: '/v1/tenants',
    auth: true,
    summary: 'create a tenant: its role and database on the primary, and a connection URL',
    request: Q.CreateTenantRequest,
    response: R.CreateTenantResult,
  },
  'PATCH /v1/tenants/:name': {
    method: 'PATCH',
    path: '/v1/tenants/:name',
    auth: true,
    summary: "change some of a tenant's limits",
    request: Q.SetTenantLimitsRequest,
    response: R.TenantResponse,
  },
  'DELETE /v1/tenants/:name': {
    method: 'DELETE',
    path: '/v1/tenants/:name',
    auth: true,
    summary: 'delete a tenant and drop its database',
    response: R.DeleteTenantResponse,
  },
} as const satisfies Record<string, RouteSpec>;

export type RouteKey = keyof typeof ROUTES;
