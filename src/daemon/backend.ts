// The daemon's side of the admin API: reads come from the state machine (after a
// ReadIndex barrier unless stale), writes are commands proposed through Raft.

import { randomUUID } from 'node:crypto';
import { NotLeaderError, RequestTimeoutError, type RaftNode } from '../../raft/index.js';
import type { ApplyResult, Backup as FsmBackup, Tenant as FsmTenant } from '../../fsm/index.js';
import { encodeCommand, isRejection, lsnDiffBytes, TENANT_LIMITS, validateCommand, type ClusterStateMachine } from '../../fsm/index.js';
import type { PostgresAgent } from '../postgres/agent.js';
import { FailoverRequestError, type FailoverController } from '../controllers/failover.js';
import type { TenantProvisioner } from '../controllers/tenant-provisioner.js';
import { VerifyRequestError, type VerifyVerdict } from '../backup/verify-backup.js';
import { BackupRequestError, type BackupScheduler } from '../controllers/backup-scheduler.js';
import { makeScramVerifier, generatePassword } from '../auth/scram.js';
import { redactConfig, type Config, type NodeConfig } from '../config/index.js';
import { ApiError } from '../api/http.js';
import type { ApiBackend } from '../api/server.js';
import type {
  ApplyResultBody,
  Backup,
  BackupProgress,
  BackupsResponse,
  BackupsSummary,
  CancelResult,
  ConfigBody,
  CreateTenantResult,
  FailoverResult,
  Health,
  HistoryEntry,
  Member,
  MemberAddresses,
  MemberRecord,
  NewTenantLimits,
  PauseResult,
  ProxyPools,
  RestorePoint,
  RestorePointsResponse,
  ProxyStats,
  ReinitResult,
  ScheduleResult,
  Status,
  StepDownResult,
  StopReceiverResult,
  SwitchoverResult,
  Tenant,
  TenantLimitsChange,
  TransferResult,
} from '../api/contract/index.js';
import { BackupProgressResponse, ROUTES } from '../api/contract/index.js';
import type { Logger } from '../log.js';
import type { DaemonMetrics } from './metrics.js';
import { parseReplicationAnswer, type ArchiveReport, type ReplicationAnswer, type ReplicationStats } from '../postgres/replication-stats.js';
import type { ObjectStore } from '../object-store/index.js';
import { archiveStatusView } from './archive-status.js';
import { createRestorePoint, listRestorePointsView, primaryRestorePointMaker, type RestorePointDeps } from './restore-points-api.js';
import type { ProposeCommand } from './propose-on-leader.js';
import { apiAddressOf, type PeerClient } from './peer-client.js';
import type { LeaseTracker } from './lease-tracker.js';
import { LiveReplication, PostgresUnavailableError } from './live-replication.js';
import { postgresStatusView, type LiveFigures } from './pg-status.js';
import { setTimeout as sleep } from 'node:timers/promises';

const LEARNER_CATCH_UP_MS_MAX = 30_000;
/** How long `ogel tenants create` and `delete` wait for the role and database on the primary. */
const TENANT_PROVISION_TIMEOUT_MS = 15_000;
/**
 * Bound on asking the primary's daemon for its live replication figures: status
 * must stay quick when the primary is down or partitioned (the figures then come
 * from the agents' reports instead).
 */
export const REPLICATION_FETCH_TIMEOUT_MS = 500;
/** Bound on reading pg_stat_replication locally (below the fetch bound, so a slow query answers 503, not a hang). */
const LOCAL_REPLICATION_TIMEOUT_MS = 400;
/** Status polls and scrapes within this window share one reading. */
const LOCAL_REPLICATION_MAX_AGE_MS = 250;

/** Everything the backend works with, made before it (src/daemon/daemon.ts). */
/** What the backend needs of the daemon's backups (src/daemon/backups.ts). */
export interface BackendBackups {
  scheduler: BackupScheduler;
  storeDescription: string;
  storeProblem: () => string | null;
  verify: (id: string, opts: { restoreTest: boolean }) => Promise<VerifyVerdict>;
  /** This node's worker's progress on a backup it runs (backup/worker.ts); null when it runs no such backup. */
  progress: (id: string) => Omit<BackupProgress, 'node'> | null;
}

