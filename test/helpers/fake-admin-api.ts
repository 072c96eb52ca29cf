// A fake of the admin API (docs/admin-api.md) for the CLI's tests (src/cli/cli.test.ts): three small
// HTTP servers sharing one in-memory cluster state. It answers as the contract
// says (routes, bodies, error shapes and statuses, bearer auth); it implements no
// Raft. Knobs let tests make a node answer 503 no_leader or apply the maintenance
// flag late, as a lagging follower would.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { checkScheduledAt } from '../../src/controllers/switchover-schedule.js';
import { restorePointProblem } from '../../src/archive/pitr-target.js';
import type { HistoryEntry, Member, ProxyPools, RestorePoint, Status, Tenant } from '../../src/api/contract/index.js';

const BODY_BYTES_MAX = 1024 * 1024;
const ADDRESS_RE = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/;
const TENANT_NAME_RE = /^[a-z][a-z0-9_]{0,62}$/;

export interface FakeClusterOptions {
  token?: string;
  nodes?: string[];
  cluster?: string;
}

export interface RecordedRequest {
  node: string;
  method: string;
  url: string;
  authorization: string | undefined;
  body: unknown;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

interface NodeState {
  id: string;
  server: http.Server;
  url: string;
  /** The maintenance flag as this node has applied it (what ?stale=true shows). */
  maintenance: { paused: boolean; reason: string | null };
  /** Delay before this node applies a maintenance change. */
  applyDelayMs: number;
  /** When true, /v1/* answers 503 no_leader (a node cut off from the quorum). */
  noLeader: boolean;
}

/** The proxy's defaultPoolSize the fake reports with each tenant. */
export const FAKE_DEFAULT_POOL_SIZE = 20;

export class FakeCluster {
  readonly token: string;
  readonly name: string;
  readonly nodes: NodeState[] = [];
  readonly requests: RecordedRequest[] = [];
  leader: string | null;
  term = 4;
  commitIndex = 120;
  members: Member[] = [];
  maintenance: { paused: boolean; reason: string | null } = { paused: false, reason: null };
  postgres: Status['postgres'] = {
    generation: 0,
    primary: null,
    lease: null,
    nodes: {},
    syncStandbys: [],
    syncQuorum: 0,
    failoverBlocked: null,
    replication: null,
  };
  history: HistoryEntry[] = [];
  tenants = new Map<string, Tenant>();
  /** Status's archive section; absent (as from an older daemon) until a test sets it. */
  archive: Status['archive'];
  restorePoints: RestorePoint[] = [];
  transferDurationMs = 41;
  private readonly timers = new Set<NodeJS.Timeout>();

  private constructor(opts: FakeClusterOptions) {
    this.token = opts.token ?? 'test-token';
    this.name = opts.cluster ?? 'ogel';
    this.leader = (opts.nodes ?? ['n1'])[0] ?? null;
  }

  static async start(opts: FakeClusterOptions = {}): Promise<FakeCluster> {
    const ids = opts.nodes ?? ['n1', 'n2', 'n3'];
    const c = new FakeCluster({ ...opts, nodes: ids });
    for (const [i, id] of ids.entries()) {
      const server = http.createServer((req, res) => void c.handle(id, req, res));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const port = (server.address() as AddressInfo).port;
      c.nodes.push({ id, server, url: `http://127.0.0.1:${port}`, maintenance: { paused: false, reason: null }, applyDelayMs: 0, noLeader: false });
      c.members.push({
        id,
        addresses: { raft: `127.0.0.1:${7001 + i}`, api: `127.0.0.1:${port}`, proxy: `127.0.0.1:${6432 + i}`, postgres: `127.0.0.1:${5433 + i}` },
        raft: { role: id === c.leader ? 'leader' : 'follower', voter: true, matchIndex: 120 - i, lagEntries: i, lastContactMs: id === c.leader ? 0 : 10 * i },
        health: { healthy: true, reportedAtMs: 1763700000000 },
      });
    }
    c.history.push({ generation: 1, node: ids[0] ?? 'n1', reason: 'bootstrap', lsn: '0/3000148', atMs: 1763700000000 });
    return c;
  }

