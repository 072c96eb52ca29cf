// Scenario for test/replication-by-name.test.ts, run as root in private network
// and mount namespaces (`unshare --net --mount node dist/test/scenarios/replication-by-name.js`).
//
// The three nodes are known only by host names (n1.ogel.test ...), as on
// Railway's private network (n1.railway.internal), on private addresses
// (10.77.0.11-13 on lo: a connection to a local address comes from that same
// address, whereas on 127/8 it would come from 127.0.0.1, which pg_hba.conf
// always allows, and prove nothing). The names resolve forward
// through an /etc/hosts bound over the real one in this mount namespace, but the
// reverse lookup of each address gives another name (ip-10-77-0-11.reverse.test),
// as a platform that publishes forward names only would: Postgres cannot match a
// host name in pg_hba.conf for them. The cluster must still replicate with quorum
// commit: a synchronous write returns, and both standbys stream in the quorum.
//
// Prints one JSON line of figures on stdout; exits 1 with the reason on stderr.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lookup, lookupService } from 'node:dns/promises';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { loadConfig } from '../../src/config/index.js';
import { DaemonCluster } from '../helpers/daemons.js';
import { assertPrivateNetns, loopbackUp } from '../helpers/netns.js';
import { adminPassword } from '../../src/auth/passwords.js';

const NAMES: Readonly<Record<string, { name: string; address: string }>> = {
  n1: { name: 'n1.ogel.test', address: '10.77.0.11' },
  n2: { name: 'n2.ogel.test', address: '10.77.0.12' },
  n3: { name: 'n3.ogel.test', address: '10.77.0.13' },
};
const IDS = Object.keys(NAMES);
const SETUP_TIMEOUT_MS = 90_000;
/** A synchronous commit that no standby acknowledges waits forever: past this, it is stuck. */
const WRITE_TIMEOUT_MS = 10_000;

function phase(what: string): void {
  process.stderr.write(`[${Math.round(performance.now())} ms] ${what}\n`);
}

/** /etc/hosts of this mount namespace only: forward names, and other names for the reverse lookup. Returns its directory, to remove. */
function bindHostsFile(): string {
  // Our bind mount must not reach the caller's namespace through shared propagation.
  execFileSync('mount', ['--make-rprivate', '/']);
  const dir = mkdtempSync(join(tmpdir(), 'ogel-hosts-'));
  const file = join(dir, 'hosts');
  const lines = ['127.0.0.1 localhost', '::1 localhost'];
  for (const { name, address } of Object.values(NAMES)) lines.push(`${address} ip-${address.replaceAll('.', '-')}.reverse.test ${name}`);
  writeFileSync(file, `${lines.join('\n')}\n`, { mode: 0o644 });
  execFileSync('mount', ['--bind', file, '/etc/hosts']);
  return dir;
}

async function primaryClient(c: DaemonCluster, id: string, password: string): Promise<pg.Client> {
  const n = c.nodes.get(id)!;
  const client = new pg.Client({
    host: n.host,
    port: n.postgresPort,
    user: 'postgres',
    password,
    database: 'postgres',
    connectionTimeoutMillis: 5_000,
    query_timeout: WRITE_TIMEOUT_MS,
  });
  client.on('error', () => {});
  await client.connect();
  return client;
}

async function main(): Promise<void> {
  assertPrivateNetns();
  await loopbackUp();
  for (const { address } of Object.values(NAMES)) execFileSync('ip', ['addr', 'add', `${address}/32`, 'dev', 'lo']);
  const hostsDir = bindHostsFile();
  try {
    await withHosts();
  } finally {
    // The bind mount ends with this mount namespace; the file in the shared /tmp does not.
    rmSync(hostsDir, { recursive: true, force: true });
  }
}

async function withHosts(): Promise<void> {
  // The premise: forward lookups work, reverse ones give names pg_hba.conf could not match.
  for (const { name, address } of Object.values(NAMES)) {
    assert.equal((await lookup(name, { family: 4 })).address, address, `${name} resolves forward`);
    // getnameinfo, as Postgres does it for a host name in pg_hba.conf.
    const back = (await lookupService(address, 5432)).hostname;
    assert.notEqual(back, name, `the reverse lookup of ${address} does not give ${name}`);
  }
  phase('names resolve forward only; starting three daemons known by name');
  const c = await DaemonCluster.create(IDS, '', { hosts: Object.fromEntries(IDS.map((id) => [id, NAMES[id]!.name])) });
  const password = adminPassword(loadConfig(c.configPath));
  try {
    await c.startAll();
    const t0 = performance.now();
    let primary: string | undefined;
    let standbys: { application_name: string; state: string; sync_state: string }[] = [];
    await c.waitFor(
      async () => {
        const leader = await c.waitForLeader(5_000).catch(() => undefined);
        if (leader === undefined) return false;
        const s = (await c.get(leader, '/v1/status')).body as
          | { postgres?: { primary: string | null; nodes: Record<string, { reportedRole: string }> } }
          | undefined;
        const p = s?.postgres?.primary ?? null;
        if (p === null || s?.postgres?.nodes[p]?.reportedRole !== 'primary') return false;
        const client = await primaryClient(c, p, password).catch(() => undefined);
        if (client === undefined) return false;
        try {
          standbys = (
            await client.query<{ application_name: string; state: string; sync_state: string }>(
              // A base backup's walsender (state 'backup', e.g. the scheduled first backup) is no standby.
              "SELECT application_name, state, sync_state FROM pg_stat_replication WHERE state <> 'backup' AND application_name <> 'ogel-wal-archive' ORDER BY 1",
            )
          ).rows;
        } finally {
          await client.end();
        }
        primary = p;
        return standbys.filter((r) => r.state === 'streaming').length === 2;
      },
      'a primary with two standbys streaming, the nodes known by name only',
      SETUP_TIMEOUT_MS,
    );
    const readyMs = Math.round(performance.now() - t0);
    assert.ok(primary !== undefined);
    assert.deepEqual(
      standbys.map((r) => r.sync_state),
      ['quorum', 'quorum'],
      `quorum commit: ${JSON.stringify(standbys)}`,
    );
    phase(`${primary} primary, standbys ${standbys.map((r) => r.application_name).join(', ')} streaming in the quorum`);
    const client = await primaryClient(c, primary, password);
    let writeMs: number;
    try {
      await client.query('CREATE TABLE IF NOT EXISTS by_name (id int PRIMARY KEY)');
      const w0 = performance.now();
      await client.query("SET synchronous_commit = 'on'");
      await client.query('INSERT INTO by_name VALUES (1)');
      writeMs = Math.round(performance.now() - w0);
    } finally {
      await client.end();
    }
    const hba = execFileSync('cat', [join(c.dir, 'data', primary, 'pg', 'pg_hba.conf')], { encoding: 'utf8' });
    assert.ok(!IDS.some((id) => hba.includes(NAMES[id]!.name)), 'no host name in pg_hba.conf');
    process.stdout.write(`${JSON.stringify({ replicationByName: { primary, standbys, readyMs, syncWriteMs: writeMs } })}\n`);
  } catch (e) {
    for (const [id, n] of c.nodes) process.stderr.write(`--- ${id} (last lines)\n${n.log.slice(-15).join('\n')}\n`);
    throw e;
  } finally {
    await c.destroy();
  }
}

main().then(
  () => process.exit(0),
  (e: Error) => {
    process.stderr.write(`replication-by-name: ${e.stack ?? e.message}\n`);
    process.exit(1);
  },
);