/** What the backend needs of the WAL archive: this node's archiver, and the store restore points are recorded in. */
export interface BackendArchive {
  /** This node's WAL archiver (src/daemon/archive.ts); null until it started, and when Postgres is not supervised here. */
  status(): ArchiveReport | null;
  store: ObjectStore;
  clusterPrefix: string;
  /** Runs pg_create_restore_point on the primary; default: a superuser connection over TCP (restore-points-api.ts). */
  makeRestorePoint?: RestorePointDeps['make'];
}

/** Bound on asking a backup's node how far it is: a poll of `backup show` must stay quick when that node is down. */
const PROGRESS_FETCH_TIMEOUT_MS = 1_000;

export interface DaemonBackendDeps {
  cfg: Config;
  self: NodeConfig;
  raft: RaftNode<ApplyResult>;
  fsm: ClusterStateMachine;
  metrics: DaemonMetrics;
  log: Logger;
  /** Proposes on this node as the leader; a rejection throws an ApiError. */
  propose: ProposeCommand;
  /** Fed by the daemon from every apply and restore. */
  leaseTracker: LeaseTracker;
  /**
   * This node's Postgres agent; undefined when Postgres cannot run here (no
   * binaries for this platform): the control plane still runs, and the routes
   * that need Postgres answer 503 saying why.
   */
  agent: PostgresAgent | undefined;
  /** This node's proxy (the figures of GET /v1/proxy/pools). */
  proxy: { stats(): ProxyStats };
  /** The leader's failover controller (switchover and failover requests). */
  failoverController: FailoverController;
  /** Creates tenants' roles and databases on the primary (createTenant waits for it). */
  tenantProvisioner: TenantProvisioner;
  /** The leader's backup controller (ogel backup create) and where backups are stored; the WAL archive. */
  backups: BackendBackups & { archive: BackendArchive };
  /** This backend's own calls to other daemons (the primary's replication figures). */
  peers: PeerClient;
}

export class DaemonBackend implements ApiBackend {
  readonly nodeId: string;
  /** This node's Postgres replication figures (when it is the primary), shared by status and metrics. */
  readonly replication: LiveReplication;
  readonly propose: ProposeCommand;
  private readonly cfg: Config;
  private readonly self: NodeConfig;
  private readonly raft: RaftNode<ApplyResult>;
  private readonly fsm: ClusterStateMachine;
  private readonly daemonMetrics: DaemonMetrics;
  private readonly log: Logger;
  private readonly leaseTracker: LeaseTracker;
  private readonly agent: PostgresAgent | undefined;
  private readonly proxy: { stats(): ProxyStats };
  private readonly failoverController: FailoverController;
  private readonly tenantProvisioner: TenantProvisioner;
  private readonly backups: BackendBackups;
  private readonly peers: PeerClient;
  private readonly archive: BackendArchive;
  private readonly restorePoints: RestorePointDeps;
  /** Restore points are made one at a time (on the leader), so a name is recorded before the next request checks it. */
  private restorePointQueue: Promise<unknown> = Promise.resolve();

  constructor(d: DaemonBackendDeps) {
    this.cfg = d.cfg;
    this.self = d.self;
    this.raft = d.raft;
    this.fsm = d.fsm;
    this.daemonMetrics = d.metrics;
    this.log = d.log;
    this.propose = d.propose;
    this.leaseTracker = d.leaseTracker;
    this.agent = d.agent;
    this.proxy = d.proxy;
    this.failoverController = d.failoverController;
    this.tenantProvisioner = d.tenantProvisioner;
    this.backups = d.backups;
    this.peers = d.peers;
    this.archive = d.backups.archive;
    this.restorePoints = {
      state: () => d.fsm.state,
      store: this.archive.store,
      storeDescription: d.backups.storeDescription,
      clusterPrefix: this.archive.clusterPrefix,
      make: this.archive.makeRestorePoint ?? primaryRestorePointMaker(d.cfg),
    };
    this.nodeId = d.self.id;
    const agent = d.agent;
    this.replication = new LiveReplication({
      instance: () => agent?.postgres,
      timeoutMs: LOCAL_REPLICATION_TIMEOUT_MS,
      maxAgeMs: LOCAL_REPLICATION_MAX_AGE_MS,
    });
  }

  private async barrier(stale: boolean): Promise<void> {
    if (!stale) await this.raft.read();
  }

  isLeader(): boolean {
    return this.raft.isLeader();
  }

