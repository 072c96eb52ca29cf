// The primary's lease and its fence (I3, I5), on this node. Its own loop, every
// LEASE_TICK_MS (at most leaseMs/20): renew the lease while Postgres runs as the
// primary of the current generation, and set the fence to what the state
// wants. It never waits behind a slow reconcile step for the renewal; fence and
// unfence take the agent's server lock, so they never race a reconcile step on
// the server's state.
//
// The rule (enforceFence): the server is writable only while this node is the
// primary of the current generation, its lease has not reached the fence
// deadline (lease.ts: measured from when the renewal was SENT), and no
// switchover step-down owns it. A server starts fenced and is promoted fenced;
// only a committed renewal of its own lease lifts the fence.

import type { ClusterState, Command } from '../../../fsm/index.js';
import { adminPassword } from '../../auth/passwords.js';
import type { AgentContext } from '../agent-context.js';
import type { PostgresInstance } from '../instance.js';
import { isRoot } from '../os-user.js';
import { quoteLiteral } from '../query.js';
import { setAutoConf } from '../standby.js';
import { LeaseHolder, leaseTiming } from './lease.js';

const LEASE_TICK_MAX_MS = 50;
const LEASE_TICK_MIN_MS = 5;

export class LeaseKeeper {
  private holder: LeaseHolder | undefined;
  private renewalInFlight = false;
  private lastRenewalSentAt = Number.NEGATIVE_INFINITY;
  private lastRenewalSeqSent = 0;
  private renewalFailures = 0;
  private fencedReasonLogged: string | null = null;
  private timer: NodeJS.Timeout | undefined;
  private busy: Promise<void> | undefined;

  /** Writes refused (default_transaction_read_only), as last set here; null: not known yet. */
  private fencedState: boolean | null = null;
  /** Generation the ogel.generation row holds, as this process last wrote it. */
  private markedGeneration = 0;
  /** Set while a switchover step-down owns the server (generation being given up). */
  private steppingDownGeneration: number | undefined;
  /** The generation whose lease this node released: not restarted as its primary while the local state lags. */
  private releasedGenerationValue: number | undefined;

  constructor(private readonly ctx: AgentContext) {}

  // ------------------------------------------------------------------ what the agent reads

  get fenced(): boolean | null {
    return this.fencedState;
  }

  /** The generation a switchover step-down is giving up, while it runs. */
  get steppingDown(): number | undefined {
    return this.steppingDownGeneration;
  }

  get releasedGeneration(): number | undefined {
    return this.releasedGenerationValue;
  }

  /** Until this node must fence; undefined unless it holds a lease. Negative: overdue. */
  remainingMs(): number | undefined {
    return this.holder?.remainingMs();
  }

  // ------------------------------------------------------------------ the loop

  start(): void {
    this.scheduleTick();
  }

  /** No tick is scheduled after this (the agent is stopping). */
  cancelTicks(): void {
    if (this.timer) clearTimeout(this.timer);
  }

  /** Resolves once a running tick has ended. */
  async idle(): Promise<void> {
    await this.busy;
  }

  private leaseMs(): number {
    return this.ctx.state().postgres.lease?.durationMs ?? this.ctx.config.postgres.leaseMs;
  }

  private scheduleTick(): void {
    if (this.ctx.stopping()) return;
    const tickMs = Math.max(LEASE_TICK_MIN_MS, Math.min(LEASE_TICK_MAX_MS, Math.floor(this.leaseMs() / 20)));
    this.timer = setTimeout(() => {
      this.busy = this.tick()
        .catch((err: Error) => this.ctx.log({ level: 'error', msg: 'lease tick failed', node: this.ctx.nodeId, error: err.message }))
        .finally(() => this.scheduleTick());
    }, tickMs);
  }

  private async tick(): Promise<void> {
    const s = this.ctx.state();
    // Renew only while Postgres runs as a primary: the proxy takes a renewed
    // lease to mean "writable", so a node still finishing its promotion (or a
    // primary whose Postgres is down) must not renew; if Postgres stays down
    // past the lease, failover is what should happen.
    if (this.holdsLease(s) && this.ctx.observed() === 'primary') this.maybeRenew(s);
    await this.enforceFence();
  }

  // ------------------------------------------------------------------ the lease