  /**
   * A running Postgres cluster as the daemon reports it: the first node primary of
   * generation `generation`, the others quorum standbys with the primary's live
   * lag figures (the second one is behind, the others caught up).
   */
  setPostgresRunning(generation = 3): void {
    const ids = this.members.map((m) => m.id);
    const primary = ids[0] ?? 'n1';
    const standbys = ids.slice(1);
    const nodes: Status['postgres']['nodes'] = {};
    for (const [i, id] of ids.entries()) {
      const isPrimary = id === primary;
      const replayed = isPrimary || i !== 1 ? '0/5000060' : '0/4FE0000';
      nodes[id] = {
        node: id,
        role: isPrimary ? 'primary' : 'standby',
        reportedRole: isPrimary ? 'primary' : 'standby',
        timeline: 2,
        lsn: { received: isPrimary ? '0/0' : '0/5000060', flushed: '0/5000060', replayed },
        reportedAtMs: 1763700000000,
        replication: isPrimary
          ? null
          : i === 1
            ? { source: 'live', state: 'streaming', syncState: 'quorum', lagBytes: 131_168, lagSeconds: 0.042 }
            : { source: 'live', state: 'streaming', syncState: 'quorum', lagBytes: 0, lagSeconds: null },
      };
    }
    this.postgres = {
      generation,
      primary,
      lease: { holder: primary, generation, durationMs: 3000, renewalSeq: 41, remainingMs: 2350 },
      nodes,
      syncStandbys: standbys,
      syncQuorum: standbys.length > 0 ? 1 : 0,
      failoverBlocked: null,
      replication: { source: 'live', from: primary, currentLsn: '0/5000060', measuredAtMs: 1763700000000, error: null },
    };
  }

  get urls(): string[] {
    return this.nodes.map((n) => n.url);
  }

  node(id: string): NodeState {
    const n = this.nodes.find((x) => x.id === id);
    if (n === undefined) throw new Error(`no fake node ${id}`);
    return n;
  }

  /** The body GET /v1/status returns on node `id`. */
  statusBody(id: string, stale: boolean): Status {
    return {
      cluster: this.name,
      node: id,
      leader: this.leader,
      term: this.term,
      commitIndex: this.commitIndex,
      appliedIndex: this.commitIndex,
      stale,
      members: this.members.map((m) => ({
        ...m,
        ...(m.raft ? { raft: { ...m.raft, role: m.id === this.leader ? 'leader' : m.raft.voter ? 'follower' : 'learner' } } : {}),
      })),
      postgres: this.postgres,
      maintenance: stale ? { ...this.node(id).maintenance } : { ...this.maintenance },
      ...(this.archive !== undefined ? { archive: this.archive } : {}),
    };
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    await Promise.all(
      this.nodes.map(
        (n) =>
          new Promise<void>((resolve) => {
            n.server.closeAllConnections();
            n.server.close(() => resolve());
          }),
      ),
    );
  }

  private setMaintenance(paused: boolean, reason: string | null): void {
    this.maintenance = { paused, reason };
    this.commitIndex++;
    for (const n of this.nodes) {
      const apply = (): void => {
        n.maintenance = { paused, reason };
      };
      if (n.applyDelayMs <= 0) apply();
      else {
        const t = setTimeout(() => {
          this.timers.delete(t);
          apply();
        }, n.applyDelayMs);
        this.timers.add(t);
      }
    }
  }