  leaderApiUrl(): string | undefined {
    const leader = this.raft.leaderId();
    if (!leader) return undefined;
    const api = apiAddressOf(this.fsm.state, this.cfg, leader);
    return api ? `http://${api}` : undefined;
  }

  async status(stale: boolean): Promise<Status> {
    return this.statusView(stale, true);
  }

  /** `live`: ask the primary for its replication figures (not for stale reads, nor for member lists). */
  private async statusView(stale: boolean, live: boolean): Promise<Status> {
    if (!stale) {
      try {
        await this.raft.read();
      } catch (e) {
        // No leader to confirm a linearizable read (an election, or no quorum): the
        // local view, marked stale, is more useful to an operator than an error.
        if (!(e instanceof NotLeaderError || e instanceof RequestTimeoutError)) throw e;
        stale = true;
      }
    }
    const rs = this.raft.status();
    const s = this.fsm.state;
    const progress = new Map(rs.peers.map((p) => [p.id, p]));
    const ids = new Set([...s.members.keys(), ...rs.voters, ...rs.learners]);
    const members = [...ids].sort().map((id): Member => {
      const m = s.members.get(id);
      const p = progress.get(id);
      const role = id === rs.leader ? 'leader' : rs.learners.includes(id) ? 'learner' : rs.voters.includes(id) ? 'follower' : 'removed';
      return {
        id,
        addresses: m?.addresses ?? addressesFromConfig(this.cfg.nodes.find((n) => n.id === id)),
        raft: {
          role,
          voter: rs.voters.includes(id),
          matchIndex: p?.matchIndex ?? null,
          lagEntries: p?.lagEntries ?? null,
          lastContactMs: p ? p.lastContactMs : null,
        },
        health: m?.health ?? null,
      };
    });
    const pg = s.postgres;
    const figures = !stale && live && pg.primary !== null ? await this.primaryReplication(pg.primary) : null;
    return {
      cluster: this.cfg.cluster.name,
      node: this.nodeId,
      leader: rs.leader || null,
      term: rs.term,
      commitIndex: rs.commitIndex,
      appliedIndex: rs.appliedIndex,
      rejoining: rs.rejoining,
      stale,
      members,
      postgres: postgresStatusView({ pg, live: figures, leaseRemainingMs: this.leaseTracker.remainingMs(pg.lease) }),
      maintenance: { paused: s.maintenance.paused, reason: s.maintenance.reason },
      backups: this.backupsSummary(),
      archive: archiveStatusView(s, figures),
    };
  }

  private backupsSummary(): BackupsSummary {
    const all = [...this.fsm.state.backups.values()].sort((a, b) => (a.finishedAtMs ?? a.atMs) - (b.finishedAtMs ?? b.atMs));
    const newest = all.filter((b) => b.state === 'complete').at(-1);
    const running = all.find((b) => b.state === 'running');
    const lastFailed = all.filter((b) => b.state === 'failed').at(-1);
    return {
      store: this.backups.storeDescription,
      storeProblem: this.backups.storeProblem(),
      newest: newest ? backupView(newest) : null,
      running: running ? backupView(running) : null,
      lastFailed: lastFailed ? backupView(lastFailed) : null,
      count: all.length,
    };
  }

  async transferLeadership(to: string | undefined): Promise<TransferResult> {
    const rs = this.raft.status();
    if (to !== undefined && !rs.voters.includes(to)) {
      throw new ApiError(400, 'invalid_body', `field 'to': ${JSON.stringify(to)} is not a voting member`, `voters: ${rs.voters.join(', ')}`);
    }
    const from = rs.leader;
    if (!from) throw new NotLeaderError('');
    const started = performance.now();
    const leader = await this.raft.transferLeadership(to ?? '', 5_000);
    return { from, to: leader, durationMs: Math.round(performance.now() - started) };
  }

  async listMembers(): Promise<Member[]> {
    return (await this.statusView(false, false)).members;
  }

