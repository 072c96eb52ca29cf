// The agent: runs on every node and brings its local Postgres to the role the
// replicated state machine wants. Level-triggered and idempotent: every pass
// reads the whole wanted state (fsm/) and the whole observed state (the data
// dir, the postmaster, pg_is_in_recovery()) and takes the one next step, so a
// pass that fails or an agent that restarts at any point simply converges on
// a later pass.
//
// Two loops:
// - reconcile (here; every RECONCILE_INTERVAL_MS and on poke()): data dir
//   (provision.ts), start, report, promote, follow (follow.ts). Slow steps
//   (initdb, a base backup) live here.
// - lease (fence/lease-keeper.ts; every LEASE_TICK_MS, at most leaseMs/20):
//   renewals and the fence (I3, I5). It never waits behind a slow reconcile
//   step for the renewal, and fence/unfence take the same server lock as
//   reconcile steps, so the two never race on the server's state.
// The parts see the agent only through AgentContext (agent-context.ts).
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

import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ApplyResult, ClusterState, Command, Lsn } from '../../fsm/index.js';
import { parseHostPort, type Config } from '../config/index.js';
import type { Logger } from '../log.js';
import { AgentError, ServerLock, type AgentContext, type AgentCounters, type ObservedRole } from './agent-context.js';
import { resolvePostgresBinaries, type PgBinaries } from './binaries.js';
import { monotonicMs, type MonotonicMs } from './fence/lease.js';
import { LeaseKeeper } from './fence/lease-keeper.js';
import { stepDownForSwitchover, type StepDownResult } from './fence/step-down.js';
import { Follower, rejoinMarker } from './follow.js';
import { PostgresInstance, type PgStatus } from './instance.js';
import { ensurePostgresUser, isRoot, type OsUser } from './os-user.js';
import { bootstrapPrimary, cloneStandby, clonedMarker, hasData, reclone } from './provision.js';
import { nodeIdForSlot, settingsFromConfig } from './settings.js';
import { configureStandby, stopWalReceiver } from './standby.js';
import type { UnsafeSwitch } from './unsafe-switches.js';

// The agent's public surface includes these (the daemon, metrics and the failover controller use them).
export { AgentError, type AgentCounters, type ObservedRole } from './agent-context.js';
export { SWITCHOVER_CATCH_UP_MS, SWITCHOVER_DRAIN_MAX_MS, type StepDownResult } from './fence/step-down.js';

export const RECONCILE_INTERVAL_MS = 100;
export const REPORT_INTERVAL_MS = 1000;
export const BACKOFF_MIN_MS = 100;
export const BACKOFF_MAX_MS = 2000;
/** How often the primary looks for replication slots of removed members. */
const SLOT_CHECK_INTERVAL_MS = 30_000;
const ZERO_LSN = '0/0' as Lsn;

