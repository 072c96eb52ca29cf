// Integration tests of the ogel daemon: three real processes on loopback, driven
// through the admin API and the ogel CLI.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DaemonCluster, TOKEN } from './helpers/daemons.js';

interface StatusBody {
  leader: string;
  term: number;
  node: string;
  commitIndex: number;
  appliedIndex: number;
  members: { id: string; raft: { role: string; matchIndex: number | null } }[];
  maintenance: { paused: boolean; reason: string | null };
}

describe('ogel daemon: a 3-node cluster of real processes', () => {
  let c: DaemonCluster;
  before(async () => {
    c = await DaemonCluster.create();
    await c.startAll();
  });
  after(async () => c.destroy());

  it('elects a leader that every node reports, and records every member', async () => {
    const leader = await c.waitForLeader();
    await c.waitFor(
      async () => ((await c.get(leader, '/v1/status')).body as StatusBody).members.length === 3,
      'the leader to record all three members in the state machine',
      10_000,
    );
    // Under CPU contention a re-election can fall between two reads: what must hold
    // is that the CLI's answer names the leader every node agrees on.
    let s: StatusBody | undefined;
    await c.waitFor(
      async () => {
        const r = await c.cli(['status', '--json']);
        assert.equal(r.code, 0, r.stderr);
        s = JSON.parse(r.stdout) as StatusBody;
        return s.leader === (await c.waitForLeader());
      },
      'ogel status to name the agreed leader',
      10_000,
    );
    assert.deepEqual(s!.members.map((m) => m.id).sort(), ['n1', 'n2', 'n3']);
    void leader;
  });

  it('kill -9 of the leader: a new leader is elected, status shows it from any live node, and the killed node catches up after a restart', async () => {
    const old = await c.waitForLeader();
    const before = (await c.get(old, '/v1/status')).body as StatusBody;
    await c.kill9(old);
    const next = await c.waitForLeader(10_000, old);
    assert.notEqual(next, old);
    for (const id of [...c.nodes.keys()].filter((x) => x !== old)) {
      // Status always answers (stale during an election); once settled it names the leader.
      await c.waitFor(
        async () => {
          const r = await c.cli(['status', '--json', '--api', c.apiUrl(id)]);
          assert.equal(r.code, 0, r.stderr);
          const s = JSON.parse(r.stdout) as StatusBody & { stale: boolean };
          return !s.stale && s.leader === (await c.waitForLeader(10_000, old)) && s.term > before.term;
        },
        `status from ${id} to name the new leader`,
        10_000,
      );
    }
    // Make the others move on while it is down, then bring it back.
    const paused = await c.send(next, 'POST', '/v1/pause', { reason: 'while n was down' });
    assert.equal(paused.status, 200, JSON.stringify(paused.body));
    await c.start(old);
    const leaderStatus = (await c.get(next, '/v1/status')).body as StatusBody;
    await c.waitFor(
      async () => {
        const s = (await c.get(old, '/v1/status?stale=true')).body as StatusBody | undefined;
        return s !== undefined && s.appliedIndex >= leaderStatus.commitIndex && s.maintenance.paused;
      },
      `${old} to catch up to ${leaderStatus.commitIndex}`,
      10_000,
    );
    assert.equal((await c.send(next, 'POST', '/v1/resume', {})).status, 200);
  });

  it('transfer-leadership moves leadership to the chosen node', async () => {
    const leader = await c.waitForLeader();
    const target = [...c.nodes.keys()].find((id) => id !== leader)!;
    const r = await c.cli(['transfer-leadership', '--to', target, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { to: string }).to, target);
    assert.equal(await c.waitForLeader(), target);
  });

  it('a write sent to a follower is forwarded to the leader', async () => {
    const leader = await c.waitForLeader();
    const follower = [...c.nodes.keys()].find((id) => id !== leader)!;
    const r = await c.send(follower, 'POST', '/v1/pause', { reason: 'forwarded' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const s = (await c.get(leader, '/v1/status')).body as StatusBody;
    assert.deepEqual(s.maintenance, { ...s.maintenance, paused: true, reason: 'forwarded' });
    assert.equal((await c.send(follower, 'POST', '/v1/resume', {})).status, 200);
  });

  it('tenants: create (only a SCRAM verifier is stored), list, refuse a duplicate name, delete', async () => {
    const created = await c.cli(['tenants', 'create', 'acme', '--json']);
    assert.equal(created.code, 0, created.stderr);
    const body = JSON.parse(created.stdout) as { password: string; url: string; tenant: Record<string, unknown> };
    assert.match(body.url, /^postgresql:\/\/acme:.+@127\.0\.0\.1:\d+\/acme$/);
    assert.ok(!JSON.stringify(body.tenant).includes(body.password), 'the tenant record never holds the password');
    const dup = await c.cli(['tenants', 'create', 'acme']);
    assert.notEqual(dup.code, 0);
    assert.match(dup.stderr, /acme/);
    const list = await c.cli(['tenants', 'list', '--json']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /"acme"/);
    const del = await c.cli(['tenants', 'delete', 'acme', '--yes']);
    assert.equal(del.code, 0, del.stderr);
  });

  it('answers a missing or wrong token with 401 and a clear body; health needs no token', async () => {
    const leader = await c.waitForLeader();
    const missing = await c.get(leader, '/v1/status', null);
    assert.equal(missing.status, 401);
    assert.deepEqual(Object.keys((missing.body as { error: object }).error).sort(), ['code', 'hint', 'message']);
    assert.match(JSON.stringify(missing.body), /missing bearer token/);
    const wrong = await c.get(leader, '/v1/status', 'not-the-token');
    assert.equal(wrong.status, 401);
    assert.match(JSON.stringify(wrong.body), /wrong bearer token/);
    assert.equal((await c.get(leader, '/health', null)).status, 200);
    assert.equal((await c.get(leader, '/leader', null)).status, 200);
    const cli = await c.cli(['status'], { OGEL_TOKEN: 'nope' });
    assert.notEqual(cli.code, 0);
    assert.match(cli.stderr, /token/i);
  });

  it('answers bad API bodies with 400 and a message naming the field', async () => {
    const leader = await c.waitForLeader();
    const cases: [string, unknown, RegExp][] = [
      ['/v1/leadership/transfer', { to: 42 }, /'to'.*string.*42/],
      ['/v1/leadership/transfer', { too: 'n1' }, /unknown field 'too'/],
      ['/v1/leadership/transfer', '{not json', /not valid JSON/],
      ['/v1/tenants', { name: 'Bad Name!' }, /name/],
      ['/v1/tenants', { name: 'ok_name', limits: { maxConnections: -1 } }, /maxConnections/],
      ['/v1/members', { id: 'n9', raft: 'nope', api: '127.0.0.1:1', proxy: '127.0.0.1:2', postgres: '127.0.0.1:3' }, /'raft'.*HOST:PORT/],
    ];
    for (const [path, body, re] of cases) {
      const r = await c.send(leader, 'POST', path, body);
      assert.equal(r.status, 400, `${path} ${JSON.stringify(body)} -> ${r.status} ${JSON.stringify(r.body)}`);
      assert.match((r.body as { error: { message: string } }).error.message, re);
    }
    assert.equal((await c.get(leader, '/v1/nope')).status, 404);
  });

  it('internal commands from agents: a follower forwards them, the leader validates and proposes them', async () => {
    const leader = await c.waitForLeader();
    const follower = [...c.nodes.keys()].find((id) => id !== leader && id !== 'n4')!;
    // A command no agent sends on its own (agents report their Postgres all the time).
    const pause = { v: 1, type: 'maintenance.set', atMs: Date.now(), paused: true, reason: 'through an agent' };
    const r = await c.send(follower, 'POST', '/v1/internal/commands', pause);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual((r.body as { ok: boolean }).ok, true);
    const s = (await c.get(leader, '/v1/status')).body as StatusBody;
    assert.deepEqual(s.maintenance, { paused: true, reason: 'through an agent' });
    assert.equal((await c.send(follower, 'POST', '/v1/internal/commands', { ...pause, paused: false, reason: null })).status, 200);
    const report = {
      v: 1,
      type: 'pg.report',
      atMs: Date.now(),
      node: follower,
      role: 'standby',
      timeline: 1,
      lsn: { received: '0/3000148', flushed: '0/3000148', replayed: '0/3000100' },
    };
    const bad = await c.send(follower, 'POST', '/v1/internal/commands', { ...report, lsn: { ...report.lsn, flushed: 'not-an-lsn' } });
    assert.equal(bad.status, 400, JSON.stringify(bad.body));
    assert.match((bad.body as { error: { message: string } }).error.message, /lsn\.flushed/);
  });

  it("the agents' fence endpoint refuses bad bodies and a stale generation", async () => {
    const leader = await c.waitForLeader();
    for (const [body, re] of [
      [{}, /'generation' is required/],
      [{ generation: 'one' }, /'generation': expected an integer/],
      [{ generation: 1, extra: true }, /unknown field 'extra'/],
    ] as [unknown, RegExp][]) {
      const r = await c.send(leader, 'POST', '/v1/internal/pg/stop-receiver', body);
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.match((r.body as { error: { message: string } }).error.message, re);
    }
    const stale = await c.send(leader, 'POST', '/v1/internal/pg/stop-receiver', { generation: 999 });
    assert.equal(stale.status, 409, JSON.stringify(stale.body));
    assert.match((stale.body as { error: { message: string } }).error.message, /stale fence request: generation 999/);
  });

  it('serves Prometheus metrics', async () => {
    const leader = await c.waitForLeader();
    const r = await fetch(`${c.apiUrl(leader)}/metrics`);
    const text = await r.text();
    assert.equal(r.status, 200);
    for (const m of [
      'ogel_raft_term',
      'ogel_raft_commit_index',
      'ogel_raft_is_leader 1',
      'ogel_raft_proposal_duration_seconds_bucket',
      'ogel_raft_peer_lag_entries',
    ]) {
      assert.ok(text.includes(m), `metrics include ${m}`);
    }
  });

  it('members add: a node started with --join is added as a learner, catches up, is promoted; members remove takes it out', async () => {
    const n4 = await c.addNodeConfig('n4');
    await c.start('n4', ['--join']);
    const add = await c.cli([
      'members',
      'add',
      '--id',
      'n4',
      '--raft',
      `127.0.0.1:${n4.raftPort}`,
      '--api',
      `127.0.0.1:${n4.apiPort}`,
      '--proxy',
      `127.0.0.1:${n4.proxyPort}`,
      '--postgres',
      `127.0.0.1:${n4.postgresPort}`,
      '--json',
    ]);
    assert.equal(add.code, 0, add.stderr);
    const leader = await c.waitForLeader();
    let s = (await c.get(leader, '/v1/status')).body as StatusBody;
    const m4 = s.members.find((m) => m.id === 'n4');
    assert.equal(m4?.raft.role, 'follower', JSON.stringify(m4));
    const joined = (await c.get('n4', '/v1/status?stale=true')).body as StatusBody;
    assert.equal(joined.leader, leader, 'n4 follows the leader');
    const rm = await c.cli(['members', 'remove', 'n4', '--json']);
    assert.equal(rm.code, 0, rm.stderr);
    s = (await c.get(await c.waitForLeader(), '/v1/status')).body as StatusBody;
    assert.ok(!s.members.some((m) => m.id === 'n4' && m.raft.role !== 'removed'), JSON.stringify(s.members));
    await c.kill9('n4');
    c.nodes.delete('n4');
  });

  it('a leader stopped with SIGTERM hands over leadership before it exits', async () => {
    const leader = await c.waitForLeader();
    const code = await c.terminate(leader);
    assert.equal(code, 0);
    assert.ok(
      c.nodes.get(leader)!.log.some((l) => l.includes('transferred leadership before shutdown')),
      'the log says it handed over',
    );
    const next = await c.waitForLeader(5_000, leader);
    assert.notEqual(next, leader);
    await c.start(leader);
  });

  it('refuses to bootstrap over existing data', async () => {
    const leader = await c.waitForLeader();
    const victim = [...c.nodes.keys()].find((id) => id !== leader)!;
    await c.kill9(victim);
    const r = await c.cli(['daemon', '--config', c.configPath, '--node', victim, '--bootstrap']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /refusing to bootstrap/);
    await c.start(victim);
  });
});

describe('ogel status without a quorum', () => {
  let c: DaemonCluster;
  before(async () => {
    c = await DaemonCluster.create();
    await c.startAll();
    await c.waitForLeader();
  });
  after(async () => c.destroy());

  it('answers from the local state, marked stale, instead of failing', async () => {
    await c.kill9('n2');
    await c.kill9('n3');
    let body: { stale: boolean; node: string } | undefined;
    await c.waitFor(
      async () => {
        const r = await c.cli(['status', '--json', '--api', c.apiUrl('n1')]);
        assert.equal(r.code, 0, r.stderr);
        body = JSON.parse(r.stdout) as { stale: boolean; node: string };
        return body.stale;
      },
      'a stale answer once n1 has lost its quorum',
      10_000,
    );
    assert.equal(body!.node, 'n1');
    const table = await c.cli(['status', '--api', c.apiUrl('n1')]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /Stale read/);
  });
});

void TOKEN;