  async addMember(id: string, addresses: MemberAddresses): Promise<MemberRecord> {
    if (!this.raft.isLeader()) throw new NotLeaderError(this.raft.leaderId());
    await this.propose({ v: 1, type: 'member.add', id, addresses, atMs: Date.now() });
    // Raft membership: a learner first, promoted only once it has caught up, so the
    // quorum never includes a node that cannot vote usefully yet.
    await this.raft.addLearner(id);
    const deadline = Date.now() + LEARNER_CATCH_UP_MS_MAX;
    for (;;) {
      const rs = this.raft.status();
      const p = rs.peers.find((x) => x.id === id);
      if (p && p.matchIndex >= rs.commitIndex) break;
      if (Date.now() > deadline) {
        throw new ApiError(
          503,
          'unavailable',
          `${id} was added as a learner but has not caught up within ${LEARNER_CATCH_UP_MS_MAX} ms, so it was not promoted`,
          `check that 'ogel daemon --node ${id} --join' runs and reaches ${addresses.raft}; then retry`,
        );
      }
      await sleep(50);
    }
    await this.raft.promoteLearner(id);
    this.log({ level: 'info', msg: 'member added', id, addresses });
    const m = this.fsm.state.members.get(id);
    // The member.add above applied, and only member.remove takes it out again.
    if (m === undefined) throw new ApiError(409, 'conflict', `${id} was removed while it was being added`);
    return m;
  }

  async removeMember(id: string): Promise<void> {
    if (!this.raft.isLeader()) throw new NotLeaderError(this.raft.leaderId());
    const rs = this.raft.status();
    const known = this.fsm.state.members.has(id) || rs.voters.includes(id) || rs.learners.includes(id);
    if (!known) throw new ApiError(404, 'not_found', `no member named '${id}'`, `members: ${[...this.fsm.state.members.keys()].join(', ')}`);
    if (rs.voters.includes(id) || rs.learners.includes(id)) await this.raft.removeNode(id);
    if (this.fsm.state.members.has(id)) {
      // The leader may have removed itself: then it is no longer leader, and the
      // record is removed by the new leader's membership controller.
      if (this.raft.isLeader()) await this.propose({ v: 1, type: 'member.remove', id, atMs: Date.now() });
    }
    this.log({ level: 'info', msg: 'member removed', id });
  }

  async setPaused(paused: boolean, reason: string | undefined): Promise<PauseResult> {
    await this.propose({ v: 1, type: 'maintenance.set', paused, reason: paused ? (reason ?? null) : null, atMs: Date.now() });
    const m = this.fsm.state.maintenance;
    return { paused: m.paused, reason: m.reason };
  }

  async history(): Promise<HistoryEntry[]> {
    await this.barrier(false);
    return [...this.fsm.state.postgres.history];
  }

  async listBackups(): Promise<BackupsResponse> {
    await this.barrier(false);
    const all = [...this.fsm.state.backups.values()].sort((a, b) => a.atMs - b.atMs || a.id.localeCompare(b.id));
    return { store: this.backups.storeDescription, backups: all.map(backupView) };
  }

  async getBackup(id: string): Promise<Backup | undefined> {
    await this.barrier(false);
    const b = this.fsm.state.backups.get(id);
    return b && backupView(b);
  }

  async backupProgress(b: Backup): Promise<BackupProgress | null> {
    if (b.node === null || b.node === this.nodeId) return this.localBackupProgress(b.id);
    try {
      const path = ROUTES['GET /v1/internal/backups/:id/progress'].path.replace(':id', encodeURIComponent(b.id));
      return BackupProgressResponse.parse(await this.peers.call(b.node, { method: 'GET', path, timeoutMs: PROGRESS_FETCH_TIMEOUT_MS })).progress;
    } catch {
      return null; // the view says "progress unknown"; the backup's state is the index's
    }
  }

  localBackupProgress(id: string): BackupProgress | null {
    const p = this.backups.progress(id);
    return p === null ? null : { node: this.nodeId, ...p };
  }

  async createBackup(kind: 'full' | 'incremental' | 'auto'): Promise<Backup> {
    if (!this.raft.isLeader()) throw new NotLeaderError(this.raft.leaderId());
    let id: string;
    try {
      id = await this.backups.scheduler.request(kind);
    } catch (e) {
      if (e instanceof BackupRequestError) throw new ApiError(e.status, e.status === 409 ? 'conflict' : 'unavailable', e.message);
      throw e;
    }
    const b = this.fsm.state.backups.get(id);
    if (b === undefined) throw new Error(`backup ${id} was recorded but is not in the state`);
    return backupView(b);
  }

