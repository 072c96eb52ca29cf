// The agent: runs on every node and brings its local Postgres to the role the
// replicated state machine wants. Level-triggered and idempotent: every pass
// reads the whole wanted state (fsm/) and the whole observed state (the data
// dir, the postmaster, pg_is_in_recovery()) and takes the one next step, so a
// pass that fails or an agent that restarts at any point simply converges on
// a later pass.
//
// Two loops:
// - reconcile (every RECONCILE_INTERVAL_MS and on poke()): data dir, start,
//   report, the ogel schema. Slow steps (initdb, a base backup) live here.
// - lease (every LEASE_TICK_MS, at most leaseMs/20): renewals and the fence
//   (I3, I5). It never waits behind a slow reconcile step for the renewal, and
//   fence/unfence take the same Postgres lock as reconcile steps, so the two
//   never race on the server's state.
//
// Roles it converges to: the first primary (initdb), a standby (cloned by a
// base backup), the primary of a later generation (promote), a standby again
// after being primary (rejoin: follow if its WAL did not go past the fork point,
// else re-clone; see rejoin.ts), and re-cloning (diverged, or `ogel reinit`).
// A switchover's step-down is an RPC from the leader (stepDownForSwitchover).
//
// The admin password: the `postgres` superuser gets adminPassword(config)
// (src/auth/passwords.ts) once, when the first primary is bootstrapped; after
// that it is the operator's, and ogel does not reset it.

import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ApplyResult, ClusterState, Command, Lsn } from '../../fsm/index.js';
import { adminPassword, replicationPassword } from '../auth/passwords.js';
import { parseHostPort, type Config } from '../config/index.js';
import type { Logger } from '../log.js';
import { resolvePostgresBinaries, type PgBinaries } from './binaries.js';
import { PostgresInstance, type PgStatus } from './instance.js';
import { LeaseHolder, leaseTiming, monotonicMs, type MonotonicMs } from './lease.js';
import { assertReachable, ensurePostgresUser, isRoot, type OsUser } from './os-user.js';
import { quoteLiteral } from './query.js';
import { nodeIdForSlot, REPLICATION_ROLE, settingsFromConfig, slotNameFor } from './settings.js';
import { divergence, localWalEnd, upstreamTimeline } from './rejoin.js';
import { configureStandby, createStandby, readWalPositions, repointStandby, setAutoConf, StandbyError, stopWalReceiver } from './standby.js';
import type { UnsafeSwitch } from './unsafe-switches.js';

export const RECONCILE_INTERVAL_MS = 100;
/** Repoints in a row with no WAL receiver before a standby's Postgres is restarted (each waits up to 10 s). */
const REPOINTS_BEFORE_RESTART = 3;
/** The walreceiver's error when the primary has recycled the WAL it asks for. */
const WAL_REMOVED = /requested WAL segment \S+ has already been removed/;
/** Log lines of a WAL receiver that started and failed (so Postgres does try); not our own stop ("due to administrator command"). */
const RECEIVER_TRIED = /could not connect to the primary server|could not start WAL streaming|could not receive data from WAL stream|started streaming WAL|terminating walreceiver due to timeout/i;
export const REPORT_INTERVAL_MS = 1000;
export const BACKOFF_MIN_MS = 100;
export const BACKOFF_MAX_MS = 2000;
const LEASE_TICK_MAX_MS = 50;
const LEASE_TICK_MIN_MS = 5;
const ZERO_LSN = '0/0' as Lsn;
/** How long a switchover waits for the target to flush the old primary's last WAL. */
export const SWITCHOVER_CATCH_UP_MS = 10_000;
/**
 * How long a switchover lets transactions that began before writes were
 * refused finish before their sessions are ended. Short transactions finish in
 * milliseconds, so the usual drain costs nothing; a longer one is cut off (its
 * client gets an error) rather than stretch the write pause past the
 * switchover goal.
 */
export const SWITCHOVER_DRAIN_MAX_MS = 1000;
/** The drain ends this long before the lease's fence deadline: ending the sessions that remain takes a few ms here. */
const DRAIN_LEASE_RESERVE_MS = 50;
const DRAIN_POLL_MS = 2;
const LOCAL_WAL_END_TIMEOUT_MS = 60_000;
/** How often the primary looks for replication slots of removed members. */
const SLOT_CHECK_INTERVAL_MS = 30_000;

/** What the old primary did for a switchover (stepDownForSwitchover). */
export interface StepDownResult {
  generation: number;
  to: string;
  /** pg_current_wal_lsn() once no client session was left (after the drain): the target flushed at least this much. */
  lastLsn: string;
  targetFlushedLsn: string;
  /** Phases, in ms on this node's clock. readOnlyMs: refusing new sessions and writes, then (after the drain) ending client sessions. */
  readOnlyMs: number;
  /** Waiting for transactions begun before writes were refused (at most SWITCHOVER_DRAIN_MAX_MS). */
  drainMs: number;
  catchUpMs: number;
  shutdownMs: number;
  releaseMs: number;
}

export class AgentError extends Error {
  override name = 'AgentError';
}

export type WantedRole = 'primary' | 'standby' | 'recloning' | 'none';
export type ObservedRole = 'primary' | 'standby' | 'stopped';

export interface AgentStatus {
  wanted: WantedRole;
  observed: ObservedRole;
  /** The postmaster runs (our child). */
  running: boolean;
  /** Writes refused (default_transaction_read_only), as last set by this agent; null: not known yet. */
  fenced: boolean | null;
  /** Until this node must fence (primary only); null elsewhere. Negative: overdue. */
  leaseRemainingMs: number | null;
  lastError: string | null;
}

/** Counters since the agent started (exported as metrics). */
export interface AgentCounters {
  /** lease.renew commands committed / refused or failed. */
  leaseRenewalsOk: number;
  leaseRenewalsFailed: number;
  /** Times this agent made its Postgres read-only (fence) / writable again. */
  fences: number;
  unfences: number;
  /** Promotions of the local Postgres (failover or switchover). */
  promotions: number;
  /** Re-clones of the local data directory (diverged, or ogel reinit). */
  reclones: number;
  /** Restarts of a standby that started no WAL receiver (restartIfNoReceiver). */
  standbyRestarts: number;
}

export interface PostgresAgentOptions {
  config: Config;
  nodeId: string;
  /** This node's Postgres data directory. */
  dataDir: string;
  state: () => ClusterState;
  /**
   * True while this node's Raft rejoins after losing its state: the local state
   * machine is then replaying history the cluster has long moved past (it passes,
   * for instance, through "generation 1: this node is the new primary"), so the
   * agent acts on none of it. Default: never.
   */
  rejoining?: () => boolean;
  propose: (cmd: Command) => Promise<ApplyResult>;
  /**
   * Resolves once the local state machine has applied everything committed
   * before the call (a Raft read barrier). The agent calls it before starting
   * Postgres as the primary (a restarted daemon's state may be stale: starting
   * an old primary writes WAL that makes it diverge) and after proposing a role
   * change (so the next pass sees it). Default: nothing to wait for.
   */
  syncState?: () => Promise<void>;
  log: Logger;
  /** Monotonic ms, for the lease (default performance.now). */
  now?: MonotonicMs;
  /** Default: resolvePostgresBinaries(config.postgres.binDir). */
  binaries?: PgBinaries;
  /** Default: ensurePostgresUser(). */
  user?: OsUser;
  /** initdb --no-sync and unsynced base backups: tests only. */
  noSync?: boolean;
  /** How often the primary drops slots of removed members (default 30 s). */
  slotCheckIntervalMs?: number;
  /** Safety steps turned off on purpose (unsafe-switches.ts): for showing that the jepsen suite catches their absence. */
  unsafe?: ReadonlySet<UnsafeSwitch>;
}