export type WantedRole = 'primary' | 'standby' | 'recloning' | 'none';

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
  /**
   * Disaster recovery (config restoreFrom): fills the bootstrap primary's new
   * data directory from another cluster's object store instead of initdb.
   */
  bootstrapRestore?: (dir: string) => Promise<void>;
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
  private readonly serverLock = new ServerLock();

  private started = false;
  private stopping = false;
  private loopDone: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private poked = false;

  private wanted: WantedRole = 'none';
  private observed: ObservedRole = 'stopped';
  private lastError: string | null = null;
  private lastLoggedError: string | null = null;

  private readonly counters: AgentCounters = {
    leaseRenewalsOk: 0,
    leaseRenewalsFailed: 0,
    fences: 0,
    unfences: 0,
    promotions: 0,
    reclones: 0,
    standbyRestarts: 0,
  };

  private lastReport: { role: string; timeline: number; at: number } | undefined;
  private reportInFlight = false;
  private loggedWaiting: string | null = null;
  private slotsCheckedAt = Number.NEGATIVE_INFINITY;

  private readonly unsafe: ReadonlySet<UnsafeSwitch>;
  /** What the parts below see of this agent. */
  private readonly ctx: AgentContext;
  /** The lease and the fence (I3, I5): its own loop. */
  private readonly keeper: LeaseKeeper;
  /** Following the primary as a standby, and the failover's receiver stop. */
  private readonly follower: Follower;

  private readonly bootstrapRestore: ((dir: string) => Promise<void>) | undefined;

  constructor(opts: PostgresAgentOptions) {
    this.bootstrapRestore = opts.bootstrapRestore;
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
    this.ctx = this.makeContext();
    this.keeper = new LeaseKeeper(this.ctx);
    this.follower = new Follower(this.ctx);
  }

  private makeContext(): AgentContext {
    return {
      nodeId: this.nodeId,
      dataDir: this.dataDir,
      port: this.port,
      config: this.config,
      log: this.log,
      now: this.now,
      noSync: this.noSync,
      unsafe: this.unsafe,
      counters: this.counters,
      serverLock: this.serverLock,
      state: () => this.getState(),
      propose: (cmd) => this.proposeFn(cmd),
      proposeAndSync: (cmd) => this.proposeAndSync(cmd),
      poke: () => this.poke(),
      stopping: () => this.stopping,
      instance: () => this.instance,
      newInstance: (dataDir) => this.newInstance(dataDir),
      adopt: (inst) => this.attach(inst),
      observed: () => this.observed,
      setObserved: (role) => {
        this.observed = role;
      },
      binaries: () => (this.binaries ??= resolvePostgresBinaries(this.config.postgres.binDir)),
      osUser: () => (this.user ??= ensurePostgresUser()),
      logWaiting: (why) => this.logWaiting(why),
      bootstrapRestore: this.bootstrapRestore,
    };
  }

  // ------------------------------------------------------------------ lifecycle

  start(): void {
    if (this.started) return;
    this.started = true;
    this.loopDone = this.loop();
    this.keeper.start();
  }

  /** Run a reconcile pass now (e.g. the state machine applied something). */
  poke(): void {
    this.poked = true;
    this.wake?.();
  }

  /** Stops both loops, then Postgres (fast). Leaves no process behind. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.keeper.cancelTicks();
    this.wake?.();
    await this.loopDone;
    await this.keeper.idle();
    await this.serverLock.run(async () => {
      const inst = this.instance;
      if (inst?.isRunning()) await inst.stop('fast');
      else if (inst) await inst.stopOrphan('fast');
    });
    this.observed = 'stopped';
  }

  agentStatus(): AgentStatus {
    const remainingMs = this.keeper.remainingMs();
    const primaryHere = this.wanted === 'primary' && remainingMs !== undefined;
    return {
      wanted: this.wanted,
      observed: this.observed,
      running: this.instance?.isRunning() ?? false,
      fenced: this.keeper.fenced,
      leaseRemainingMs: primaryHere ? Math.round(remainingMs) : null,
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

  private settings() {
    return settingsFromConfig(this.config, this.nodeId, this.dataDir);
  }

  private newInstance(dataDir: string): PostgresInstance {
    const inst = new PostgresInstance({ dataDir, port: this.port, binaries: this.ctx.binaries(), user: this.ctx.osUser(), logger: this.log });
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
    if (this.keeper.steppingDown !== undefined) return; // a switchover step-down owns the server until it ends
    if (wanted === 'primary' && s.postgres.generation === this.keeper.releasedGeneration) return; // our lease.release is not applied here yet
    if (wanted === 'recloning') {
      await this.serverLock.run(() => reclone(this.ctx, s));
      return;
    }
    if (existsSync(clonedMarker(this.dataDir))) rmSync(clonedMarker(this.dataDir), { force: true }); // its setRole committed
    if (wanted === 'none' && !this.instance?.isRunning()) return; // nothing to do until there is a primary

    if (!hasData(this.dataDir)) {
      if (existsSync(this.dataDir) && readdirSync(this.dataDir).length > 0) {
        throw new AgentError(`${this.dataDir} is not empty but holds no Postgres data directory (no PG_VERSION); refusing to touch it: move it away`);
      }
      if (wanted === 'primary') await this.serverLock.run(() => bootstrapPrimary(this.ctx, s));
      else if (wanted === 'standby') await this.serverLock.run(() => cloneStandby(this.ctx, s));
      if (!hasData(this.dataDir)) return; // waiting (logged)
    }

    if (!this.instance) this.attach(this.newInstance(this.dataDir));
    const inst = this.instance!;

    if (!inst.isRunning()) {
      await this.serverLock.run(async () => {
        if (this.stopping || inst.isRunning()) return;
        const standbySignal = existsSync(join(this.dataDir, 'standby.signal'));
        if (wanted === 'standby' && !standbySignal) {
          // A former primary's data dir on a node that should follow. Started as it
          // is, it would be a second writable primary; streamed from the new
          // primary, it may hold WAL past the fork point. So it starts as a
          // standby of nobody, and the rejoin check decides (rejoinCheck).
          writeFileSync(rejoinMarker(this.dataDir), `${s.postgres.generation}\n`);
          const user = this.ctx.osUser();
          configureStandby(this.dataDir, { upstream: null, owner: isRoot() ? { uid: user.uid, gid: user.gid } : undefined });
          this.log({
            level: 'info',
            msg: 'former primary: starting as a standby without upstream for the rejoin check',
            node: this.nodeId,
            primary: s.postgres.primary,
            generation: s.postgres.generation,
          });
        }
        if (wanted === 'primary') {
          await this.syncState();
          if (this.wantedRole(this.getState()) !== 'primary') return; // the state was stale: the next pass decides again
        }
        const orphan = await inst.stopOrphan('fast');
        if (orphan !== undefined)
          this.log({ level: 'warn', msg: 'stopped a postmaster left by an earlier agent before starting ours', node: this.nodeId, pid: orphan });
        const asPrimary = !existsSync(join(this.dataDir, 'standby.signal'));
        inst.setClientAccess(!asPrimary);
        inst.writeConfig(this.settings());
        if (asPrimary) this.keeper.fenceBeforeStart(); // starts fenced (I3)
        await inst.start();
        this.keeper.started(asPrimary);
        this.log({ level: 'info', msg: 'postgres started', node: this.nodeId, pid: inst.pid, wanted });
      });
    }
    if (this.stopping || !inst.isRunning()) return;

    const st = await inst.status();
    this.observed = st.inRecovery ? 'standby' : 'primary';
    // An existing primary comes back writable if it was unfenced when it stopped:
    // fence it now unless our lease is valid (the lease loop does the same every tick).
    await this.keeper.enforceFence();
    this.maybeReport(st);

    if (this.observed === 'primary' && wanted !== 'primary') {
      const why = `fenced: no longer the primary (primary ${s.postgres.primary ?? 'none'}, generation ${s.postgres.generation}); waiting to be re-roled by failover`;
      if (this.loggedWaiting !== why) {
        this.log({ level: 'warn', msg: why, node: this.nodeId });
        this.loggedWaiting = why;
      }
      await this.keeper.enforceFence();
      const primary = s.postgres.primary;
      if (wanted === 'standby' && primary !== null && s.postgres.nodes.get(primary)?.reportedRole === 'primary') {
        // The new primary runs: stop this one (fenced, so no client write is
        // lost) and let the next pass start it for the rejoin check.
        await this.serverLock.run(async () => {
          if (!inst.isRunning()) return;
          await inst.stop('fast');
          this.observed = 'stopped';
          writeFileSync(rejoinMarker(this.dataDir), `${s.postgres.generation}\n`);
          this.log({ level: 'info', msg: 'stopped the former primary to rejoin as a standby', node: this.nodeId, primary, generation: s.postgres.generation });
        });
        this.poke();
      }
    } else if (this.observed === 'standby' && wanted === 'primary') {
      // The state machine made this node the primary (failover or switchover):
      // the receiver is stopped (the controller did it, or we do it now). Fenced
      // before the promotion, so it is never writable before a renewal of its own
      // lease has committed (I3, I5); then a renewal goes out at once.
      await this.serverLock.run(async () => {
        if (!inst.isRunning()) return;
        const stopped = await stopWalReceiver(inst);
        await this.keeper.fenceForPromotion(inst);
        const { ms } = await inst.promote();
        rmSync(rejoinMarker(this.dataDir), { force: true });
        this.observed = 'primary';
        this.counters.promotions++;
        this.log({
          level: 'info',
          msg: 'promoted to primary',
          node: this.nodeId,
          generation: s.postgres.generation,
          flushedLsn: stopped.flushedLsn,
          promoteMs: ms,
        });
      });
      // No lease of ours has committed yet: read-only until the first renewal does (I5).
      await this.keeper.afterPromotion();
      this.loggedWaiting = null;
    } else if (this.observed === 'standby' && wanted === 'standby') {
      if (existsSync(rejoinMarker(this.dataDir))) await this.follower.rejoinCheck(inst, s);
      else await this.follower.followPrimary(inst, st, s);
      this.loggedWaiting = null;
    } else {
      this.loggedWaiting = null;
    }

    if (this.observed === 'primary' && wanted === 'primary' && this.keeper.fenced === false && this.now() - this.slotsCheckedAt > this.slotCheckIntervalMs) {
      this.slotsCheckedAt = this.now();
      await this.dropSlotsOfRemovedMembers(inst, s);
    }

    if (this.observed === 'primary' && wanted === 'primary') await this.keeper.markGenerationIfDue(inst, s.postgres.generation);
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
      await this.syncState().catch((err: Error) =>
        this.log({ level: 'warn', msg: 'could not wait for the local state to catch up', node: this.nodeId, command: cmd.type, error: err.message }),
      );
    }
    return r;
  }

  /**
   * The failover fence step (I4), called by the leader's controller: stop our WAL
   * receiver so nothing more arrives from the old primary, and report the flushed
   * LSN. Idempotent; refused for a generation that is not the current one.
   */
  stopReceiverForFailover(generation: number, observedRenewalSeq?: number): Promise<{ flushedLsn: string; replayedLsn: string }> {
    return this.follower.stopReceiverForFailover(generation, observedRenewalSeq);
  }

  /**
   * The old primary's half of a switchover (fence/step-down.ts), called by the
   * leader: refuse writes, drain, wait for the target's flush, shut down, then
   * release the lease.
   */
  stepDownForSwitchover(generation: number, to: string, opts: { catchUpTimeoutMs?: number; drainMaxMs?: number } = {}): Promise<StepDownResult> {
    return stepDownForSwitchover(this.ctx, this.keeper, generation, to, opts);
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
}