  /** Forgets a backup (the leader's sweep then deletes its objects); false when there is none. */
  async deleteBackup(id: string): Promise<boolean> {
    if (!this.raft.isLeader()) throw new NotLeaderError(this.raft.leaderId());
    const b = this.fsm.state.backups.get(id);
    if (b === undefined) return false;
    if (b.state === 'running') throw new ApiError(409, 'conflict', `backup ${id} is running on ${b.node ?? 'a node'}`, 'wait for it to end, then delete it');
    await this.propose({ v: 1, type: 'backup.delete', id, atMs: Date.now() });
    this.log({ level: 'info', msg: 'backup deleted by request', backup: id });
    return true;
  }

  /** Verifies a complete backup on this node now and records the verdict. */
  async verifyBackup(id: string, restoreTest: boolean): Promise<{ backup: Backup; verdict: VerifyVerdict }> {
    let verdict: VerifyVerdict;
    try {
      verdict = await this.backups.verify(id, { restoreTest });
    } catch (e) {
      if (e instanceof VerifyRequestError)
        throw new ApiError(e.status, e.status === 404 ? 'not_found' : 'conflict', e.message, "'ogel backup list' shows them");
      if (e instanceof ApiError) throw e;
      throw new ApiError(
        503,
        'unavailable',
        `could not verify backup ${id}: ${(e as Error).message}`,
        "check the object store ('ogel status' shows its problem) and retry",
      );
    }
    await this.barrier(false);
    const b = this.fsm.state.backups.get(id);
    if (b === undefined) throw new ApiError(404, 'not_found', `backup ${id} was deleted while it was verified`);
    return { backup: backupView(b), verdict };
  }

  /** `ogel restore-point create`: leader only (a follower forwards it), one at a time. */
  async createRestorePoint(name: string): Promise<RestorePoint> {
    if (!this.raft.isLeader()) throw new NotLeaderError(this.raft.leaderId());
    const run = this.restorePointQueue.then(() => createRestorePoint(this.restorePoints, name));
    this.restorePointQueue = run.catch(() => {});
    const rp = await run;
    this.log({ level: 'info', msg: 'restore point created', name: rp.name, lsn: rp.lsn, timeline: rp.timeline });
    return rp;
  }

  listRestorePoints(): Promise<RestorePointsResponse> {
    return listRestorePointsView(this.restorePoints);
  }

  async listTenants(): Promise<Tenant[]> {
    await this.barrier(false);
    return [...this.fsm.state.tenants.values()].filter((t) => t.state !== 'deleted').map((t) => tenantView(t, this.cfg.proxy));
  }

  async getTenant(name: string): Promise<Tenant | undefined> {
    await this.barrier(false);
    const t = this.findTenant(name);
    return t && tenantView(t, this.cfg.proxy);
  }

  async createTenant(name: string, password: string | undefined, limits: NewTenantLimits): Promise<CreateTenantResult> {
    if (!this.raft.isLeader()) throw new NotLeaderError(this.raft.leaderId());
    const pw = password ?? generatePassword();
    const id = randomUUID();
    await this.propose({
      v: 1,
      type: 'tenant.create',
      id,
      name,
      database: name,
      role: name,
      limits: {
        maxConnections: limits.maxConnections ?? this.cfg.proxy.defaultPoolSize * 5,
        // The state machine requires a positive rate; its maximum means "no limit".
        rateLimitPerSec: limits.rateLimitPerSec ?? TENANT_LIMITS.rateLimitPerSec.max,
      },
      scram: makeScramVerifier(pw),
      atMs: Date.now(),
    });
    const t = this.fsm.state.tenants.get(id)!;
    this.log({ level: 'info', msg: 'tenant created', tenant: name, id });
    await this.awaitProvisioned(name, id);
    // With TLS required, a URL without sslmode would be refused by the proxy: say it in the URL.
    const query = this.cfg.proxy.tls.mode === 'required' ? '?sslmode=require' : '';
    return {
      tenant: tenantView(t, this.cfg.proxy),
      password: pw,
      url: `postgresql://${name}:${encodeURIComponent(pw)}@${this.self.proxy}/${name}${query}`,
    };
  }