  /** Is this node the lease holder of the current generation? Keeps `holder` matching it. */
  holdsLease(s: ClusterState): boolean {
    const pg = s.postgres;
    const lease = pg.lease;
    const ok = pg.primary === this.ctx.nodeId && lease !== null && lease.holder === this.ctx.nodeId && lease.generation === pg.generation;
    if (!ok) {
      this.holder = undefined;
      return false;
    }
    if (this.holder?.generation !== lease.generation) {
      this.holder = new LeaseHolder(lease.generation, leaseTiming(lease.durationMs), this.ctx.now);
      this.lastRenewalSentAt = Number.NEGATIVE_INFINITY;
      this.lastRenewalSeqSent = 0;
    }
    return true;
  }

  /** Sends a renewal unless one is in flight or the last went out less than a quarter lease ago. Call only after holdsLease(s). */
  maybeRenew(s: ClusterState): void {
    const lease = s.postgres.lease!;
    const holder = this.holder!;
    if (this.renewalInFlight || this.ctx.now() - this.lastRenewalSentAt < lease.durationMs / 4) return;
    // Past our own last renewal too: a forwarded renewal's answer can come before
    // the local state applies it, and the same seq again would be refused.
    const seq = Math.max(lease.renewalSeq, this.lastRenewalSeqSent) + 1;
    this.lastRenewalSeqSent = seq;
    const cmd: Command = { v: 1, type: 'lease.renew', atMs: Date.now(), holder: this.ctx.nodeId, generation: lease.generation, seq };
    this.renewalInFlight = true;
    this.lastRenewalSentAt = this.ctx.now();
    holder.renewalSent(seq);
    this.ctx
      .propose(cmd)
      .then((r) => {
        if (r.ok) {
          holder.renewalCommitted(seq);
          this.ctx.counters.leaseRenewalsOk++;
          if (this.renewalFailures > 0)
            this.ctx.log({ level: 'info', msg: 'lease renewals succeed again', node: this.ctx.nodeId, after: this.renewalFailures });
          this.renewalFailures = 0;
        } else {
          this.renewalFailed(r.error.message);
        }
      })
      .catch((err: Error) => this.renewalFailed(err.message))
      .finally(() => {
        this.renewalInFlight = false;
        this.ctx.poke();
      });
  }

  private renewalFailed(error: string): void {
    this.renewalFailures++;
    this.ctx.counters.leaseRenewalsFailed++;
    if (this.renewalFailures === 1 || this.renewalFailures % 20 === 0)
      this.ctx.log({ level: 'warn', msg: 'lease renewal failed', node: this.ctx.nodeId, error, failures: this.renewalFailures });
  }

  // ------------------------------------------------------------------ the fence

  /**
   * Sets the fence to what the state wants: writable only while this node is
   * the primary of the current generation and its lease has not reached the
   * fence deadline (I3, I5). Applies only to a running server that is not in
   * recovery (a standby refuses writes anyway).
   */
  async enforceFence(): Promise<void> {
    const inst = this.ctx.instance();
    if (this.ctx.stopping() || !inst?.isRunning() || this.ctx.observed() !== 'primary') return;
    const s = this.ctx.state();
    const holds = this.holdsLease(s);
    // UNSAFE (no-fence): a server once writable stays so whatever happens to its lease.
    const writable =
      (holds && !this.holder!.mustFence() && this.steppingDownGeneration === undefined) || (this.fencedState === false && this.ctx.unsafe.has('no-fence'));
    if (this.fencedState === !writable) return;
    const reason = !holds ? `not the primary of generation ${s.postgres.generation}` : 'lease about to lapse without a committed renewal';
    await this.ctx.serverLock.run(async () => {
      if (this.ctx.stopping() || !inst.isRunning()) return;
      // Decide again under the lock: the state may have moved while we waited.
      const holdsNow = this.holdsLease(this.ctx.state());
      const wantWritable =
        (holdsNow && !this.holder!.mustFence() && this.steppingDownGeneration === undefined) || (this.fencedState === false && this.ctx.unsafe.has('no-fence'));
      if (this.fencedState === !wantWritable) return;
      if (!wantWritable) {
        const t0 = this.ctx.now();
        const r = await inst.setReadOnly(true);
        this.fencedState = true;
        this.ctx.counters.fences++;
        if (this.fencedReasonLogged !== reason) {
          this.ctx.log({
            level: 'warn',
            msg: 'fenced postgres: read-only',
            node: this.ctx.nodeId,
            reason,
            terminated: r.terminated,
            ms: Math.round(this.ctx.now() - t0),
          });
          this.fencedReasonLogged = reason;
        }
      } else {
        // The generation marker first: a write the node takes must find its own
        // generation in ogel.generation (clients and the jepsen one-writer check
        // read it in the same transaction).
        if (this.markedGeneration !== this.holder!.generation) await this.markGeneration(inst, this.holder!.generation);
        await inst.setReadOnly(false);
        if (this.fencedState === true) this.ctx.counters.unfences++;
        if (this.fencedState === true)
          this.ctx.log({ level: 'info', msg: 'lease valid: postgres writable again', node: this.ctx.nodeId, generation: this.holder!.generation });
        this.fencedState = false;
        this.fencedReasonLogged = null;
      }
    });
  }

