// The ogel daemon: wires storage, transport, Raft, the cluster state machine, the
// leader-only controllers and the admin API for one node of the cluster.

import { chmod, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { RaftNode, LevelStorage, TcpTransport, type PeerAddress } from '../../raft/index.js';
import { ClusterStateMachine, type ApplyResult, type ClusterState, type Command } from '../../fsm/index.js';
import { hostPortOf, type Config, type NodeConfig } from '../config/index.js';
import { ApiServer } from '../api/server.js';
import { ControllerManager } from '../controllers/manager.js';
import { MembershipController } from '../controllers/membership.js';
import { BootstrapPrimaryController } from '../controllers/bootstrap-primary.js';
import { FailoverController } from '../controllers/failover.js';
import { TenantProvisioner } from '../controllers/tenant-provisioner.js';
import { PostgresAgent } from '../postgres/agent.js';
import { restoreForBootstrap } from '../archive/bootstrap-restore.js';
import { resolvePostgresBinaries } from '../postgres/binaries.js';
import { ensurePostgresUser } from '../postgres/os-user.js';
import { LeaderProposer } from './proposer.js';
import { localAddressFor, peerDispatcher } from '../net/bind.js';
import { AgentRpcClient } from './agent-rpc-client.js';
import { okOrThrow, startBackups, type DaemonBackups } from './backups.js';
import { clusterPrefix } from '../backup/layout.js';
import { apiAddressOf, PeerClient } from './peer-client.js';
import type { Agent as HttpAgent } from 'undici';
import type { Logger } from '../log.js';
import { withFields } from '../log.js';
import { DaemonBackend, type DaemonBackendDeps } from './backend.js';
import { proposeOnLeader } from './propose-on-leader.js';
import { DaemonMetrics } from './metrics.js';
import { LeaseTracker } from './lease-tracker.js';
import { startNodeProxy } from '../proxy/node-proxy.js';
import type { ProxyServer } from '../proxy/server.js';
import { parseUnsafeSwitches, UNSAFE_ENV, UNSAFE_SWITCHES } from '../postgres/unsafe-switches.js';
import { REJOINING_MSG, RejoinMarker } from './rejoin-marker.js';
import { volumeUsage } from '../postgres/settings.js';

export type BootstrapMode = 'auto' | 'force' | 'join';

export interface DaemonOptions {
  config: Config;
  nodeId: string;
  /**
   * auto: bootstrap a new cluster from the config's nodes if the data directory is
   * empty, else restart from it. force: bootstrap, refusing existing data. join:
   * never bootstrap; wait to be added by the cluster (ogel members add).
   */
  bootstrap: BootstrapMode;
  log: Logger;
}

export class Daemon {
  private constructor(
    readonly self: NodeConfig,
    readonly storage: LevelStorage,
    readonly raft: RaftNode<ApplyResult>,
    readonly fsm: ClusterStateMachine,
    readonly api: ApiServer,
    readonly controllers: ControllerManager,
    private readonly transport: TcpTransport,
    private readonly log: Logger,
    readonly agent: PostgresAgent | undefined,
    private readonly peerHttp: HttpAgent,
    /** The Postgres proxy. */
    readonly proxy: ProxyServer,
    private readonly backups: DaemonBackups,
  ) {}

  static async start(o: DaemonOptions): Promise<Daemon> {
    const { config } = o;
    const self = config.nodes.find((n) => n.id === o.nodeId);
    if (!self) throw new Error(`node '${o.nodeId}' is not in the config (nodes: ${config.nodes.map((n) => n.id).join(', ')})`);
    const log = o.log;
    const unsafe = parseUnsafeSwitches(process.env[UNSAFE_ENV]);
    const dataDir = resolve(config.cluster.dataDir, self.id);
    // 0711: the unprivileged Postgres user must traverse to <node>/pg; the Raft
    // directory itself stays private (0700).
    await mkdir(resolve(config.cluster.dataDir), { recursive: true, mode: 0o711 });
    await mkdir(dataDir, { recursive: true, mode: 0o711 });
    await chmod(dataDir, 0o711);
    await mkdir(join(dataDir, 'raft'), { recursive: true, mode: 0o700 });
    const { storage, rejoin, rejoining } = await openRaftStorage(o, dataDir);
    if (rejoining) log({ level: 'warn', msg: REJOINING_MSG, marker: rejoin.path });

    const raftAddr = hostPortOf(self.raft, `${self.id}'s raft address`);
    const transport = new TcpTransport({
      self: self.id,
      clusterId: config.cluster.name,
      secret: config.cluster.secret,
      listen: { host: self.listenHost ?? raftAddr.host, port: raftAddr.port },
      peers: new Map(config.nodes.filter((n) => n.id !== self.id).map((n) => [n.id, hostPortOf(n.raft, `${n.id}'s raft address`)])),
      log: withFields(log, { component: 'raft-transport' }),
    });
    // Raft peers follow the members the state machine knows, so members added at
    // runtime become reachable; the config's nodes are always kept as a floor.
    let transportRef: TcpTransport | undefined;
    const syncPeers = (state: ClusterState) => {
      if (!transportRef) return;
      const peers = new Map<string, PeerAddress>();
      for (const n of config.nodes) if (n.id !== self.id) peers.set(n.id, hostPortOf(n.raft, `${n.id}'s raft address`));
      for (const m of state.members.values()) if (m.id !== self.id) peers.set(m.id, hostPortOf(m.addresses.raft, `${m.id}'s raft address (membership record)`));
      transportRef.setPeers(peers);
    };
    let agentRef: PostgresAgent | undefined;
    let backupsRef: DaemonBackups | undefined;
    // Created before the state machine so it sees every renewal, replayed ones included.
    const leaseTracker = new LeaseTracker();
    const fsm = new ClusterStateMachine({
      onApplied: (e) => {
        leaseTracker.observe(e.state.postgres.lease);
        if (e.result.ok && (e.command?.type === 'member.add' || e.command?.type === 'member.remove')) syncPeers(e.state);
        // Roles, generation and lease live in pg.* and lease.* commands: let the agent react at once.
        if (e.result.ok && (e.command?.type.startsWith('pg.') || e.command?.type.startsWith('lease.'))) agentRef?.poke();
        if (e.result.ok && e.command?.type.startsWith('backup.')) onBackupCommand(backupsRef, e.command);
      },
      onRestored: (state) => {
        leaseTracker.observe(state.postgres.lease);
        syncPeers(state);
      },
    });
    let raft: RaftNode<ApplyResult>;
    try {
      raft = await RaftNode.start<ApplyResult>({
        id: self.id,
        storage,
        transport,
        stateMachine: fsm,
        tickMs: config.raft.tickMs,
        electionTicks: config.raft.electionTicks,
        heartbeatTicks: config.raft.heartbeatTicks,
        snapshotEveryEntries: config.raft.snapshotEveryEntries,
        raft: { rejoining: rejoining && !unsafe.has('no-rejoin-guard') },
        // Left behind, the marker only makes the next start rejoin once more (safe): log, do not stop Raft.
        onRejoined: () =>
          rejoin.remove().catch((e: Error) => log({ level: 'error', msg: 'could not remove the rejoin marker', marker: rejoin.path, error: e.message })),
        log: withFields(log, { component: 'raft' }),
      });
    } catch (e) {
      await storage.close();
      throw e;
    }
    if (rejoining) rejoin.followUntilRejoined(raft, log);
    // HTTP calls to other nodes' admin APIs leave from this node's own address,
    // like the Raft transport's connections, so a partition of this node's address
    // cuts both (src/net/bind.ts). One pool for every caller; closed on stop.
    const peerHttp = peerDispatcher(localAddressFor(self.api, self.listenHost));
    const peers = new PeerClient({ token: config.api.token, dispatcher: peerHttp, addressOf: (id) => apiAddressOf(fsm.state, config, id) });
    const metrics = new DaemonMetrics(raft);
    // Proposing is made first: the controllers and the API's backend both use it,
    // and the backend is made last, from everything it works with.
    const propose = proposeOnLeader(raft, metrics);
    // Always present: operators' switchovers and failovers need it even when
    // automatic failover is off (postgres.failover.enabled: false).
    const failover = new FailoverController(config, fsm, propose, {
      automatic: config.postgres.failover.enabled,
      agents: new AgentRpcClient(peers),
      onSwitchover: (r) => metrics.observeSwitchoverPause(r.pauseMs / 1000),
    });
    const tenantProvisioner = new TenantProvisioner(config, fsm, propose, {
      syncState: async () => {
        await raft.read();
      },
    });
    const proposer = new LeaderProposer(raft, peers);
    const backups = startBackups({
      config,
      self,
      fsm,
      propose: (cmd) => proposer.propose(cmd).then(okOrThrow),
      syncState: async () => void (await raft.read()),
      nodeContactMs: (id) => (id === self.id ? 0 : (raft.status().peers.find((p) => p.id === id)?.lastContactMs ?? null)),
      isLeader: () => raft.isLeader(),
      dataDir,
      agent: () => agentRef,
      log: withFields(log, { component: 'backups' }),
    });
    backupsRef = backups;
    const controllers = new ControllerManager(
      [
        new MembershipController(config, raft, fsm, propose),
        new BootstrapPrimaryController(config, fsm, propose),
        failover,
        tenantProvisioner,
        backups.scheduler,
      ],
      withFields(log, { component: 'controllers' }),
    );
    // The agent brings the local Postgres to the role the state machine wants. If
    // Postgres cannot run here (no binaries for this platform), the control plane
    // still runs and says why.
    let agent: PostgresAgent | undefined;
    for (const name of unsafe)
      log({ level: 'error', msg: `UNSAFE switch on (${UNSAFE_ENV}): ${name}: ${UNSAFE_SWITCHES[name]}; for testing the test suite only` });
    try {
      agent = new PostgresAgent({
        unsafe,
        config,
        nodeId: self.id,
        dataDir: join(dataDir, 'pg'),
        state: () => fsm.state,
        rejoining: () => raft.isRejoining(),
        propose: (cmd) => proposer.propose(cmd),
        syncState: async () => void (await raft.read()),
        log: withFields(log, { component: 'agent' }),
        ...bootstrapRestoreOption(config, log),
      });
      agent.start();
      agentRef = agent;
      backups.startWorker();
    } catch (e) {
      log({ level: 'error', msg: 'Postgres is not supervised on this node', error: (e as Error).message });
    }
    raft.on('leader', (c: { role: string }) => void controllers.setLeader(c.role === 'leader'));
    transportRef = transport;
    syncPeers(fsm.state); // the snapshot restored at start came before transportRef was set
    raft.on('fatal', (e: Error) => {
      log({ level: 'error', msg: 'raft stopped on a fatal error; exiting', error: e.message });
      process.exitCode = 1;
      process.kill(process.pid, 'SIGTERM');
    });

    // The Postgres proxy on nodes[].proxy (docs/proxy.md); it routes by the state
    // machine. Started before the admin API, whose backend reports its figures.
    let proxy: ProxyServer;
    try {
      proxy = (
        await startNodeProxy({ config, self, state: () => fsm.state, dataDir, log: withFields(log, { component: 'proxy' }), registry: metrics.registry })
      ).proxy;
    } catch (e) {
      await backups.close();
      await agent?.stop();
      await raft.stop('proxy failed to start');
      await storage.close();
      await peerHttp.destroy();
      throw e;
    }
    const backend = new DaemonBackend({
      cfg: config,
      self,
      raft,
      fsm,
      metrics,
      log: withFields(log, { component: 'api' }),
      propose,
      leaseTracker,
      agent,
      proxy,
      failoverController: failover,
      tenantProvisioner,
      peers,
      backups: backendBackups(backups, config),
    });
    wireStoreMetrics(metrics, fsm, self.id, backups, backend);
    metrics.setPostgresView({
      nodeId: self.id,
      state: () => fsm.state,
      agent: () => agent,
      replication: () => backend.replication.read(),
      volume: () => volumeUsage(join(dataDir, 'pg')),
    });
    const apiAddr = hostPortOf(self.api, `${self.id}'s api address`);
    const api = new ApiServer({
      host: self.listenHost ?? apiAddr.host,
      port: apiAddr.port,
      token: config.api.token,
      forwardTimeoutMs: config.api.forwardTimeoutMs,
      backend,
      log: withFields(log, { component: 'api' }),
      dispatcher: peerHttp,
    });
    try {
      await api.listen();
    } catch (e) {
      await proxy.close();
      await backups.close();
      await agent?.stop();
      await raft.stop('api failed to start');
      await storage.close();
      await peerHttp.destroy();
      throw new Error(`cannot listen on ${self.api} for the admin API: ${(e as Error).message}`);
    }
    log({ level: 'info', msg: 'daemon started', node: self.id, raft: self.raft, api: self.api, proxy: self.proxy });
    return new Daemon(self, storage, raft, fsm, api, controllers, transport, log, agent, peerHttp, proxy, backups);
  }

  /** Graceful stop: a leader hands over leadership first, so the cluster does not wait out an election timeout. */
  async stop(): Promise<void> {
    if (this.raft.isLeader()) {
      const started = performance.now();
      try {
        const to = await this.raft.transferLeadership(undefined, 2_000);
        this.log({ level: 'info', msg: 'transferred leadership before shutdown', to, durationMs: Math.round(performance.now() - started) });
      } catch (e) {
        this.log({ level: 'warn', msg: 'could not transfer leadership before shutdown', error: (e as Error).message });
      }
    }
    await this.proxy.close();
    await this.controllers.stop();
    await this.backups.close();
    await this.agent?.stop();
    await this.api.close();
    // Its users (controllers, agent, API) have stopped: nothing in flight is still wanted.
    await this.peerHttp.destroy();
    await this.raft.stop('shutdown');
    await this.storage.close();
    void this.transport;
    this.log({ level: 'info', msg: 'daemon stopped' });
  }
}

/** What the API's backend uses of the backups and the WAL archive. */
function backendBackups(backups: DaemonBackups, config: Config): DaemonBackendDeps['backups'] {
  return { ...backups.forBackend(), archive: { status: () => backups.archive?.status() ?? null, store: backups.store, clusterPrefix: clusterPrefix(config) } };
}

/** The backup and WAL archive metrics' sources: the index, this node's worker and archiver, and (on the primary) its slots. */
function wireStoreMetrics(metrics: DaemonMetrics, fsm: ClusterStateMachine, selfId: string, backups: DaemonBackups, backend: DaemonBackend): void {
  metrics.setBackupView({ backups: () => fsm.state.backups, uploadedBytes: () => backups.worker?.uploadedBytes() ?? 0 });
  metrics.setArchiveView({
    state: () => fsm.state,
    archive: () => backups.archive?.status() ?? null,
    slots: async () => (fsm.state.postgres.primary === selfId ? ((await backend.replication.read())?.slots ?? null) : null),
  });
}

/** A backup.* command applied: the worker and scheduler look again; a forgotten or failed backup's objects are swept soon. */
function onBackupCommand(b: DaemonBackups | undefined, cmd: Command): void {
  b?.worker?.poke();
  b?.scheduler.poke();
  if (cmd.type === 'backup.delete' || (cmd.type === 'backup.update' && cmd.state === 'failed')) b?.sweepSoon();
}

/**
 * Opens this node's Raft log and decides whether it rejoins: an empty store may
 * be a wiped node of a running cluster (I1), so it rejoins without a say in any
 * quorum until it has caught up (RaftConfig.rejoining). Only --bootstrap, the
 * operator's word that the cluster is new, skips that. The marker outlives
 * restarts in the middle of catching up.
 */
async function openRaftStorage(o: DaemonOptions, dataDir: string): Promise<{ storage: LevelStorage; rejoin: RejoinMarker; rejoining: boolean }> {
  const { config, log } = o;
  const storage = await LevelStorage.open(join(dataDir, 'raft'));
  const rejoin = new RejoinMarker(dataDir);
  let rejoining: boolean;
  try {
    if (o.bootstrap === 'force' && !storage.isEmpty()) {
      throw new Error(
        `refusing to bootstrap: ${join(dataDir, 'raft')} already holds this node's Raft state; ` +
          'restart without --bootstrap to rejoin the cluster, or remove the directory to start a new cluster (this destroys its data)',
      );
    }
    rejoining = o.bootstrap !== 'force' && (storage.isEmpty() || (await rejoin.exists()));
    if (rejoining) await rejoin.write();
    else await rejoin.remove();
    if (o.bootstrap !== 'join' && storage.isEmpty()) {
      await storage.bootstrap({ voters: config.nodes.map((n) => n.id), learners: [] });
      log({ level: 'info', msg: 'bootstrapped a new cluster', voters: config.nodes.map((n) => n.id) });
    }
  } catch (e) {
    await storage.close();
    throw e;
  }
  return { storage, rejoin, rejoining };
}

/** Disaster recovery (config restoreFrom): the agent's bootstrap fills the first primary from the lost cluster's store. */
function bootstrapRestoreOption(config: Config, log: Logger): { bootstrapRestore?: (dir: string) => Promise<void> } {
  if (config.restoreFrom === undefined) return {};
  return {
    bootstrapRestore: (dir) =>
      restoreForBootstrap({
        config,
        dir,
        user: ensurePostgresUser(),
        binaries: resolvePostgresBinaries(config.postgres.binDir),
        log: withFields(log, { component: 'restore' }),
      }),
  };
}