  /**
   * The printed URL must work as is: wait (bounded) until the provisioner has
   * created the role and database on the primary. If it cannot, undo the tenant
   * (its password would be lost with the answer anyway) and say why.
   */
  private async awaitProvisioned(name: string, id: string): Promise<void> {
    const p = this.tenantProvisioner;
    const st = await p.waitProvisioned(id, TENANT_PROVISION_TIMEOUT_MS);
    if (st.state === 'provisioned') return;
    try {
      await this.propose({ v: 1, type: 'tenant.delete', id, atMs: Date.now() });
      p.poke();
    } catch (e) {
      this.log({ level: 'warn', msg: 'could not undo a tenant that was not provisioned', tenant: name, id, error: (e as Error).message });
    }
    if (st.state === 'failed') throw new ApiError(409, 'conflict', `tenant '${name}' was not created: ${st.reason}`);
    throw new ApiError(
      503,
      'unavailable',
      `tenant '${name}' was not created: its role and database could not be created on the primary within ${TENANT_PROVISION_TIMEOUT_MS / 1000} s (${st.reason})`,
      "check 'ogel status' (the cluster needs a writable primary), then try again",
    );
  }

  async setTenantLimits(name: string, change: TenantLimitsChange): Promise<Tenant | undefined> {
    if (!this.raft.isLeader()) throw new NotLeaderError(this.raft.leaderId());
    const t = this.findTenant(name);
    if (!t) return undefined;
    // tenant.setLimits replaces all four: the ones not asked for keep their value.
    const limits = { ...t.limits, ...change };
    await this.propose({ v: 6, type: 'tenant.setLimits', id: t.id, limits, atMs: Date.now() });
    this.log({ level: 'info', msg: 'tenant limits set', tenant: name, id: t.id, limits });
    const updated = this.fsm.state.tenants.get(t.id);
    return updated && tenantView(updated, this.cfg.proxy);
  }

  async deleteTenant(name: string): Promise<boolean> {
    if (!this.raft.isLeader()) throw new NotLeaderError(this.raft.leaderId());
    const t = this.findTenant(name);
    if (!t) return false;
    await this.propose({ v: 1, type: 'tenant.delete', id: t.id, atMs: Date.now() });
    this.log({ level: 'info', msg: 'tenant deleted', tenant: name, id: t.id });
    // Bounded: the drop also happens later if the primary is away now.
    if (!(await this.tenantProvisioner.waitPurged(t.id, TENANT_PROVISION_TIMEOUT_MS))) {
      this.log({ level: 'warn', msg: 'tenant deleted; its database is dropped once the primary is writable', tenant: name, id: t.id });
    }
    return true;
  }

  private findTenant(name: string): FsmTenant | undefined {
    for (const t of this.fsm.state.tenants.values()) if (t.name === name && t.state !== 'deleted') return t;
    return undefined;
  }

  config(): ConfigBody {
    return { ...redactConfig(this.cfg) };
  }

  async proposeCommand(body: unknown): Promise<ApplyResultBody> {
    if (!this.raft.isLeader()) throw new NotLeaderError(this.raft.leaderId());
    // Never trust another node's bytes: the same validation the state machine applies.
    const cmd = validateCommand(body);
    if (isRejection(cmd)) throw new ApiError(400, 'invalid_body', cmd.error.message);
    const { result } = await this.raft.propose(encodeCommand(cmd));
    // An FSM rejection is an answer, not a transport failure: the agent decides.
    return result;
  }

  metrics(): Promise<string> {
    return this.daemonMetrics.text();
  }

  health(): Omit<Health, 'node' | 'status'> {
    const rs = this.raft.status();
    const a = this.agent?.agentStatus();
    const pg = this.fsm.state.postgres;
    // Writable primary of the current generation: wanted and observed, and not fenced (I3).
    const primary = a !== undefined && pg.primary === this.nodeId && a.observed === 'primary' && a.running && a.fenced === false;
    let replicaLagBytes: number | null = null;
    if (a !== undefined && a.observed === 'standby' && a.running && pg.primary !== null) {
      // From the positions the agents reported (at most about a second old), as Patroni does with its DCS.
      const primaryLsn = pg.nodes.get(pg.primary)?.lsn.flushed;
      const mine = pg.nodes.get(this.nodeId)?.lsn.replayed;
      if (primaryLsn !== undefined && mine !== undefined) replicaLagBytes = Math.max(0, Number(lsnDiffBytes(primaryLsn, mine)));
    }
    return { role: rs.role, term: rs.term, primary, replicaLagBytes };
  }

  async stopReceiver(generation: number, renewalSeq: number | undefined): Promise<StopReceiverResult> {
    if (!this.agent) throw new ApiError(503, 'unavailable', `Postgres is not supervised on ${this.nodeId}`);
    try {
      return await this.agent.stopReceiverForFailover(generation, renewalSeq);
    } catch (e) {
      throw new ApiError(409, 'conflict', (e as Error).message);
    }
  }