  /**
   * Before a server that will run as a primary is started: start fenced.
   * Whatever the fence was when it stopped, it takes no write before a renewal
   * of its own lease has committed (I3); the lease loop lifts the fence then.
   */
  fenceBeforeStart(): void {
    const user = this.ctx.osUser();
    setAutoConf(this.ctx.dataDir, { default_transaction_read_only: 'on' }, isRoot() ? { uid: user.uid, gid: user.gid } : undefined);
  }

  /**
   * A server the agent just started: a primary starts fenced (the agent wrote
   * the fence into postgresql.auto.conf before the start), so it takes no write
   * before a renewal of its own lease has committed (I3); a standby's fence is
   * not known.
   */
  started(asPrimary: boolean): void {
    this.fencedState = asPrimary ? true : null;
  }

  /**
   * Before a promotion (under the server lock): fenced first, so the new
   * primary is never writable before a renewal of its own lease has committed
   * (I3, I5). Its read-only sessions stay (they cannot have written anything).
   */
  async fenceForPromotion(inst: PostgresInstance): Promise<void> {
    await inst.setReadOnly(true, { terminate: false });
    this.fencedState = true;
  }

  /** After a promotion: a renewal goes out at once if the lease is ours; read-only until it commits (I5). */
  async afterPromotion(): Promise<void> {
    const now = this.ctx.state();
    if (this.holdsLease(now)) this.maybeRenew(now);
    await this.enforceFence();
  }

  // ------------------------------------------------------------------ the switchover's step-down (step-down.ts)

  /**
   * The step-down owns the server from here: marked fenced before the fence
   * itself, so while it runs enforceFence has nothing to do and the lease loop
   * keeps renewing through the drain instead of queueing behind it on the
   * server lock. If the step-down fails before the release, the next tick sees
   * a valid lease and a fenced server, and unfences it.
   */
  beginStepDown(generation: number): void {
    this.steppingDownGeneration = generation;
    this.fencedState = true;
  }

  /** The lease of `generation` was released: this node holds none, and is not restarted as that generation's primary. */
  released(generation: number): void {
    this.releasedGenerationValue = generation;
    this.holder = undefined;
  }

  endStepDown(): void {
    this.steppingDownGeneration = undefined;
  }

  // ------------------------------------------------------------------ the generation marker

  /** Writes the generation marker if it is not this generation's yet, only while the server holds a valid lease (under the server lock). */
  async markGenerationIfDue(inst: PostgresInstance, generation: number): Promise<void> {
    if (this.markedGeneration === generation) return;
    await this.ctx.serverLock.run(async () => {
      if (this.fencedState !== false || !inst.isRunning()) return; // only while it holds a valid lease
      await this.markGeneration(inst, generation);
    });
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
    const node = quoteLiteral(this.ctx.nodeId);
    const sql = [
      'BEGIN READ WRITE',
      'SET LOCAL synchronous_commit = local',
      ...(exists
        ? []
        : [
            'CREATE SCHEMA IF NOT EXISTS ogel',
            `CREATE TABLE IF NOT EXISTS ogel.generation (one boolean PRIMARY KEY DEFAULT true CHECK (one), generation bigint NOT NULL, node text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())`,
            `COMMENT ON TABLE ogel.generation IS 'Written by ogel: the generation (fencing token) this server was last primary of'`,
            `ALTER ROLE postgres WITH PASSWORD ${quoteLiteral(adminPassword(this.ctx.config))}`,
          ]),
      `INSERT INTO ogel.generation (one, generation, node) VALUES (true, ${g}, ${node}) ON CONFLICT (one) DO UPDATE SET generation = EXCLUDED.generation, node = EXCLUDED.node, updated_at = now()`,
      'COMMIT',
    ].join(';\n');
    await inst.query(sql);
    this.markedGeneration = generation;
    this.ctx.log({
      level: 'info',
      msg: exists ? 'recorded the generation in ogel.generation' : 'created the ogel schema and set the admin password',
      node: this.ctx.nodeId,
      generation,
    });
  }
}
