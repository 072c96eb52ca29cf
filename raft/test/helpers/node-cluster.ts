// A cluster of real RaftNodes in one process: LevelDB storage in temp dirs and the
// TCP transport on ephemeral loopback ports. For integration tests of the node.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RaftNode, type RaftNodeOptions } from '../../src/node/raft-node.js';
import { LevelStorage } from '../../src/storage/level-storage.js';
import { TcpTransport } from '../../src/transport/tcp-transport.js';
import type { PeerAddress } from '../../src/transport/transport.js';
import type { NodeId } from '../../src/core/types.js';
import { KvStateMachine, type KvResult } from '../../sim/kv-fsm.js';
import { setTimeout as sleep } from 'node:timers/promises';

export const SECRET = 'test-secret-0123456789abcdef';

export interface Member {
  id: NodeId;
  dir: string;
  storage: LevelStorage;
  transport: TcpTransport;
  node: RaftNode<KvResult>;
  fsm: KvStateMachine;
  port: number;
}

export class NodeCluster {
  readonly members = new Map<NodeId, Member>();
  private readonly addresses = new Map<NodeId, PeerAddress>();

  private constructor(
    readonly root: string,
    private readonly nodeOptions: Partial<RaftNodeOptions<KvResult>>,
  ) {}

  /** Starts `ids` bootstrapped as the initial voters. */
  static async start(ids: NodeId[], nodeOptions: Partial<RaftNodeOptions<KvResult>> = {}): Promise<NodeCluster> {
    const c = new NodeCluster(await mkdtemp(join(tmpdir(), 'ogel-node-')), nodeOptions);
    for (const id of ids) await c.startMember(id, { voters: ids, learners: [] });
    c.publishAddresses();
    return c;
  }

  /** Starts (or restarts, keeping its data dir) a member; `bootstrap` only for an initial voter's first start. */
  async startMember(id: NodeId, bootstrap?: { voters: NodeId[]; learners: NodeId[] }): Promise<Member> {
    const dir = join(this.root, id);
    const storage = await LevelStorage.open(dir, bootstrap ? { bootstrapConf: bootstrap } : {});
    const port = this.addresses.get(id)?.port ?? 0;
    const transport = new TcpTransport({
      self: id,
      clusterId: 'test',
      secret: SECRET,
      listen: { host: '127.0.0.1', port },
      peers: new Map(this.addresses),
      backoffMinMs: 10,
      backoffMaxMs: 100,
      log: () => {}, // peers stopping on purpose would otherwise warn on stderr
    });
    const fsm = new KvStateMachine();
    const node = await RaftNode.start({
      id,
      storage,
      transport,
      stateMachine: {
        apply: (data) => fsm.apply(JSON.parse(Buffer.from(data).toString('utf8'))),
        snapshot: () => fsm.snapshot(),
        restore: (d) => fsm.restore(d),
      },
      tickMs: 10,
      electionTicks: 10,
      ...this.nodeOptions,
    });
    const m: Member = { id, dir, storage, transport, node, fsm, port: transport.port };
    this.members.set(id, m);
    this.addresses.set(id, { host: '127.0.0.1', port: m.port });
    return m;
  }

  /** Tells every live member where every other member listens. */
  publishAddresses(): void {
    for (const m of this.members.values()) m.transport.setPeers(new Map([...this.addresses].filter(([id]) => id !== m.id)));
  }

  /** Stops a member as a crash would look to the others (its storage survives). */
  async stopMember(id: NodeId): Promise<void> {
    const m = this.members.get(id);
    if (!m) return;
    this.members.delete(id);
    await m.node.stop('test');
    await m.storage.close();
  }

  /** Polls until a leader known to every live member exists; returns it. */
  async waitForLeader(timeoutMs = 5_000, not?: NodeId): Promise<Member> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const leaders = [...this.members.values()].filter((m) => m.node.isLeader() && m.id !== not);
      if (leaders.length === 1) {
        const l = leaders[0]!;
        if ([...this.members.values()].every((m) => m.node.leaderId() === l.id)) return l;
      }
      await sleep(5);
    }
    const states = [...this.members.values()].map((m) => `${m.id}: ${m.node.status().role} (leader ${m.node.leaderId() || '-'})`);
    throw new Error(`no agreed leader within ${timeoutMs} ms: ${states.join('; ')}`);
  }

  async waitFor(cond: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await sleep(5);
    }
  }

  async close(): Promise<void> {
    for (const id of [...this.members.keys()]) await this.stopMember(id);
    await rm(this.root, { recursive: true, force: true });
  }
}

export function put(key: string, value: string): Uint8Array {
  return Buffer.from(JSON.stringify({ op: 'put', key, value }));
}