  private async handle(id: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const send = (status: number, body: unknown): void => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    let body: unknown;
    try {
      const text = await readBody(req);
      const url = new URL(req.url ?? '/', 'http://fake');
      if (text.trim() !== '') {
        try {
          body = JSON.parse(text) as unknown;
        } catch {
          throw new HttpError(400, 'invalid_body', 'body is not valid JSON', 'send a JSON object');
        }
      }
      this.requests.push({ node: id, method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization, body });
      const [status, answer] = this.route(id, req.method ?? 'GET', url, req.headers.authorization, body);
      send(status, answer);
    } catch (err) {
      if (err instanceof HttpError) send(err.status, { error: { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) } });
      else send(500, { error: { code: 'internal', message: String(err) } });
    }
  }

  private route(id: string, method: string, url: URL, authorization: string | undefined, body: unknown): [number, unknown] {
    const path = url.pathname;
    const allow = (...methods: string[]): void => {
      if (!methods.includes(method)) throw new HttpError(405, 'method_not_allowed', `${method} ${path} is not allowed`, `use ${methods.join(' or ')}`);
    };
    // Health and metrics: no token.
    if (path === '/health' || path === '/leader' || path === '/primary' || path === '/replica') {
      allow('GET');
      const role = id === this.leader ? 'leader' : 'follower';
      const ok = path === '/health' || (path === '/leader' && id === this.leader);
      return [ok ? 200 : 503, { node: id, role, term: this.term }];
    }
    if (path === '/metrics') throw new HttpError(404, 'not_found', 'the fake serves no metrics');
    if (!path.startsWith('/v1/')) throw new HttpError(404, 'not_found', `no such path: ${path}`);
    if (authorization === undefined || authorization === '') {
      throw new HttpError(
        401,
        'unauthorized',
        'missing bearer token',
        "send 'Authorization: Bearer <token>' (the api.token of the cluster config, or OGEL_TOKEN)",
      );
    }
    if (authorization !== `Bearer ${this.token}`) {
      throw new HttpError(
        401,
        'unauthorized',
        'wrong bearer token',
        "send 'Authorization: Bearer <token>' (the api.token of the cluster config, or OGEL_TOKEN)",
      );
    }
    const node = this.node(id);
    const stale = url.searchParams.get('stale');
    if (stale !== null && stale !== 'true' && stale !== 'false') {
      throw new HttpError(400, 'invalid_query', `query 'stale': expected true or false, got '${stale}'`);
    }
    if (node.noLeader && stale !== 'true') {
      throw new HttpError(503, 'no_leader', `${id} sees no Raft leader`, 'try another node, or use ?stale=true for a local read');
    }
    const known = (): string => `known nodes: ${this.members.map((m) => m.id).join(', ')}`;
    const obj = (): Record<string, unknown> => {
      if (body === undefined) return {};
      if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'invalid_body', 'body: expected a JSON object');
      return body as Record<string, unknown>;
    };
    const onlyFields = (o: Record<string, unknown>, fields: string[]): void => {
      for (const k of Object.keys(o))
        if (!fields.includes(k)) throw new HttpError(400, 'invalid_body', `field '${k}': unknown field`, `allowed: ${fields.join(', ')}`);
    };

