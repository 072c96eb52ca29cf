// The agent on three real PostgreSQL 17 nodes in one process, sharing one
// ClusterStateMachine as "the cluster": each agent's propose encodes the command
// and applies it to that machine at once (a committed Raft log without Raft).
// Bootstrap, quorum-synchronous standbys, reports, lease renewals, the admin
// password, the ogel generation row, then fencing when renewals fail (I3, I5)
// and unfencing when they succeed again. Everything runs in a temp dir on
// ephemeral ports and is stopped and removed even when an assertion fails.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';

import { ClusterStateMachine, encodeCommand, type ApplyResult, type Command } from '../../fsm/index.js';
import { localClusterConfig, parseHostPort, type Config } from '../config/index.js';
import type { LogLine } from '../log.js';
import { adminPassword } from '../auth/passwords.js';
import { PostgresAgent } from './agent.js';
import { pidAlive } from './instance.js';
import { freePort, makeTempRoot, waitFor } from '../../test/helpers/postgres.js';
import { setTimeout as sleep } from 'node:timers/promises';

const LEASE_MS = 600;
const NODES = ['n1', 'n2', 'n3'] as const;

test('agents bootstrap a primary and two quorum standbys, renew the lease, fence when renewals fail', { timeout: 90_000 }, async () => {
  const root = makeTempRoot('ogel-agent-');
  const logs: string[] = [];
  const agents: PostgresAgent[] = [];
  const clients: pg.Client[] = [];
  try {
    const config: Config = localClusterConfig({
      dataDir: root,
      basePort: 20_000 + Math.floor(Math.random() * 20_000),
      secret: 'agent-test-secret-0123456789abcdef',
      token: 'agent-test-token',
    });
    // Postgres ports: ephemeral, free a moment ago (the other roles are never bound here).
    for (const n of config.nodes) n.postgres = `127.0.0.1:${await freePort()}`;
    config.postgres.leaseMs = LEASE_MS;
    config.postgres.parameters = { shared_buffers: '32MB', max_connections: 30, fsync: false };
    const portOf = (id: string) => {
      const a = parseHostPort(config.nodes.find((n) => n.id === id)!.postgres);
      assert.ok(a.ok);
      return a.port;
    };

    // --- the "cluster": one state machine, committed synchronously
    let index = 0;
    let failRenewals = false;
    let renewalsRejected = 0;
    const machine = new ClusterStateMachine({
      onApplied: () =>
        queueMicrotask(() => {
          for (const a of agents) a.poke();
        }),
    });
    const commit = (cmd: Command): ApplyResult => machine.apply(encodeCommand(cmd), ++index, 1);
    const propose = async (cmd: Command): Promise<ApplyResult> => {
      if (cmd.type === 'lease.renew' && failRenewals) {
        renewalsRejected++;
        return { ok: false, error: { code: 'not_leader' as never, message: 'test: renewals are not committing (simulated minority partition)' } };
      }
      return commit(cmd);
    };

    for (const n of config.nodes) {
      const r = commit({ v: 1, type: 'member.add', atMs: Date.now(), id: n.id, addresses: { raft: n.raft, api: n.api, proxy: n.proxy, postgres: n.postgres } });
      assert.ok(r.ok, JSON.stringify(r));
    }
    for (const id of NODES) {
      agents.push(
        new PostgresAgent({
          config,
          nodeId: id,
          dataDir: join(root, id, 'pg'),
          state: () => machine.state,
          propose,
          log: (l: LogLine) => logs.push(JSON.stringify({ t: Math.round(performance.now()), ...l })),
          noSync: true,
          slotCheckIntervalMs: 100,
        }),
      );
    }
    for (const a of agents) a.start();
    // No primary yet: the agents wait and create nothing.
    await sleep(300);
    for (const a of agents) {
      assert.equal(a.agentStatus().wanted, 'none');
      assert.equal(existsSync(a.dataDir), false);
    }

    const tBoot = performance.now();
    const promoted = commit({
      v: 1,
      type: 'pg.promote',
      atMs: Date.now(),
      node: 'n1',
      generation: 1,
      reason: 'bootstrap',
      lsn: '0/0',
      leaseDurationMs: LEASE_MS,
      automatic: false,
      lapsedLease: null,
    });
    assert.ok(promoted.ok, JSON.stringify(promoted));
    const [a1, a2, a3] = agents as [PostgresAgent, PostgresAgent, PostgresAgent];

    // --- n1 a writable primary, n2 and n3 streaming quorum standbys
    await waitFor('n1 a running, unfenced primary', () => {
      const s = a1.agentStatus();
      return s.running && s.observed === 'primary' && s.fenced === false ? s : undefined;
    });
    const repl = await waitFor('two quorum standbys streaming from n1', async () => {
      const r = await a1.postgres!.query<{ application_name: string; state: string; sync_state: string }>(
        `SELECT application_name, state, sync_state FROM pg_stat_replication ORDER BY application_name`,
      );
      return r.rows.length === 2 && r.rows.every((x) => x.state === 'streaming' && x.sync_state === 'quorum') ? r.rows : undefined;
    });
    assert.deepEqual(
      repl.map((r) => r.application_name),
      ['n2', 'n3'],
    );
    const bootMs = Math.round(performance.now() - tBoot);
    // The agents see it on their next pass (streaming can be ahead of their status query).
    await waitFor(
      'n2 and n3 observed as standbys',
      () => ([a2, a3].every((a) => a.agentStatus().observed === 'standby' && a.agentStatus().running) ? true : undefined),
      2_000,
    );

    // --- reports reached the machine
    await waitFor('every node reported its role', () => {
      const nodes = machine.state.postgres.nodes;
      return nodes.get('n1')?.reportedRole === 'primary' && nodes.get('n2')?.reportedRole === 'standby' && nodes.get('n3')?.reportedRole === 'standby'
        ? true
        : undefined;
    });
    assert.equal(machine.state.postgres.nodes.get('n1')?.timeline, 1);

    // --- the lease keeps being renewed
    const seq0 = machine.state.postgres.lease!.renewalSeq;
    assert.ok(seq0 >= 1, `renewalSeq ${seq0}`);
    await waitFor('three more lease renewals', () => (machine.state.postgres.lease!.renewalSeq >= seq0 + 3 ? true : undefined), 5_000);
    const st1 = a1.agentStatus();
    assert.ok(st1.leaseRemainingMs !== null && st1.leaseRemainingMs > 0, JSON.stringify(st1));

    // --- the admin user over TCP with the derived password; the write replicates
    const connectAdmin = async () => {
      const c = new pg.Client({
        host: '127.0.0.1',
        port: portOf('n1'),
        user: 'postgres',
        password: adminPassword(config),
        database: 'postgres',
        connectionTimeoutMillis: 5000,
      });
      c.on('error', () => {});
      await c.connect();
      clients.push(c);
      return c;
    };
    // The password is set together with the ogel schema, once the lease is valid.
    const gen = await waitFor('ogel.generation on n1', async () => {
      const r = await a1.postgres!.query<{ generation: string; node: string }>(`SELECT generation::text, node FROM ogel.generation`);
      return r.rows[0];
    });
    assert.deepEqual(gen, { generation: '1', node: 'n1' });
    const admin = await connectAdmin();
    await admin.query('CREATE TABLE t (x int)');
    await admin.query('INSERT INTO t VALUES (42)');
    await waitFor('the row replicated to n2', async () => {
      const r = await a2.postgres!.query<{ x: number }>('SELECT x FROM t');
      return r.rows[0]?.x === 42 ? true : undefined;
    });

    // --- the slot of a node that is not a member is dropped; members' and the operator's stay
    await a1.postgres!.query("SELECT pg_create_physical_replication_slot('ogel_n9'), pg_create_physical_replication_slot('operator_slot')");
    const slots = await waitFor('the slot of the non-member n9 dropped', async () => {
      const r = await a1.postgres!.query<{ names: string[] }>('SELECT array_agg(slot_name::text ORDER BY slot_name) AS names FROM pg_replication_slots');
      return r.rows[0]!.names.includes('ogel_n9') ? undefined : r.rows[0]!.names;
    });
    assert.deepEqual(slots, ['ogel_n2', 'ogel_n3', 'operator_slot']);

    // --- fencing: renewals stop committing -> read-only before the lease can lapse
    const tFail = performance.now();
    failRenewals = true;
    await waitFor('n1 fenced', () => (a1.agentStatus().fenced === true ? true : undefined), LEASE_MS * 3);
    const fenceMs = Math.round(performance.now() - tFail);
    assert.ok(fenceMs < LEASE_MS, `fenced ${fenceMs} ms after renewals stopped committing; must be within the lease (${LEASE_MS} ms)`);
    assert.ok(renewalsRejected >= 1);
    // The hard fence: clients are refused outright; the agent's own session is read-only.
    await assert.rejects(connectAdmin(), /pg_hba\.conf rejects connection/);
    await assert.rejects(a1.postgres!.query('INSERT INTO t VALUES (1)'), /read-only/);
    // the machine's view is unchanged: n1 is still the primary of generation 1
    assert.equal(machine.state.postgres.primary, 'n1');

    // --- renewals commit again -> writable again
    failRenewals = false;
    await waitFor('n1 writable again', () => (a1.agentStatus().fenced === false ? true : undefined), 5_000);
    const writer = await connectAdmin();
    await writer.query('INSERT INTO t VALUES (43)');
    await waitFor('the new row replicated to n3', async () => {
      const r = await a3.postgres!.query<{ n: number }>('SELECT count(*)::int AS n FROM t WHERE x = 43');
      return r.rows[0]?.n === 1 ? true : undefined;
    });

    // --- no longer the primary (fenced by the cluster): read-only at once, Postgres left running
    const fenced = commit({ v: 1, type: 'pg.fence', atMs: Date.now(), node: 'n1', generation: 1, reason: 'test: fenced by the cluster' });
    assert.ok(fenced.ok, JSON.stringify(fenced));
    await waitFor('n1 fenced after pg.fence', () => (a1.agentStatus().fenced === true ? true : undefined), 2_000);
    assert.equal(a1.agentStatus().wanted, 'none');
    assert.equal(a1.agentStatus().running, true);
    await assert.rejects(connectAdmin(), /pg_hba\.conf rejects connection/);
    await assert.rejects(a1.postgres!.query('INSERT INTO t VALUES (2)'), /read-only/);

    // --- stop: no postgres process left
    const pids = agents.map((a) => a.postgres?.pid).filter((p): p is number => p !== undefined);
    assert.equal(pids.length, 3);
    for (const c of clients.splice(0)) await c.end().catch(() => {});
    await Promise.all(agents.map((a) => a.stop()));
    for (const pid of pids) assert.equal(pidAlive(pid), false, `postmaster ${pid} still alive`);
    for (const a of agents) {
      assert.equal(a.agentStatus().running, false);
      assert.equal(a.postgres!.findOrphan(), undefined);
    }
    console.log(`# bootstrap to 2 quorum standbys: ${bootMs} ms; fenced ${fenceMs} ms after renewals failed (lease ${LEASE_MS} ms)`);
  } catch (err) {
    console.log(logs.slice(-60).join('\n'));
    throw err;
  } finally {
    for (const c of clients) await c.end().catch(() => {});
    await Promise.allSettled(agents.map((a) => a.stop()));
    rmSync(root, { recursive: true, force: true });
  }
});