/** A FIFO async mutex: every action that changes the server's state holds it. */
class Lock {
  private tail: Promise<void> = Promise.resolve();
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((r) => (release = r));
    await prev;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

export class PostgresAgent {
  readonly nodeId: string;
  readonly dataDir: string;
  private readonly config: Config;
  private readonly getState: () => ClusterState;
  private readonly rejoining: () => boolean;
  private readonly proposeFn: (cmd: Command) => Promise<ApplyResult>;
  private readonly syncState: () => Promise<void>;
  private readonly log: Logger;
  private readonly now: MonotonicMs;
  private readonly noSync: boolean;
  private readonly slotCheckIntervalMs: number;
  private readonly port: number;
  private binaries: PgBinaries | undefined;
  private user: OsUser | undefined;
  private instance: PostgresInstance | undefined;
  private readonly pgLock = new Lock();

  private started = false;
  private stopping = false;
  private loopDone: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private poked = false;
  private leaseTimer: NodeJS.Timeout | undefined;
  private leaseBusy: Promise<void> | undefined;

  private wanted: WantedRole = 'none';
  private observed: ObservedRole = 'stopped';
  private fenced: boolean | null = null;
  private lastError: string | null = null;
  private lastLoggedError: string | null = null;

  private holder: LeaseHolder | undefined;
  private renewalInFlight = false;
  private lastRenewalSentAt = Number.NEGATIVE_INFINITY;
  private lastRenewalSeqSent = 0;
  private renewalFailures = 0;
  private fencedReasonLogged: string | null = null;

  private readonly counters: AgentCounters = { leaseRenewalsOk: 0, leaseRenewalsFailed: 0, fences: 0, unfences: 0, promotions: 0, reclones: 0, standbyRestarts: 0 };

  private lastReport: { role: string; timeline: number; at: number } | undefined;
  private reportInFlight = false;
  /** Generation the ogel.generation row holds, as this process last wrote it. */
  private markedGeneration = 0;
  private loggedWaiting: string | null = null;
  /** The generation whose primary we stopped streaming from for a failover. */
  private receiverStoppedFor: { generation: number; renewalSeq: number } | undefined;
  /** Repoints in a row that ended with no WAL receiver (restartIfNoReceiver). */
  private failedRepoints = 0;
  /** Set while a switchover step-down owns the server (generation being given up). */
  private steppingDown: number | undefined;
  /** The generation whose lease this node released: not restarted as its primary while the local state lags. */
  private releasedGeneration: number | undefined;
  private slotsCheckedAt = Number.NEGATIVE_INFINITY;

  private readonly unsafe: ReadonlySet<UnsafeSwitch>;

  constructor(opts: PostgresAgentOptions) {
    this.config = opts.config;
    this.nodeId = opts.nodeId;
    this.dataDir = opts.dataDir;
    this.getState = opts.state;
    this.rejoining = opts.rejoining ?? (() => false);
    this.proposeFn = opts.propose;
    this.syncState = opts.syncState ?? (async () => {});
    this.log = opts.log;
    this.now = opts.now ?? monotonicMs;
    this.noSync = opts.noSync ?? false;
    this.slotCheckIntervalMs = opts.slotCheckIntervalMs ?? SLOT_CHECK_INTERVAL_MS;
    this.binaries = opts.binaries;
    this.user = opts.user;
    this.unsafe = opts.unsafe ?? new Set();
    const node = opts.config.nodes.find((n) => n.id === opts.nodeId);
    if (!node) throw new AgentError(`node ${JSON.stringify(opts.nodeId)} is not in the cluster config`);
    const addr = parseHostPort(node.postgres);
    if (!addr.ok) throw new AgentError(`nodes[${opts.nodeId}].postgres: ${addr.reason}`);
    this.port = addr.port;
  }

  // ------------------------------------------------------------------ lifecycle

  start(): void {
    if (this.started) return;
    this.started = true;
    this.loopDone = this.loop();
    this.scheduleLeaseTick();
  }

  /** Run a reconcile pass now (e.g. the state machine applied something). */
  poke(): void {
    this.poked = true;
    this.wake?.();
  }