  proxyStats(): ProxyPools {
    return { node: this.nodeId, address: this.self.proxy, ...this.proxy.stats() };
  }

  async stepDown(generation: number, to: string): Promise<StepDownResult> {
    if (!this.agent) throw new ApiError(503, 'unavailable', `Postgres is not supervised on ${this.nodeId}`);
    try {
      return await this.agent.stepDownForSwitchover(generation, to);
    } catch (e) {
      throw new ApiError(409, 'conflict', (e as Error).message);
    }
  }

  async switchover(to: string | undefined): Promise<SwitchoverResult> {
    return this.roleChange(() => this.failoverController.switchover(to));
  }

  /**
   * `ogel switchover --scheduled TIME`: records the schedule in the state machine
   * (so a new leader still carries it out) and answers at once. The state machine
   * refuses a second schedule, a target that is no member or is the primary, and
   * a cluster without a primary.
   */
  async scheduleSwitchover(to: string | undefined, notBeforeMs: number): Promise<ScheduleResult> {
    if (!this.raft.isLeader()) throw new NotLeaderError(this.raft.leaderId());
    const pg = this.fsm.state.postgres;
    // The same answers as an immediate switchover for a bad target; the state
    // machine checks again, against the state the command is applied to.
    if (to !== undefined && !pg.nodes.has(to)) {
      throw new ApiError(400, 'invalid_body', `field 'to': ${JSON.stringify(to)} is not a member`, `members: ${[...pg.nodes.keys()].sort().join(', ')}`);
    }
    if (to !== undefined && to === pg.primary) throw new ApiError(400, 'invalid_body', `field 'to': ${to} is already the primary`, 'name a standby');
    await this.propose({ v: 2, type: 'pg.scheduleSwitchover', to: to ?? null, notBeforeMs, generation: pg.generation, atMs: Date.now() });
    const at = new Date(notBeforeMs).toISOString();
    this.log({ level: 'info', msg: 'switchover scheduled', to: to ?? null, at });
    return { scheduled: { to: to ?? null, at, notBeforeMs } };
  }

  /** `ogel switchover --cancel`: cancelled is false when nothing was scheduled. */
  async cancelScheduledSwitchover(): Promise<CancelResult> {
    if (!this.raft.isLeader()) throw new NotLeaderError(this.raft.leaderId());
    const controller = this.failoverController;
    const tooLate = (): void => {
      const running = controller.scheduledInProgress();
      if (running) {
        throw new ApiError(
          409,
          'conflict',
          `the switchover scheduled for ${new Date(running.notBeforeMs).toISOString()} has already started; it cannot be cancelled now`,
          'it finishes within a minute; see ogel status and ogel history',
        );
      }
    };
    tooLate();
    // A promotion between reading the generation and applying the cancel makes it
    // stale, but that promotion cleared the schedule too: read again, a few times.
    for (let attempt = 1; ; attempt++) {
      const pg = this.fsm.state.postgres;
      const { result } = await this.raft.propose(
        encodeCommand({ v: 2, type: 'pg.scheduleSwitchover', to: null, notBeforeMs: null, generation: pg.generation, atMs: Date.now() }),
      );
      if (result.ok) {
        // The controller decides in one tick from the state it sees: started after the
        // cancel applied, it would have found nothing. Running now means it started
        // before: the cancel came too late.
        tooLate();
        if (result.cancelled === true) this.log({ level: 'info', msg: 'scheduled switchover cancelled' });
        return { cancelled: result.cancelled === true };
      }
      if (result.error.code !== 'stale_generation' || attempt >= 3) throw new ApiError(409, 'conflict', result.error.message);
    }
  }

  async failover(to: string | undefined, force: boolean): Promise<FailoverResult> {
    return this.roleChange(() => this.failoverController.failover(to, force));
  }

  private async roleChange<T>(run: () => Promise<T>): Promise<T> {
    if (!this.raft.isLeader()) throw new NotLeaderError(this.raft.leaderId());
    try {
      return await run();
    } catch (e) {
      if (e instanceof FailoverRequestError)
        throw new ApiError(e.status, e.status === 400 ? 'invalid_body' : e.status === 503 ? 'unavailable' : 'conflict', e.message, e.hint);
      throw e;
    }
  }