    if (path === '/v1/status') {
      allow('GET');
      return [200, this.statusBody(id, stale === 'true')];
    }
    if (path === '/v1/leadership/transfer') {
      allow('POST');
      const o = obj();
      onlyFields(o, ['to']);
      let to = o['to'];
      if (to !== undefined && (typeof to !== 'string' || !this.members.some((m) => m.id === to))) {
        throw new HttpError(400, 'invalid_body', `field 'to': expected a node id, got ${JSON.stringify(to)}`, known());
      }
      const from = this.leader ?? '';
      if (to === from) throw new HttpError(409, 'conflict', `${from} is already the leader`);
      to ??= this.members.find((m) => m.id !== from && m.raft?.voter)?.id;
      this.leader = to as string;
      this.term++;
      return [200, { from, to, durationMs: this.transferDurationMs }];
    }
    if (path === '/v1/members') {
      allow('GET', 'POST');
      if (method === 'GET') return [200, { members: this.statusBody(id, false).members }];
      const o = obj();
      onlyFields(o, ['id', 'raft', 'api', 'proxy', 'postgres']);
      if (typeof o['id'] !== 'string' || o['id'] === '')
        throw new HttpError(400, 'invalid_body', `field 'id': expected a node id, got ${JSON.stringify(o['id'])}`);
      for (const f of ['raft', 'api', 'proxy', 'postgres']) {
        if (typeof o[f] !== 'string' || !ADDRESS_RE.test(o[f]))
          throw new HttpError(400, 'invalid_body', `field '${f}': expected host:port, got ${JSON.stringify(o[f])}`);
      }
      if (this.members.some((m) => m.id === o['id'])) throw new HttpError(409, 'conflict', `member ${String(o['id'])} already exists`);
      const m: Member = {
        id: o['id'],
        addresses: { raft: String(o['raft']), api: String(o['api']), proxy: String(o['proxy']), postgres: String(o['postgres']) },
        raft: { role: 'follower', voter: true, matchIndex: this.commitIndex, lagEntries: 0, lastContactMs: 5 },
        health: { healthy: true, reportedAtMs: 1763700000000 },
      };
      this.members.push(m);
      return [200, { member: m }];
    }
    const memberMatch = /^\/v1\/members\/([^/]+)$/.exec(path);
    if (memberMatch) {
      allow('DELETE');
      const mid = decodeURIComponent(memberMatch[1] ?? '');
      if (!this.members.some((m) => m.id === mid)) throw new HttpError(404, 'not_found', `no member ${mid}`, known());
      this.members = this.members.filter((m) => m.id !== mid);
      return [200, { removed: mid }];
    }
    if (path === '/v1/pause') {
      allow('POST');
      const o = obj();
      onlyFields(o, ['reason']);
      if (o['reason'] !== undefined && typeof o['reason'] !== 'string')
        throw new HttpError(400, 'invalid_body', `field 'reason': expected a string, got ${JSON.stringify(o['reason'])}`);
      const reason = (o['reason'] as string | undefined) ?? null;
      this.setMaintenance(true, reason);
      return [200, { paused: true, reason }];
    }
    if (path === '/v1/resume') {
      allow('POST');
      onlyFields(obj(), []);
      this.setMaintenance(false, null);
      return [200, { paused: false }];
    }
    if (path === '/v1/switchover') {
      allow('POST', 'DELETE');
      const pg = this.postgres;
      if (method === 'DELETE') {
        const cancelled = pg.scheduledSwitchover !== null && pg.scheduledSwitchover !== undefined;
        this.postgres = { ...pg, scheduledSwitchover: null };
        return [200, { cancelled }];
      }
      const o = obj();
      onlyFields(o, ['to', 'scheduledAt']);
      const to = o['to'];
      if (to !== undefined && (typeof to !== 'string' || !this.members.some((m) => m.id === to))) {
        throw new HttpError(400, 'invalid_body', `field 'to': ${JSON.stringify(to)} is not a member`, known());
      }
      if (to !== undefined && to === pg.primary) throw new HttpError(400, 'invalid_body', `field 'to': ${String(to)} is already the primary`, 'name a standby');
      if (pg.primary === null)
        throw new HttpError(409, 'conflict', `there is no primary holding a lease in generation ${pg.generation}`, 'use ogel failover to promote a standby');
      const target = (to as string | undefined) ?? null;
      if (o['scheduledAt'] === undefined) {
        const next = target ?? Object.keys(pg.nodes).find((id) => id !== pg.primary) ?? pg.primary;
        const from = pg.primary;
        this.postgres = { ...pg, primary: next, generation: pg.generation + 1, scheduledSwitchover: null };
        return [200, { from, to: next, generation: pg.generation + 1, pauseMs: 120, stepDown: null }];
      }
      if (typeof o['scheduledAt'] !== 'string')
        throw new HttpError(400, 'invalid_body', `field 'scheduledAt': expected a string, got ${JSON.stringify(o['scheduledAt'])}`);
      const check = checkScheduledAt(o['scheduledAt'], Date.now());
      if (!check.ok) throw new HttpError(400, 'invalid_body', `field 'scheduledAt': ${check.message}`);
      if (pg.scheduledSwitchover)
        throw new HttpError(
          409,
          'conflict',
          `a switchover is already scheduled (notBeforeMs ${pg.scheduledSwitchover.notBeforeMs}); cancel it first (notBeforeMs: null)`,
        );
      const at = new Date(check.notBeforeMs).toISOString();
      this.postgres = { ...pg, scheduledSwitchover: { to: target, notBeforeMs: check.notBeforeMs, requestedAtMs: Date.now(), at } };
      return [200, { scheduled: { to: target, at, notBeforeMs: check.notBeforeMs } }];
    }
    if (path === '/v1/proxy/pools') {
      allow('GET');
      return [200, fakeProxyPools(id)];
    }
    if (path === '/v1/history') {
      allow('GET');
      return [200, { history: this.history }];
    }
    if (path === '/v1/config') {
      allow('GET');
      return [200, { cluster: { name: this.name }, api: { token: '<redacted>' }, nodes: this.members.map((m) => ({ id: m.id, ...m.addresses })) }];
    }
    if (path === '/v1/restore-points') {
      allow('GET', 'POST');
      if (method === 'GET') return [200, { store: 'fs store at /srv/ogel (storage.fs.dir)', restorePoints: this.restorePoints }];
      const o = obj();
      onlyFields(o, ['name']);
      const name = o['name'];
      if (typeof name !== 'string') throw new HttpError(400, 'invalid_body', `field 'name': expected a string, got ${JSON.stringify(name)}`);
      const problem = restorePointProblem(name);
      if (problem !== null) throw new HttpError(400, 'invalid_body', `field 'name': ${problem}`, 'e.g. {"name": "before-migration-42"}');
      const taken = this.restorePoints.find((p) => p.name === name);
      if (taken)
        throw new HttpError(
          409,
          'conflict',
          `field 'name': restore point "${name}" already exists (made ${taken.at} at LSN ${taken.lsn} on timeline ${taken.timeline})`,
          'pick another name',
        );
      const atMs = Date.parse('2026-12-08T04:00:12Z') + this.restorePoints.length * 1000;
      const p: RestorePoint = {
        name,
        lsn: `0/${(0x3000148 + this.restorePoints.length * 0x100).toString(16).toUpperCase()}`,
        timeline: 2,
        atMs,
        at: new Date(atMs).toISOString(),
      };
      this.restorePoints.push(p);
      return [200, { restorePoint: p }];
    }
    if (path === '/v1/tenants') {
      allow('GET', 'POST');
      if (method === 'GET') return [200, { tenants: [...this.tenants.values()] }];
      const o = obj();
      onlyFields(o, ['name', 'password', 'limits']);
      const name = o['name'];
      if (typeof name !== 'string' || !TENANT_NAME_RE.test(name)) {
        throw new HttpError(
          400,
          'invalid_body',
          `field 'name': expected a lowercase identifier, got ${JSON.stringify(name)}`,
          'use a-z, 0-9 and _, starting with a letter',
        );
      }
      if (o['password'] !== undefined && (typeof o['password'] !== 'string' || o['password'] === ''))
        throw new HttpError(400, 'invalid_body', "field 'password': expected a non-empty string");
      const limits = (o['limits'] ?? {}) as Record<string, unknown>;
      const maxConnections = limits['maxConnections'] ?? 20;
      if (typeof maxConnections !== 'number' || !Number.isInteger(maxConnections) || maxConnections < 1) {
        throw new HttpError(400, 'invalid_body', `field 'limits.maxConnections': expected a positive integer, got ${JSON.stringify(maxConnections)}`);
      }
      if (this.tenants.has(name)) throw new HttpError(409, 'conflict', `tenant name '${name}' is taken`, 'pick another name');
      const tenant: Tenant = {
        id: `t${this.tenants.size + 1}`,
        name,
        database: name,
        role: name,
        state: 'active',
        limits: { maxConnections, rateLimitPerSec: 0, poolSize: null },
        defaultPoolSize: FAKE_DEFAULT_POOL_SIZE,
        placement: null,
        createdAtMs: 1763700000000,
      };
      this.tenants.set(name, tenant);
      const password = typeof o['password'] === 'string' ? o['password'] : 'generated-secret';
      return [200, { tenant, password, url: `postgresql://${name}:${password}@127.0.0.1:6432/${name}` }];
    }
    const tenantMatch = /^\/v1\/tenants\/([^/]+)$/.exec(path);
    if (tenantMatch) {
      allow('GET', 'PATCH', 'DELETE');
      const name = decodeURIComponent(tenantMatch[1] ?? '');
      const t = this.tenants.get(name);
      if (t === undefined) throw new HttpError(404, 'not_found', `no tenant named '${name}'`, "list tenants with 'ogel tenants list'");
      if (method === 'GET') return [200, { tenant: t }];
      if (method === 'PATCH') {
        const o = obj();
        onlyFields(o, ['limits']);
        const change = o['limits'];
        if (typeof change !== 'object' || change === null || Array.isArray(change))
          throw new HttpError(400, 'invalid_body', "field 'limits': expected an object");
        const l = change as Record<string, unknown>;
        onlyFields(l, ['poolSize', 'poolMode', 'maxConnections', 'rateLimitPerSec']);
        const poolMode = l['poolMode'];
        if (poolMode !== undefined && poolMode !== null && poolMode !== 'session' && poolMode !== 'transaction')
          throw new HttpError(400, 'invalid_body', `field 'limits.poolMode': ${JSON.stringify(poolMode)} is not a pool mode`);
        const poolSize = l['poolSize'];
        if (poolSize !== undefined && poolSize !== null && (typeof poolSize !== 'number' || !Number.isInteger(poolSize) || poolSize < 1 || poolSize > 10_000)) {
          throw new HttpError(
            400,
            'invalid_body',
            `field 'limits.poolSize': expected an integer from 1 to 10000 (server connections per pool, or null for the proxy's defaultPoolSize), got ${JSON.stringify(poolSize)}`,
          );
        }
        const updated: Tenant = { ...t, limits: { ...t.limits, ...l } };
        this.tenants.set(name, updated);
        return [200, { tenant: updated }];
      }
      this.tenants.delete(name);
      return [200, { deleted: name }];
    }
    throw new HttpError(404, 'not_found', `no such path: ${path}`);
  }
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    req.on('data', (c: Buffer) => {
      bytes += c.length;
      if (bytes > BODY_BYTES_MAX) {
        reject(new HttpError(413, 'body_too_large', 'body over 1 MiB'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** What a node's proxy reports: one tenant's pool on the primary, busy. */
function fakeProxyPools(node: string): ProxyPools {
  // More than the contract promises, as the real proxy reports: clients must ignore the rest.
  const body = {
    node,
    address: `127.0.0.1:6432`,
    mode: 'transaction',
    defaultPoolSize: 20,
    clients: { total: 7, maxClientConnections: 1000, byTenant: { acme: 7 } },
    pools: [
      {
        node: 'n1',
        host: '127.0.0.1',
        port: 5432,
        generation: 3,
        primary: true,
        database: 'acme',
        role: 'acme',
        size: 5,
        active: 5,
        idle: 0,
        connecting: 0,
        waiting: 2,
        maxWaitMs: 12.6,
        served: 1042,
        waits: 9,
        waitMsTotal: 40,
        opened: 5,
        failedLogins: 0,
      },
    ],
    counters: {
      held: 3,
      holdTimeouts: 0,
      retried: 1,
      failedInFlight: 2,
      cancels: 0,
      authFailures: 1,
      refusedLimit: 0,
      protocolErrors: 0,
      accepted: 9,
      cancelsForwarded: 0,
      cancelsRelayed: 0,
    },
    preparedStatements: 0,
  };
  return body;
}