  /** Stops both loops, then Postgres (fast). Leaves no process behind. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.leaseTimer) clearTimeout(this.leaseTimer);
    this.wake?.();
    await this.loopDone;
    await this.leaseBusy;
    await this.pgLock.run(async () => {
      const inst = this.instance;
      if (inst?.isRunning()) await inst.stop('fast');
      else if (inst) await inst.stopOrphan('fast');
    });
    this.observed = 'stopped';
  }

  agentStatus(): AgentStatus {
    const primaryHere = this.wanted === 'primary' && this.holder !== undefined;
    return {
      wanted: this.wanted,
      observed: this.observed,
      running: this.instance?.isRunning() ?? false,
      fenced: this.fenced,
      leaseRemainingMs: primaryHere ? Math.round(this.holder!.remainingMs()) : null,
      lastError: this.lastError,
    };
  }

  agentCounters(): Readonly<AgentCounters> {
    return { ...this.counters };
  }

  /** The local instance (for tests and the daemon's failover RPCs); undefined before the first pass. */
  get postgres(): PostgresInstance | undefined {
    return this.instance;
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      this.poked = false;
      try {
        await this.reconcile();
        failures = 0;
        this.lastError = null;
        this.lastLoggedError = null;
      } catch (err) {
        failures++;
        const msg = (err as Error).message;
        this.lastError = msg;
        // Same error again: log it at most every 10th time (the backoff already spaces them).
        if (msg !== this.lastLoggedError || failures % 10 === 0) {
          this.log({ level: 'error', msg: 'agent reconcile failed; retrying', node: this.nodeId, error: msg, failures });
          this.lastLoggedError = msg;
        }
      }
      if (this.stopping) break;
      const waitMs = failures === 0 ? RECONCILE_INTERVAL_MS : Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (failures - 1));
      if (this.poked && failures === 0) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, waitMs);
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.wake = done;
      });
      this.wake = undefined;
    }
  }

  // ------------------------------------------------------------------ reconcile

  private wantedRole(s: ClusterState): WantedRole {
    const p = s.postgres.primary;
    if (p === this.nodeId) return 'primary';
    if (s.postgres.nodes.get(this.nodeId)?.role === 'recloning') return 'recloning';
    return p === null ? 'none' : 'standby';
  }

  /**
   * Sibling marker files, outside the data dir (a base backup taken from this
   * node must not carry them, and Postgres's OS user could not read a root-owned
   * file there): `.rejoin`, the divergence check is pending; `.cloned`, the data
   * dir is a fresh clone whose pg.setRole standby may not have committed yet.
   */
  private get rejoinMarker(): string {
    return `${this.dataDir}.rejoin`;
  }
  private get clonedMarker(): string {
    return `${this.dataDir}.cloned`;
  }

  private settings() {
    return settingsFromConfig(this.config, this.nodeId, this.dataDir);
  }

  private newInstance(dataDir: string): PostgresInstance {
    this.binaries ??= resolvePostgresBinaries(this.config.postgres.binDir);
    this.user ??= ensurePostgresUser();
    const inst = new PostgresInstance({ dataDir, port: this.port, binaries: this.binaries, user: this.user, logger: this.log });
    return inst;
  }

  private attach(inst: PostgresInstance): void {
    this.instance = inst;
    // A crash is an event: reconcile at once (it restarts the server).
    inst.on('exit', (e: { reason: string }) => {
      this.observed = 'stopped';
      if (e.reason === 'crashed' && !this.stopping) this.log({ level: 'warn', msg: 'postgres exited unexpectedly; restarting it', node: this.nodeId });
      this.poke();
    });
  }

  private hasData(): boolean {
    return existsSync(join(this.dataDir, 'PG_VERSION'));
  }

  /** Logs `why` once, until the agent waits for something else. */
  private logWaiting(why: string): void {
    if (this.loggedWaiting === why) return;
    this.log({ level: 'info', msg: why, node: this.nodeId });
    this.loggedWaiting = why;
  }

  private async reconcile(): Promise<void> {
    if (this.rejoining()) {
      this.logWaiting('waiting for Raft to rejoin before acting on its state (this node lost its Raft data)');
      return;
    }
    const s = this.getState();
    const wanted = this.wantedRole(s);
    this.wanted = wanted;
    if (this.steppingDown !== undefined) return; // a switchover step-down owns the server until it ends
    if (wanted === 'primary' && s.postgres.generation === this.releasedGeneration) return; // our lease.release is not applied here yet
    if (wanted === 'recloning') {
      await this.pgLock.run(() => this.reclone(s));
      return;
    }
    if (existsSync(this.clonedMarker)) rmSync(this.clonedMarker, { force: true }); // its setRole committed
    if (wanted === 'none' && !this.instance?.isRunning()) return; // nothing to do until there is a primary

    if (!this.hasData()) {
      if (existsSync(this.dataDir) && readdirSync(this.dataDir).length > 0) {
        throw new AgentError(`${this.dataDir} is not empty but holds no Postgres data directory (no PG_VERSION); refusing to touch it: move it away`);
      }
      if (wanted === 'primary') await this.pgLock.run(() => this.bootstrapPrimary(s));
      else if (wanted === 'standby') await this.pgLock.run(() => this.cloneStandby(s));
      if (!this.hasData()) return; // waiting (logged)
    }

    if (!this.instance) this.attach(this.newInstance(this.dataDir));
    const inst = this.instance!;

    if (!inst.isRunning()) {
      await this.pgLock.run(async () => {
        if (this.stopping || inst.isRunning()) return;
        const standbySignal = existsSync(join(this.dataDir, 'standby.signal'));
        if (wanted === 'standby' && !standbySignal) {
          // A former primary's data dir on a node that should follow. Started as it
          // is, it would be a second writable primary; streamed from the new
          // primary, it may hold WAL past the fork point. So it starts as a
          // standby of nobody, and the rejoin check decides (rejoinCheck).
          writeFileSync(this.rejoinMarker, `${s.postgres.generation}\n`);
          this.user ??= ensurePostgresUser();
          configureStandby(this.dataDir, { upstream: null, owner: isRoot() ? { uid: this.user.uid, gid: this.user.gid } : undefined });
          this.log({ level: 'info', msg: 'former primary: starting as a standby without upstream for the rejoin check', node: this.nodeId, primary: s.postgres.primary, generation: s.postgres.generation });
        }
        if (wanted === 'primary') {
          await this.syncState();
          if (this.wantedRole(this.getState()) !== 'primary') return; // the state was stale: the next pass decides again
        }
        const orphan = await inst.stopOrphan('fast');
        if (orphan !== undefined) this.log({ level: 'warn', msg: 'stopped a postmaster left by an earlier agent before starting ours', node: this.nodeId, pid: orphan });
        const asPrimary = !existsSync(join(this.dataDir, 'standby.signal'));
        inst.setClientAccess(!asPrimary);
        inst.writeConfig(this.settings());
        if (asPrimary) {
          // Start fenced: whatever the fence was when it stopped, it takes no write
          // before a renewal of its own lease has committed (I3); the lease loop
          // lifts the fence then.
          this.user ??= ensurePostgresUser();
          setAutoConf(this.dataDir, { default_transaction_read_only: 'on' }, isRoot() ? { uid: this.user.uid, gid: this.user.gid } : undefined);
        }
        await inst.start();
        this.fenced = asPrimary ? true : null;
        this.log({ level: 'info', msg: 'postgres started', node: this.nodeId, pid: inst.pid, wanted });
      });
    }
    if (this.stopping || !inst.isRunning()) return;

    const st = await inst.status();
    this.observed = st.inRecovery ? 'standby' : 'primary';
    // An existing primary comes back writable if it was unfenced when it stopped:
    // fence it now unless our lease is valid (the lease loop does the same every tick).
    await this.enforceFence();
    this.maybeReport(st);

    if (this.observed === 'primary' && wanted !== 'primary') {
      const why = `fenced: no longer the primary (primary ${s.postgres.primary ?? 'none'}, generation ${s.postgres.generation}); waiting to be re-roled by failover`;
      if (this.loggedWaiting !== why) {
        this.log({ level: 'warn', msg: why, node: this.nodeId });
        this.loggedWaiting = why;
      }
      await this.enforceFence();
      const primary = s.postgres.primary;
      if (wanted === 'standby' && primary !== null && s.postgres.nodes.get(primary)?.reportedRole === 'primary') {
        // The new primary runs: stop this one (fenced, so no client write is
        // lost) and let the next pass start it for the rejoin check.
        await this.pgLock.run(async () => {
          if (!inst.isRunning()) return;
          await inst.stop('fast');
          this.observed = 'stopped';
          writeFileSync(this.rejoinMarker, `${s.postgres.generation}\n`);
          this.log({ level: 'info', msg: 'stopped the former primary to rejoin as a standby', node: this.nodeId, primary, generation: s.postgres.generation });
        });
        this.poke();
      }
    } else if (this.observed === 'standby' && wanted === 'primary') {
      // The state machine made this node the primary (failover or switchover):
      // the receiver is stopped (the controller did it, or we do it now). Fenced
      // before the promotion, so it is never writable before a renewal of its own
      // lease has committed (I3, I5); then a renewal goes out at once.
      await this.pgLock.run(async () => {
        if (!inst.isRunning()) return;
        const stopped = await stopWalReceiver(inst);
        await inst.setReadOnly(true, { terminate: false });
        this.fenced = true;
        const { ms } = await inst.promote();
        rmSync(this.rejoinMarker, { force: true });
        this.observed = 'primary';
        this.counters.promotions++;
        this.log({ level: 'info', msg: 'promoted to primary', node: this.nodeId, generation: s.postgres.generation, flushedLsn: stopped.flushedLsn, promoteMs: ms });
      });
      const now = this.getState();
      if (this.holdsLease(now)) this.maybeRenew(now);
      // No lease of ours has committed yet: read-only until the first renewal does (I5).
      await this.enforceFence();
      this.loggedWaiting = null;
    } else if (this.observed === 'standby' && wanted === 'standby') {
      if (existsSync(this.rejoinMarker)) await this.rejoinCheck(inst, s);
      else await this.followPrimary(inst, st, s);
      this.loggedWaiting = null;
    } else {
      this.loggedWaiting = null;
    }

    if (this.observed === 'primary' && wanted === 'primary' && this.fenced === false && this.now() - this.slotsCheckedAt > this.slotCheckIntervalMs) {
      this.slotsCheckedAt = this.now();
      await this.dropSlotsOfRemovedMembers(inst, s);
    }

    if (this.observed === 'primary' && wanted === 'primary' && this.markedGeneration !== s.postgres.generation) {
      await this.pgLock.run(async () => {
        if (this.fenced !== false || !inst.isRunning()) return; // only while it holds a valid lease
        await this.markGeneration(inst, s.postgres.generation);
      });
    }
  }

  /**
   * A standby follows the primary of the current generation. After the failover
   * controller stopped our receiver for generation g, we do not stream again until
   * the state machine names the primary of a later generation, or the failover
   * was called off: the primary of g committed a renewal after the stop. Streaming
   * again is then safe (I4): a promotion decided on our stopped LSN names the
   * renewal it saw lapse, so the state machine refuses it after that newer
   * renewal (stale_renewal), and a new decision stops our receiver again first.
   */
  private async followPrimary(inst: PostgresInstance, st: PgStatus, s: ClusterState): Promise<void> {
    const primary = s.postgres.primary;
    if (primary === null || primary === this.nodeId) return;
    const stopped = this.receiverStoppedFor;
    if (stopped !== undefined && s.postgres.generation <= stopped.generation) {
      const lease = s.postgres.lease;
      const calledOff = s.postgres.generation === stopped.generation && lease !== null && lease.generation === stopped.generation && lease.renewalSeq > stopped.renewalSeq;
      if (!calledOff) return;
      this.log({ level: 'info', msg: 'failover called off (the primary renewed its lease): streaming again', node: this.nodeId, primary, generation: stopped.generation, renewalSeq: lease!.renewalSeq });
      this.receiverStoppedFor = undefined;
    }
    const addrText = s.members.get(primary)?.addresses.postgres ?? this.config.nodes.find((n) => n.id === primary)?.postgres;
    if (addrText === undefined) return;
    const addr = parseHostPort(addrText);
    if (!addr.ok) return;
    const r = st.walReceiver;
    if (r && r.senderPort === addr.port && (r.senderHost === addr.host || r.senderHost === undefined)) return;
    if (s.postgres.nodes.get(primary)?.reportedRole !== 'primary') return; // not promoted yet
    await this.pgLock.run(async () => {
      await this.countAsStandby(s);
      const mark = inst.logMark;
      let ms: number;
      try {
        ({ ms } = await repointStandby(
          inst,
          { host: addr.host, port: addr.port, user: REPLICATION_ROLE, password: replicationPassword(this.config), applicationName: this.nodeId },
          slotNameFor(this.nodeId),
          { timeoutMs: 10_000 },
        ));
      } catch (err) {
        // Not streaming: the usual cause is WAL past the new timeline's fork point
        // (Postgres refuses to follow). Stop the receiver and run the rejoin check.
        if (err instanceof StandbyError && inst.isRunning()) {
          await stopWalReceiver(inst);
          writeFileSync(this.rejoinMarker, `${s.postgres.generation}\n`);
          await this.afterFailedRepoint(inst, err, mark, s);
        }
        throw err;
      }
      this.failedRepoints = 0;
      this.receiverStoppedFor = undefined;
      this.log({ level: 'info', msg: 'following the new primary', node: this.nodeId, primary, generation: s.postgres.generation, repointMs: Math.round(ms) });
    });
  }

  /**
   * A repoint did not end streaming (under pgLock). The WAL it needs gone from
   * the primary: re-clone. No WAL receiver at all, repeatedly: restart.
   */
  private async afterFailedRepoint(inst: PostgresInstance, err: StandbyError, logMark: number, s: ClusterState): Promise<void> {
    const removed = inst.logSince(logMark).find((l) => WAL_REMOVED.test(l));
    if (removed !== undefined) {
      // The primary no longer has the WAL this standby needs next (no slot held it:
      // a new primary has none for a node that was cut off when it was promoted).
      // Streaming can never resume; a fresh copy can. It is a standby: nothing of
      // the cluster's is lost.
      this.failedRepoints = 0;
      this.log({ level: 'warn', msg: 'the primary no longer has the WAL this standby needs: re-cloning', node: this.nodeId, primary: s.postgres.primary, line: removed });
      const r = await this.proposeAndSync({ v: 1, type: 'pg.setRole', node: this.nodeId, role: 'recloning', generation: s.postgres.generation, atMs: Date.now() });
      if (!r.ok) throw new AgentError(`pg.setRole recloning for ${this.nodeId} refused: ${r.error.message}`);
      return;
    }
    await this.restartIfNoReceiver(inst, err, logMark);
  }

  /**
   * A standby whose repoints keep ending with no WAL receiver at all (seen once
   * under jepsen's slow-link: for over a minute Postgres started none, with
   * primary_conninfo set and the primary reachable) is restarted: a fresh
   * startup process starts streaming, or says why. It is a standby, so nothing
   * is lost; the rejoin check runs again before it follows. A receiver that
   * tried and failed (the primary unreachable, a slot in use) logs so; then
   * there is nothing a restart would mend. Called under pgLock.
   */
  private async restartIfNoReceiver(inst: PostgresInstance, err: StandbyError, logMark: number): Promise<void> {
    if (!/no WAL receiver/.test(err.message)) return;
    if (inst.logSince(logMark).some((l) => RECEIVER_TRIED.test(l))) {
      this.failedRepoints = 0;
      return;
    }
    this.failedRepoints++;
    if (this.failedRepoints < REPOINTS_BEFORE_RESTART || !inst.isRunning()) return;
    this.failedRepoints = 0;
    this.log({ level: 'warn', msg: `no WAL receiver started after ${REPOINTS_BEFORE_RESTART} repoints: restarting the standby's Postgres`, node: this.nodeId, error: err.message });
    writeFileSync(this.rejoinMarker, `${this.getState().postgres.generation}\n`);
    await inst.stop('fast');
    this.observed = 'stopped';
    this.counters.standbyRestarts++;
  }

  /**
   * A node the state machine holds as fenced (a former primary) is not counted
   * by the failover controller as a standby that may hold acknowledged commits.
   * Before it streams, and so before it can acknowledge anything, it must be
   * counted again: pg.setRole standby commits first (I4).
   */
  private async countAsStandby(s: ClusterState): Promise<void> {
    if (s.postgres.nodes.get(this.nodeId)?.role !== 'fenced') return;
    const r = await this.proposeAndSync({ v: 1, type: 'pg.setRole', node: this.nodeId, role: 'standby', generation: s.postgres.generation, atMs: Date.now() });
    if (!r.ok) throw new AgentError(`pg.setRole standby for ${this.nodeId} refused: ${r.error.message}`);
  }

  /**
   * The rejoin check (rejoin.ts): this node runs as a standby of nobody; compare
   * where its WAL ends with where the primary's timeline forked off. Follow the
   * primary if it did not go past it, else ask for a re-clone (pg.setRole
   * recloning), which the next pass carries out.
   */
  private async rejoinCheck(inst: PostgresInstance, s: ClusterState): Promise<void> {
    const primary = s.postgres.primary;
    if (primary === null || primary === this.nodeId || s.postgres.nodes.get(primary)?.reportedRole !== 'primary') return;
    const addr = this.postgresAddress(s, primary);
    const password = replicationPassword(this.config);
    await this.pgLock.run(async () => {
      if (!inst.isRunning()) return;
      const local = await localWalEnd(inst, { timeoutMs: LOCAL_WAL_END_TIMEOUT_MS });
      const upstream = await upstreamTimeline({ host: addr.host, port: addr.port, user: REPLICATION_ROLE, password });
      const verdict = divergence(local, upstream);
      if (verdict.diverged) {
        this.log({ level: 'warn', msg: 'diverged from the primary: re-cloning', node: this.nodeId, primary, reason: verdict.reason, localTimeline: local.timeline, localEndLsn: local.endLsn });
        const r = await this.proposeAndSync({ v: 1, type: 'pg.setRole', node: this.nodeId, role: 'recloning', generation: s.postgres.generation, atMs: Date.now() });
        if (!r.ok) throw new AgentError(`pg.setRole recloning for ${this.nodeId} refused: ${r.error.message}`);
        return;
      }
      await this.countAsStandby(s);
      const mark = inst.logMark;
      let ms: number;
      try {
        ({ ms } = await repointStandby(
          inst,
          { host: addr.host, port: addr.port, user: REPLICATION_ROLE, password, applicationName: this.nodeId },
          slotNameFor(this.nodeId),
          { timeoutMs: 10_000 },
        ));
      } catch (err) {
        if (err instanceof StandbyError) await this.afterFailedRepoint(inst, err, mark, s);
        throw err;
      }
      this.failedRepoints = 0;
      rmSync(this.rejoinMarker, { force: true });
      this.receiverStoppedFor = undefined;
      this.log({ level: 'info', msg: 'rejoined: following the primary', node: this.nodeId, primary, generation: s.postgres.generation, localTimeline: local.timeline, localEndLsn: local.endLsn, repointMs: Math.round(ms) });
    });
  }

  /**
   * A member removed from the cluster leaves its physical slot on the primary,
   * which would keep WAL forever. Drop inactive slots that ogel named for a
   * node that is no longer a member (other slots are the operator's).
   */
  private async dropSlotsOfRemovedMembers(inst: PostgresInstance, s: ClusterState): Promise<void> {
    const r = await inst.query<{ slot_name: string }>("SELECT slot_name FROM pg_replication_slots WHERE slot_type = 'physical' AND NOT active");
    for (const { slot_name } of r.rows) {
      const node = nodeIdForSlot(slot_name);
      if (node === undefined || s.members.has(node) || s.postgres.nodes.has(node)) continue;
      await inst.query('SELECT pg_drop_replication_slot($1)', [slot_name]);
      this.log({ level: 'info', msg: 'dropped the replication slot of a removed member', node: this.nodeId, slot: slot_name, member: node });
    }
  }

  /** Proposes a role change and waits until the local state has it (so the next pass does not act on the old role). */
  private async proposeAndSync(cmd: Command): Promise<ApplyResult> {
    const r = await this.proposeFn(cmd);
    if (r.ok) {
      await this.syncState().catch((err: Error) => this.log({ level: 'warn', msg: 'could not wait for the local state to catch up', node: this.nodeId, command: cmd.type, error: err.message }));
    }
    return r;
  }

  private postgresAddress(s: ClusterState, node: string): { host: string; port: number } {
    const text = s.members.get(node)?.addresses.postgres ?? this.config.nodes.find((n) => n.id === node)?.postgres;
    if (text === undefined) throw new AgentError(`no postgres address known for ${node}`);
    const addr = parseHostPort(text);
    if (!addr.ok) throw new AgentError(`${node}'s postgres address ${text}: ${addr.reason}`);
    return { host: addr.host, port: addr.port };
  }

  /**
   * Re-clone (diverged, or `ogel reinit`): stop Postgres, keep the old data dir
   * as <dataDir>.previous (one copy, replaced each time: never guess with data,
   * but do not fill the disk either), clone from the primary, then pg.setRole
   * standby. Each step is idempotent, so an agent restart resumes it.
   */
  private async reclone(s: ClusterState): Promise<void> {
    const inst = this.instance;
    if (inst?.isRunning()) {
      await inst.stop('fast');
      this.observed = 'stopped';
    } else if (inst) await inst.stopOrphan('fast');
    if (this.hasData() && !existsSync(this.clonedMarker)) {
      const previous = `${this.dataDir}.previous`;
      rmSync(previous, { recursive: true, force: true });
      renameSync(this.dataDir, previous);
      rmSync(this.rejoinMarker, { force: true });
      this.log({ level: 'warn', msg: 're-cloning: moved the old data directory aside', node: this.nodeId, previous });
    }
    if (!this.hasData()) {
      await this.cloneStandby(s);
      if (!this.hasData()) return; // waiting for the primary (logged)
      this.counters.reclones++;
    }
    const r = await this.proposeAndSync({ v: 1, type: 'pg.setRole', node: this.nodeId, role: 'standby', generation: s.postgres.generation, atMs: Date.now() });
    if (!r.ok) throw new AgentError(`pg.setRole standby after the re-clone of ${this.nodeId} refused: ${r.error.message}`);
    this.log({ level: 'info', msg: 're-cloned: standby again', node: this.nodeId, generation: s.postgres.generation });
  }

  /**
   * The failover fence step (I4), called by the leader's controller: stop our WAL
   * receiver so nothing more arrives from the old primary, and report the flushed
   * LSN. Idempotent; refused for a generation that is not the current one.
   */
  async stopReceiverForFailover(generation: number, observedRenewalSeq?: number): Promise<{ flushedLsn: string; replayedLsn: string }> {
    const s = this.getState();
    if (generation !== s.postgres.generation) {
      throw new AgentError(`stale fence request: generation ${generation}, the current generation is ${s.postgres.generation}`);
    }
    const inst = this.instance;
    if (!inst?.isRunning()) throw new AgentError(`postgres is not running on ${this.nodeId}`);
    return this.pgLock.run(async () => {
      // The renewal the controller saw lapse (or ours, if newer): a later committed
      // one means the failover was called off.
      const local = this.getState().postgres.lease?.renewalSeq ?? 0;
      this.receiverStoppedFor = { generation, renewalSeq: Math.max(local, observedRenewalSeq ?? 0) };
      if (this.unsafe.has('keep-wal-receivers')) {
        const p = await readWalPositions(inst);
        this.log({ level: 'error', msg: 'UNSAFE (keep-wal-receivers): WAL receiver left running for failover', node: this.nodeId, generation, flushedLsn: p.flushedLsn });
        return p;
      }
      const r = await stopWalReceiver(inst);
      this.log({ level: 'info', msg: 'WAL receiver stopped for failover', node: this.nodeId, generation, flushedLsn: r.flushedLsn });
      return { flushedLsn: r.flushedLsn, replayedLsn: r.replayedLsn };
    });
  }

  /**
   * The old primary's half of a switchover (docs/postgres-failover.md), called by
   * the leader: refuse new writes, let the transactions already open finish
   * (the drain, bounded), end every client session, wait until the target has
   * flushed every WAL byte written so far (so no acknowledged commit can be
   * lost, I4), shut down cleanly (the walsenders ship the shutdown checkpoint,
   * so this node can follow the target afterwards without a re-clone), then
   * release the lease. The leader promotes the target once the release has
   * committed. Any failure before the release leaves this node the primary: the
   * next pass restarts and unfences it.
   */
  async stepDownForSwitchover(generation: number, to: string, opts: { catchUpTimeoutMs?: number; drainMaxMs?: number } = {}): Promise<StepDownResult> {
    const s = this.getState();
    if (generation !== s.postgres.generation) throw new AgentError(`stale switchover request: generation ${generation}, the current generation is ${s.postgres.generation}`);
    if (!this.holdsLease(s)) throw new AgentError(`${this.nodeId} does not hold the lease of generation ${generation}; the primary is ${s.postgres.primary ?? 'none'}`);
    if (to === this.nodeId || !s.postgres.nodes.has(to)) throw new AgentError(`switchover target ${JSON.stringify(to)} is not another member`);
    if (this.steppingDown !== undefined) throw new AgentError(`a switchover step-down of generation ${this.steppingDown} is already running on ${this.nodeId}`);
    const inst = this.instance;
    if (!inst?.isRunning() || this.observed !== 'primary') throw new AgentError(`postgres on ${this.nodeId} is not running as the primary`);
    const catchUpTimeoutMs = opts.catchUpTimeoutMs ?? SWITCHOVER_CATCH_UP_MS;
    const drainMaxMs = opts.drainMaxMs ?? SWITCHOVER_DRAIN_MAX_MS;
    // A checkpoint while writes still flow makes the clean shutdown's own
    // checkpoint (inside the write pause) short.
    await inst.query('CHECKPOINT', [], { timeoutMs: 60_000 });
    this.steppingDown = generation;
    // Marked fenced before the fence itself: while steppingDown is set and fenced
    // is true, enforceFence has nothing to do, so the lease loop keeps renewing
    // through the drain instead of queueing behind this step-down on pgLock. If
    // the step-down fails before the release, the next tick sees a valid lease
    // and a fenced server, and unfences it.
    this.fenced = true;
    try {
      return await this.pgLock.run(async () => {
        const t0 = this.now();
        const { sinceTs } = await inst.refuseNewWrites();
        this.counters.fences++;
        const t1 = this.now();
        const left = await this.drainWriters(inst, sinceTs, t1 + drainMaxMs);
        const t2 = this.now();
        const { terminated } = await inst.endClientSessions();
        const t3 = this.now();
        // Read once no client session is left (and none can connect): every
        // commit this server acknowledged, the drained ones included, is at or
        // before this LSN, so the catch-up below covers them all (I4).
        const last = (await inst.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn;
        const targetFlushed = await this.waitForTargetFlush(inst, to, last, catchUpTimeoutMs);
        const t4 = this.now();
        await inst.stop('fast');
        this.observed = 'stopped';
        const t5 = this.now();
        const r = await this.proposeAndSync({ v: 1, type: 'lease.release', holder: this.nodeId, generation, atMs: Date.now() });
        if (!r.ok) throw new AgentError(`switchover: lease.release refused: ${r.error.message}; ${this.nodeId} restarts as the primary`);
        const t6 = this.now();
        this.releasedGeneration = generation;
        this.holder = undefined;
        this.log({ level: 'info', msg: 'stepped down for a switchover', node: this.nodeId, to, generation, lastLsn: last, drainMs: Math.round(t2 - t1), undrained: left, terminated, shutdownMs: Math.round(t5 - t4) });
        return {
          generation,
          to,
          lastLsn: last,
          targetFlushedLsn: targetFlushed,
          readOnlyMs: Math.round(t1 - t0 + (t3 - t2)),
          drainMs: Math.round(t2 - t1),
          catchUpMs: Math.round(t4 - t3),
          shutdownMs: Math.round(t5 - t4),
          releaseMs: Math.round(t6 - t5),
        };
      });
    } finally {
      this.steppingDown = undefined;
      this.poke();
    }
  }

  /**
   * The switchover's drain: waits until no client transaction that may write is
   * open (writersSince), until `deadlineMs`, and never past the lease's fence
   * deadline (less the time ending the sessions takes): the server takes writes
   * until endClientSessions, and must not once the lease may lapse (I5).
   * Returns how many such transactions were still open (endClientSessions ends
   * them).
   */
  private async drainWriters(inst: PostgresInstance, sinceTs: string, deadlineMs: number): Promise<number> {
    for (;;) {
      const open = await inst.writersSince(sinceTs);
      if (open === 0) return 0;
      const leaseLeftMs = this.holder?.remainingMs() ?? Number.NEGATIVE_INFINITY;
      if (this.now() >= deadlineMs || leaseLeftMs <= DRAIN_LEASE_RESERVE_MS) return open;
      await new Promise((res) => setTimeout(res, DRAIN_POLL_MS));
    }
  }

  /** Polls pg_stat_replication until `to` has flushed `lsn`; returns its flushed LSN. Throws after timeoutMs. */
  private async waitForTargetFlush(inst: PostgresInstance, to: string, lsn: string, timeoutMs: number): Promise<string> {
    const t0 = this.now();
    let flushed = ZERO_LSN as string;
    for (;;) {
      const r = await inst.query<{ ok: boolean; flushed: string | null }>(
        'SELECT flush_lsn >= $1::pg_lsn AS ok, flush_lsn::text AS flushed FROM pg_stat_replication WHERE application_name = $2 ORDER BY flush_lsn DESC NULLS LAST LIMIT 1',
        [lsn, to],
      );
      flushed = r.rows[0]?.flushed ?? flushed;
      if (r.rows[0]?.ok === true) return flushed;
      if (this.now() - t0 > timeoutMs) {
        throw new AgentError(`switchover: ${to} has flushed ${r.rows[0] ? flushed : 'nothing (it is not streaming from ' + this.nodeId + ')'}, not ${lsn}, ${timeoutMs} ms after writes stopped; ${this.nodeId} stays the primary`);
      }
      await new Promise((res) => setTimeout(res, 2));
    }
  }

  /** initdb in a sibling temp dir, then rename: a crash halfway leaves no half-made data dir. */
  private async bootstrapPrimary(s: ClusterState): Promise<void> {
    const pg = s.postgres;
    const last = pg.history[pg.history.length - 1];
    if (!(pg.generation === 1 && last !== undefined && last.reason === 'bootstrap' && last.node === this.nodeId)) {
      throw new AgentError(
        `this node is the primary of generation ${pg.generation} but its data dir ${this.dataDir} is empty; only the bootstrap promotion (generation 1, reason 'bootstrap') initialises a new database. Refusing to guess with data: restore it, or promote a node that has the data`,
      );
    }
    const reportedAtMs = pg.nodes.get(this.nodeId)?.reportedAtMs ?? null;
    if (reportedAtMs !== null) {
      // Its Postgres ran and reported before: the database it held was lost (a wiped disk), not never made.
      throw new AgentError(
        `this node is the bootstrap primary, but its data dir ${this.dataDir} is empty although its Postgres reported before (at ${new Date(reportedAtMs).toISOString()}): its data was lost. ` +
          'Refusing to initialise an empty database in its place: promote a standby that has the data (ogel failover --to NODE), and this node will be cloned as a standby',
      );
    }
    const tmp = `${this.dataDir}.ogel-init`;
    rmSync(tmp, { recursive: true, force: true });
    this.binaries ??= resolvePostgresBinaries(this.config.postgres.binDir);
    this.user ??= ensurePostgresUser();
    this.log({ level: 'info', msg: 'bootstrapping the first primary (initdb)', node: this.nodeId, dataDir: this.dataDir });
    await PostgresInstance.initPrimary({
      dataDir: tmp,
      port: this.port,
      binaries: this.binaries,
      user: this.user,
      logger: this.log,
      settings: this.settings(),
      replicationPassword: replicationPassword(this.config),
      noSync: this.noSync,
    });
    if (existsSync(this.dataDir)) rmSync(this.dataDir, { recursive: true, force: true }); // empty (checked by the caller)
    renameSync(tmp, this.dataDir);
    const inst = this.newInstance(this.dataDir);
    inst.writeConfig(this.settings()); // the socket dir and paths of the final location
    this.attach(inst);
  }

  /** Clones from the primary into a sibling temp dir, then rename: a half-done clone is retried from scratch. */
  private async cloneStandby(s: ClusterState): Promise<void> {
    const primary = s.postgres.primary;
    if (primary === null) return;
    const pnode = s.postgres.nodes.get(primary);
    if (pnode?.reportedRole !== 'primary') {
      const why = `waiting for ${primary} to report as primary before cloning from it`;
      if (this.loggedWaiting !== why) {
        this.log({ level: 'info', msg: why, node: this.nodeId });
        this.loggedWaiting = why;
      }
      return;
    }
    const addrText = s.members.get(primary)?.addresses.postgres ?? this.config.nodes.find((n) => n.id === primary)?.postgres;
    if (addrText === undefined) throw new AgentError(`no postgres address known for the primary ${primary}`);
    const addr = parseHostPort(addrText);
    if (!addr.ok) throw new AgentError(`the primary ${primary}'s postgres address ${addrText}: ${addr.reason}`);
    this.user ??= ensurePostgresUser();
    // A former primary whose data was lost (a wiped disk) is still held as fenced:
    // like one that rejoins with its data, it is counted as a standby before the
    // clone can stream and acknowledge anything (I4).
    await this.countAsStandby(s);
    const tmp = `${this.dataDir}.ogel-clone`;
    rmSync(tmp, { recursive: true, force: true });
    // The base backup makes only the leaf (0700); parents we create must let the Postgres user through.
    mkdirSync(dirname(this.dataDir), { recursive: true, mode: 0o755 });
    assertReachable(tmp, this.user);
    this.log({ level: 'info', msg: 'cloning a standby (base backup)', node: this.nodeId, from: primary, address: addrText });
    const r = await createStandby({
      primary: { host: addr.host, port: addr.port, password: replicationPassword(this.config) },
      replicationUser: REPLICATION_ROLE,
      slotName: slotNameFor(this.nodeId),
      targetDir: tmp,
      owner: isRoot() ? { uid: this.user.uid, gid: this.user.gid } : undefined,
      applicationName: this.nodeId,
      fsync: !this.noSync,
    });
    if (existsSync(this.dataDir)) rmSync(this.dataDir, { recursive: true, force: true });
    writeFileSync(this.clonedMarker, `${s.postgres.generation}\n`);
    renameSync(tmp, this.dataDir);
    const inst = this.newInstance(this.dataDir);
    inst.writeConfig(this.settings());
    this.attach(inst);
    this.log({ level: 'info', msg: 'standby cloned', node: this.nodeId, bytes: r.backup.bytes, slotCreated: r.slotCreated });
  }

  /**
   * The ogel schema: one row with the generation this server is primary of,
   * so a fenced old primary is recognisable. Created at bootstrap together with
   * the admin password. Committed with synchronous_commit = local: a marker
   * must not wait for (or block on) standbys; the next primary rewrites it.
   */
  private async markGeneration(inst: PostgresInstance, generation: number): Promise<void> {
    const exists = (await inst.query<{ t: string | null }>(`SELECT to_regclass('ogel.generation')::text AS t`)).rows[0]?.t != null;
    const g = Math.trunc(generation);
    const node = quoteLiteral(this.nodeId);
    const sql = [
      'BEGIN READ WRITE',
      'SET LOCAL synchronous_commit = local',
      ...(exists
        ? []
        : [
            'CREATE SCHEMA IF NOT EXISTS ogel',
            `CREATE TABLE IF NOT EXISTS ogel.generation (one boolean PRIMARY KEY DEFAULT true CHECK (one), generation bigint NOT NULL, node text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())`,
            `COMMENT ON TABLE ogel.generation IS 'Written by ogel: the generation (fencing token) this server was last primary of'`,
            `ALTER ROLE postgres WITH PASSWORD ${quoteLiteral(adminPassword(this.config))}`,
          ]),
      `INSERT INTO ogel.generation (one, generation, node) VALUES (true, ${g}, ${node}) ON CONFLICT (one) DO UPDATE SET generation = EXCLUDED.generation, node = EXCLUDED.node, updated_at = now()`,
      'COMMIT',
    ].join(';\n');
    await inst.query(sql);
    this.markedGeneration = generation;
    this.log({ level: 'info', msg: exists ? 'recorded the generation in ogel.generation' : 'created the ogel schema and set the admin password', node: this.nodeId, generation });
  }

  private maybeReport(st: PgStatus): void {
    const role = st.inRecovery ? 'standby' : 'primary';
    const t = this.now();
    const prev = this.lastReport;
    const changed = prev === undefined || prev.role !== role || prev.timeline !== st.timeline;
    if (this.reportInFlight || (!changed && t - prev.at < REPORT_INTERVAL_MS)) return;
    const lsn = st.inRecovery
      ? {
          received: st.lsn.received ?? st.lsn.replayed ?? ZERO_LSN,
          flushed: st.lsn.flushed ?? st.lsn.replayed ?? ZERO_LSN,
          replayed: st.lsn.replayed ?? ZERO_LSN,
        }
      : { received: st.lsn.current ?? ZERO_LSN, flushed: st.lsn.current ?? ZERO_LSN, replayed: st.lsn.current ?? ZERO_LSN };
    this.reportInFlight = true;
    this.lastReport = { role, timeline: st.timeline, at: t };
    const cmd: Command = { v: 1, type: 'pg.report', atMs: Date.now(), node: this.nodeId, role, timeline: st.timeline, lsn };
    this.proposeFn(cmd)
      .then((r) => {
        if (!r.ok) this.log({ level: 'warn', msg: 'pg.report rejected', node: this.nodeId, error: r.error.message });
      })
      .catch((err: Error) => {
        this.lastReport = undefined; // retry on the next pass
        this.log({ level: 'warn', msg: 'pg.report failed', node: this.nodeId, error: err.message });
      })
      .finally(() => (this.reportInFlight = false));
  }

  // ------------------------------------------------------------------ lease and fence

  private leaseMs(): number {
    return this.getState().postgres.lease?.durationMs ?? this.config.postgres.leaseMs;
  }

  private scheduleLeaseTick(): void {
    if (this.stopping) return;
    const tickMs = Math.max(LEASE_TICK_MIN_MS, Math.min(LEASE_TICK_MAX_MS, Math.floor(this.leaseMs() / 20)));
    this.leaseTimer = setTimeout(() => {
      this.leaseBusy = this.leaseTick()
        .catch((err: Error) => this.log({ level: 'error', msg: 'lease tick failed', node: this.nodeId, error: err.message }))
        .finally(() => this.scheduleLeaseTick());
    }, tickMs);
  }

  /** Is this node the lease holder of the current generation? Keeps `holder` matching it. */
  private holdsLease(s: ClusterState): boolean {
    const pg = s.postgres;
    const lease = pg.lease;
    const ok = pg.primary === this.nodeId && lease !== null && lease.holder === this.nodeId && lease.generation === pg.generation;
    if (!ok) {
      this.holder = undefined;
      return false;
    }
    if (this.holder?.generation !== lease.generation) {
      this.holder = new LeaseHolder(lease.generation, leaseTiming(lease.durationMs), this.now);
      this.lastRenewalSentAt = Number.NEGATIVE_INFINITY;
      this.lastRenewalSeqSent = 0;
    }
    return true;
  }

  private async leaseTick(): Promise<void> {
    const s = this.getState();
    // Renew only while Postgres runs as a primary: the proxy takes a renewed
    // lease to mean "writable", so a node still finishing its promotion (or a
    // primary whose Postgres is down) must not renew; if Postgres stays down
    // past the lease, failover is what should happen.
    if (this.holdsLease(s) && this.observed === 'primary') this.maybeRenew(s);
    await this.enforceFence();
  }

  private maybeRenew(s: ClusterState): void {
    const lease = s.postgres.lease!;
    const holder = this.holder!;
    if (this.renewalInFlight || this.now() - this.lastRenewalSentAt < lease.durationMs / 4) return;
    // Past our own last renewal too: a forwarded renewal's answer can come before
    // the local state applies it, and the same seq again would be refused.
    const seq = Math.max(lease.renewalSeq, this.lastRenewalSeqSent) + 1;
    this.lastRenewalSeqSent = seq;
    const cmd: Command = { v: 1, type: 'lease.renew', atMs: Date.now(), holder: this.nodeId, generation: lease.generation, seq };
    this.renewalInFlight = true;
    this.lastRenewalSentAt = this.now();
    holder.renewalSent(seq);
    this.proposeFn(cmd)
      .then((r) => {
        if (r.ok) {
          holder.renewalCommitted(seq);
          this.counters.leaseRenewalsOk++;
          if (this.renewalFailures > 0) this.log({ level: 'info', msg: 'lease renewals succeed again', node: this.nodeId, after: this.renewalFailures });
          this.renewalFailures = 0;
        } else {
          this.renewalFailed(r.error.message);
        }
      })
      .catch((err: Error) => this.renewalFailed(err.message))
      .finally(() => {
        this.renewalInFlight = false;
        this.poke();
      });
  }

  private renewalFailed(error: string): void {
    this.renewalFailures++;
    this.counters.leaseRenewalsFailed++;
    if (this.renewalFailures === 1 || this.renewalFailures % 20 === 0) this.log({ level: 'warn', msg: 'lease renewal failed', node: this.nodeId, error, failures: this.renewalFailures });
  }

  /**
   * Sets the fence to what the state wants: writable only while this node is
   * the primary of the current generation and its lease has not reached the
   * fence deadline (I3, I5). Applies only to a running server that is not in
   * recovery (a standby refuses writes anyway).
   */
  private async enforceFence(): Promise<void> {
    const inst = this.instance;
    if (this.stopping || !inst?.isRunning() || this.observed !== 'primary') return;
    const s = this.getState();
    const holds = this.holdsLease(s);
    // UNSAFE (no-fence): a server once writable stays so whatever happens to its lease.
    const writable = (holds && !this.holder!.mustFence() && this.steppingDown === undefined) || (this.fenced === false && this.unsafe.has('no-fence'));
    if (this.fenced === !writable) return;
    const reason = !holds ? `not the primary of generation ${s.postgres.generation}` : 'lease about to lapse without a committed renewal';
    await this.pgLock.run(async () => {
      if (this.stopping || !inst.isRunning()) return;
      // Decide again under the lock: the state may have moved while we waited.
      const holdsNow = this.holdsLease(this.getState());
      const wantWritable = (holdsNow && !this.holder!.mustFence() && this.steppingDown === undefined) || (this.fenced === false && this.unsafe.has('no-fence'));
      if (this.fenced === !wantWritable) return;
      if (!wantWritable) {
        const t0 = this.now();
        const r = await inst.setReadOnly(true);
        this.fenced = true;
        this.counters.fences++;
        if (this.fencedReasonLogged !== reason) {
          this.log({ level: 'warn', msg: 'fenced postgres: read-only', node: this.nodeId, reason, terminated: r.terminated, ms: Math.round(this.now() - t0) });
          this.fencedReasonLogged = reason;
        }
      } else {
        // The generation marker first: a write the node takes must find its own
        // generation in ogel.generation (clients and the jepsen one-writer check
        // read it in the same transaction).
        if (this.markedGeneration !== this.holder!.generation) await this.markGeneration(inst, this.holder!.generation);
        await inst.setReadOnly(false);
        if (this.fenced === true) this.counters.unfences++;
        if (this.fenced === true) this.log({ level: 'info', msg: 'lease valid: postgres writable again', node: this.nodeId, generation: this.holder!.generation });
        this.fenced = false;
        this.fencedReasonLogged = null;
      }
    });
  }
}