  /** `ogel reinit NODE`: the node's agent moves its data dir aside and clones a fresh standby. */
  async reinit(node: string): Promise<ReinitResult> {
    if (!this.raft.isLeader()) throw new NotLeaderError(this.raft.leaderId());
    const pg = this.fsm.state.postgres;
    if (!pg.nodes.has(node)) throw new ApiError(404, 'not_found', `no member ${JSON.stringify(node)}`, `members: ${[...pg.nodes.keys()].sort().join(', ')}`);
    if (pg.primary === node)
      throw new ApiError(
        409,
        'conflict',
        `${node} is the primary of generation ${pg.generation}; only a standby can be re-cloned`,
        'switch over to another node first (ogel switchover)',
      );
    if (pg.primary === null) throw new ApiError(409, 'conflict', 'there is no primary to clone from', 'wait for a primary (ogel status)');
    await this.propose({ v: 1, type: 'pg.setRole', node, role: 'recloning', generation: pg.generation, atMs: Date.now() });
    this.log({ level: 'warn', msg: 'reinit: re-clone requested', node });
    return { node, role: 'recloning', generation: pg.generation };
  }

  /**
   * GET /v1/internal/pg/replication: this node's Postgres as a primary sees its
   * standbys (pg_stat_replication). On a standby: primary false, no standbys.
   */
  async localReplication(): Promise<ReplicationAnswer> {
    if (!this.agent) throw new ApiError(503, 'unavailable', `Postgres is not supervised on ${this.nodeId}`);
    let stats: ReplicationStats | null;
    try {
      stats = await this.replication.read();
    } catch (e) {
      const why = e instanceof PostgresUnavailableError ? `Postgres is not running on ${this.nodeId}` : `${this.nodeId}: ${(e as Error).message}`;
      throw new ApiError(503, 'unavailable', why, 'retry in a moment; status falls back to the LSNs the agents report');
    }
    return {
      node: this.nodeId,
      primary: stats !== null,
      currentLsn: stats?.currentLsn ?? null,
      standbys: stats?.standbys ?? [],
      slots: stats?.slots ?? [],
      measuredAtMs: Date.now(),
      archive: this.archive.status(),
    };
  }

  private async fetchPrimaryReplication(id: string): Promise<ReplicationAnswer> {
    if (this.peers.addressOf(id) === undefined) throw new Error('no admin API address known');
    return parseReplicationAnswer(
      await this.peers.call(id, { method: 'GET', path: ROUTES['GET /v1/internal/pg/replication'].path, timeoutMs: REPLICATION_FETCH_TIMEOUT_MS }),
    );
  }

  /** The primary's live figures: locally when this node is the primary, else from its daemon, bounded in time. */
  private async primaryReplication(primary: string): Promise<LiveFigures> {
    try {
      const answer = primary === this.nodeId ? await this.localReplication() : await this.fetchPrimaryReplication(primary);
      if (answer.node !== primary) return { ok: false, error: `asked ${primary}, ${answer.node} answered` };
      if (!answer.primary) return { ok: false, error: `${primary}'s Postgres is not (yet) a primary` };
      return { ok: true, answer };
    } catch (e) {
      return { ok: false, error: e instanceof ApiError ? e.message : `${primary}: ${(e as Error).message}` };
    }
  }

  countRequest(route: string, status: number): void {
    this.daemonMetrics.apiRequests.inc({ route, status: String(status) });
  }
}

function backupView(b: FsmBackup): Backup {
  return { ...b, verification: { ...b.verification } };
}

function tenantView(t: FsmTenant, proxy: { defaultPoolSize: number; poolMode: string }): Tenant {
  // Never the SCRAM verifier: it is a password equivalent for offline guessing.
  return {
    id: t.id,
    name: t.name,
    database: t.database,
    role: t.role,
    state: t.state,
    limits: t.limits,
    // What limits.poolSize and poolMode null mean here, so clients can show what is in effect.
    defaultPoolSize: proxy.defaultPoolSize,
    defaultPoolMode: proxy.poolMode,
    placement: t.placement,
    createdAtMs: t.createdAtMs,
  };
}

function addressesFromConfig(n: NodeConfig | undefined): MemberAddresses | null {
  return n ? { raft: n.raft, api: n.api, proxy: n.proxy, postgres: n.postgres } : null;
}