test('a primary with an empty data dir outside the bootstrap is refused, and nothing is created', { timeout: 10_000 }, async () => {
  const root = makeTempRoot('ogel-agent-');
  let agent: PostgresAgent | undefined;
  try {
    const config = localClusterConfig({ dataDir: root, basePort: 20_000, secret: 'agent-test-secret-0123456789abcdef', token: 'agent-test-token' });
    const machine = new ClusterStateMachine();
    let index = 0;
    const commit = (cmd: Command): ApplyResult => machine.apply(encodeCommand(cmd), ++index, 1);
    for (const n of config.nodes)
      assert.ok(commit({ v: 1, type: 'member.add', atMs: 1, id: n.id, addresses: { raft: n.raft, api: n.api, proxy: n.proxy, postgres: n.postgres } }).ok);
    const promote = (node: string, generation: number, reason: string, lapsed: { holder: string; renewalSeq: number } | null) =>
      assert.ok(
        commit({ v: 1, type: 'pg.promote', atMs: 1, node, generation, reason, lsn: '0/0', leaseDurationMs: 600, automatic: false, lapsedLease: lapsed }).ok,
      );
    promote('n2', 1, 'bootstrap', null);
    promote('n1', 2, 'failover', { holder: 'n2', renewalSeq: 0 });
    const logs: LogLine[] = [];
    agent = new PostgresAgent({
      config,
      nodeId: 'n1',
      dataDir: join(root, 'n1', 'pg'),
      state: () => machine.state,
      propose: async (c) => commit(c),
      log: (l) => logs.push(l),
    });
    agent.start();
    const err = await waitFor('the refusal', () => agent!.agentStatus().lastError ?? undefined, 5_000);
    assert.match(err, /generation 2 .*empty.*Refusing to guess/s);
    assert.equal(agent.agentStatus().wanted, 'primary');
    assert.equal(agent.agentStatus().running, false);
    assert.ok(logs.some((l) => l.level === 'error' && /Refusing to guess/.test(String(l.error))));
    assert.equal(existsSync(join(root, 'n1', 'pg')), false);
    assert.equal(existsSync(join(root, 'n1', 'pg.ogel-init')), false);
  } finally {
    await agent?.stop();
    rmSync(root, { recursive: true, force: true });
  }
});
