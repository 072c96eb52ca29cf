import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  ConfigError,
  configToYaml,
  defaultConfig,
  getNode,
  listenAddress,
  loadConfig,
  localClusterConfig,
  nodeDataDir,
  objectStoreDir,
  parseConfig,
  redactConfig,
  validateConfig,
  type Config,
} from './index.js';

// Compiled to dist/src/config/; the example lives at the repository root.
const EXAMPLE = fileURLToPath(new URL('../../../cluster.example.yml', import.meta.url));
const SECRET = 'a-cluster-secret-of-32-bytes-xyz';
const TOKEN = 'an-api-token-0123456789';
const NO_ENV: NodeJS.ProcessEnv = {};

const MINIMAL = `
cluster:
  secret: ${SECRET}
api:
  token: ${TOKEN}
nodes:
  - id: n1
    raft: 127.0.0.1:7001
    api: 127.0.0.1:7101
    proxy: 127.0.0.1:7201
    postgres: 127.0.0.1:7301
  - id: n2
    raft: 127.0.0.1:7002
    api: 127.0.0.1:7102
    proxy: 127.0.0.1:7202
    postgres: 127.0.0.1:7302
  - id: n3
    raft: 127.0.0.1:7003
    api: 127.0.0.1:7103
    proxy: 127.0.0.1:7203
    postgres: 127.0.0.1:7303
`;

function node(i: number, extra = ''): string {
  return `  - id: n${i}
    raft: 127.0.0.1:${7000 + i}
    api: 127.0.0.1:${7100 + i}
    proxy: 127.0.0.1:${7200 + i}
    postgres: 127.0.0.1:${7300 + i}
${extra}`;
}

function withNodes(nodes: string, more = ''): string {
  return `cluster:\n  secret: ${SECRET}\napi:\n  token: ${TOKEN}\nnodes:\n${nodes}${more}`;
}

/** parseConfig that must fail; returns the error. */
function failing(text: string, env: NodeJS.ProcessEnv = NO_ENV): ConfigError {
  try {
    parseConfig(text, 'cluster.yml', env);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${String(e)}`);
    assert.equal(e.message.split('\n').length, e.problems.length, 'one line per problem');
    assert.doesNotMatch(e.message, /\n\s+at /, 'no stack trace in the message');
    return e;
  }
  assert.fail('expected a ConfigError');
}

function paths(e: ConfigError): string[] {
  return e.problems.map((p) => p.path);
}

describe('config: valid files', () => {
  test('a minimal config gets every default', () => {
    const c = parseConfig(MINIMAL, 'cluster.yml', NO_ENV);
    const expected: Config = {
      cluster: { name: 'ogel', secret: SECRET, dataDir: './.ogel/data' },
      nodes: [1, 2, 3].map((i) => ({
        id: `n${i}`,
        raft: `127.0.0.1:${7000 + i}`,
        api: `127.0.0.1:${7100 + i}`,
        proxy: `127.0.0.1:${7200 + i}`,
        postgres: `127.0.0.1:${7300 + i}`,
        priority: 0,
      })),
      raft: { tickMs: 20, electionTicks: 10, heartbeatTicks: 1, snapshotEveryEntries: 10000 },
      api: { token: TOKEN, forwardTimeoutMs: 5000 },
      log: { level: 'info' },
      postgres: { syncMode: 'quorum', syncQuorum: 1, parameters: {}, leaseMs: 3000, failover: { enabled: true } },
      proxy: {
        maxClientConnections: 1000,
        poolMode: 'transaction',
        defaultPoolSize: 20,
        holdTimeoutMs: 10000,
        queueTimeoutMs: 30000,
        serverIdleTimeoutMs: 60000,
        maxReplicaLagBytes: 16777216,
        maxMessageBytes: 67108864,
        tls: { mode: 'off' },
      },
      storage: {
        backend: 'fs',
        fs: {},
        s3: { region: 'us-east-1', prefix: '', forcePathStyle: false, connectTimeoutMs: 3000, requestTimeoutMs: 30000 },
      },
      backups: {
        scheduled: true,
        fullEveryHours: 168,
        incrementalEveryHours: 6,
        restoreTestEveryHours: 24,
        retention: { daily: 7, weekly: 4, monthly: 3, failed: 5 },
      },
      warnings: [],
    };
    assert.deepEqual(c, expected);
    const d = defaultConfig();
    assert.equal(d.raft.tickMs, c.raft.tickMs);
    assert.deepEqual(d.proxy, c.proxy);
    d.raft.tickMs = 1; // a copy: the defaults themselves stay intact
    assert.equal(defaultConfig().raft.tickMs, 20);
  });

  test('cluster.example.yml loads, and documents every field', () => {
    const env = { OGEL_CLUSTER_SECRET: SECRET, OGEL_TOKEN: TOKEN };
    const c = loadConfig(EXAMPLE, env);
    assert.equal(c.nodes.length, 3);
    assert.equal(c.cluster.secret, SECRET);
    assert.equal(c.api.token, TOKEN);
    // Its nodes are on three hosts, and the fs store's default directory is not shared.
    assert.deepEqual(
      c.warnings.map((w) => w.split(':')[0]),
      ['storage.fs.dir'],
    );
    // The example writes the defaults: they must agree with the code.
    const d = defaultConfig();
    assert.deepEqual(c.raft, d.raft);
    assert.deepEqual(c.postgres, { ...d.postgres });
    assert.deepEqual(c.proxy, d.proxy);
    assert.deepEqual(c.log, d.log);
    assert.equal(c.cluster.name, d.cluster.name);
    assert.equal(c.cluster.dataDir, d.cluster.dataDir);
    assert.equal(c.api.forwardTimeoutMs, d.api.forwardTimeoutMs);
    // Every field of the type appears (commented or not) in the example.
    const text = readFileSync(EXAMPLE, 'utf8');
    const fields = new Set<string>();
    const walk = (v: unknown): void => {
      if (typeof v !== 'object' || v === null) return;
      for (const [k, x] of Object.entries(v)) {
        if (!Array.isArray(v)) fields.add(k);
        walk(x);
      }
    };
    assert.deepEqual(c.storage, d.storage);
    assert.deepEqual(c.backups, d.backups);
    walk({
      ...c,
      nodes: [{ ...c.nodes[0], listenHost: '::' }],
      postgres: { ...c.postgres, binDir: '/x' },
      storage: { ...c.storage, fs: { dir: '/x' }, s3: { ...c.storage.s3, endpoint: 'http://x', bucket: 'b', accessKeyId: 'k', secretAccessKey: 's' } },
    });
    fields.delete('warnings');
    for (const f of fields) assert.match(text, new RegExp(`\\b${f}:`), `cluster.example.yml does not document '${f}'`);
    // Without the environment, it says exactly what is missing.
    const e = (() => {
      try {
        loadConfig(EXAMPLE, NO_ENV);
      } catch (err) {
        return err as ConfigError;
      }
      assert.fail('the example needs OGEL_CLUSTER_SECRET and OGEL_TOKEN');
    })();
    assert.deepEqual(paths(e), ['cluster.secret', 'api.token']);
    assert.match(e.message, /cluster\.secret: environment variable OGEL_CLUSTER_SECRET is not set/);
  });

  test('an even node count is allowed with a warning; a single node needs async', () => {
    const four = parseConfig(withNodes([1, 2, 3, 4].map((i) => node(i)).join('')), 'c.yml', NO_ENV);
    assert.equal(four.nodes.length, 4);
    assert.equal(four.warnings.length, 1);
    assert.match(four.warnings[0] ?? '', /^nodes: 4 nodes .*odd count/);

    const e = failing(withNodes(node(1)));
    assert.deepEqual(paths(e), ['postgres.syncMode']);
    assert.match(e.message, /fix: set postgres\.syncMode: async/);
    const one = parseConfig(withNodes(node(1), 'postgres:\n  syncMode: async\n'), 'c.yml', NO_ENV);
    assert.match(one.warnings.join('\n'), /postgres\.syncMode: async replication can lose acknowledged writes/);

    const risky = parseConfig(
      withNodes(node(1) + node(2) + node(3), 'postgres:\n  leaseMs: 300\n  syncQuorum: 2\n  failover:\n    enabled: false\n'),
      'c.yml',
      NO_ENV,
    );
    assert.deepEqual(
      risky.warnings.map((w) => w.split(':')[0]),
      ['postgres.syncQuorum', 'postgres.leaseMs', 'postgres.failover.enabled'],
    );
  });

  test('IPv6, host names, listenHost and postgres parameters', () => {
    const text = withNodes(
      `  - id: edge-1
    raft: '[fd00::1]:7000'
    api: n1.railway.internal:8000
    proxy: n1.railway.internal:6432
    postgres: n1.railway.internal:5432
    listenHost: '::'
    priority: 5
${node(2)}${node(3)}`,
      `postgres:
  parameters:
    shared_buffers: 256MB
    max_connections: 200
    jit: false
    pg_stat_statements.max: 5000
`,
    );
    const c = parseConfig(text, 'c.yml', NO_ENV);
    const n = getNode(c, 'edge-1');
    assert.equal(n.priority, 5);
    assert.deepEqual(listenAddress(n, 'raft'), { host: '::', port: 7000 });
    assert.deepEqual(listenAddress(getNode(c, 'n2'), 'api'), { host: '127.0.0.1', port: 7102 });
    assert.deepEqual(c.postgres.parameters, { shared_buffers: '256MB', max_connections: 200, jit: false, 'pg_stat_statements.max': 5000 });
    assert.equal(nodeDataDir(c, 'n2'), join('.ogel', 'data', 'n2'));
  });
});

describe('config: problems', () => {
  test('every problem is reported at once, with its path, top to bottom', () => {
    const text = `cluster:
  secret: short
api:
  token: ${TOKEN}
nodes:
  - id: n1
    raft: 127.0.0.1:7001
    api: 127.0.0.1:7101
    proxy: 127.0.0.1:7201
    postgres: 127.0.0.1:7301
  - id: n2
    raft: 127.0.0.1:7002
    api: 127.0.0.1:80x1
    proxy: 127.0.0.1:7202
    postgres: 127.0.0.1:7302
    priorty: 2
  - id: n3
    raft: 127.0.0.1:7003
    api: 127.0.0.1:7103
    proxy: 127.0.0.1:7203
    postgres: 127.0.0.1:7303
raft:
  tickMs: fast
log:
  level: verbose
`;
    const e = failing(text);
    assert.deepEqual(paths(e), ['cluster.secret', 'nodes[1].api', 'nodes[1].priorty', 'raft.tickMs', 'log.level']);
    const lines = e.message.split('\n');
    assert.equal(lines.length, 5);
    assert.equal(lines[0], 'cluster.yml:2: cluster.secret: must be at least 16 bytes, got 5; fix: generate one with: openssl rand -hex 32');
    assert.equal(lines[1], 'cluster.yml:13: nodes[1].api: "127.0.0.1:80x1" is not HOST:PORT (port must be 1-65535); fix: use e.g. 127.0.0.1:7102');
    assert.equal(lines[2], "cluster.yml:16: nodes[1].priorty: unknown field; did you mean 'priority'?");
    assert.equal(lines[3], 'cluster.yml:23: raft.tickMs: expected an integer, got the string "fast"');
    assert.equal(lines[4], "cluster.yml:25: log.level: must be one of 'debug', 'info', 'warn', 'error', got the string \"verbose\"");
    assert.deepEqual(e.problems[1], {
      path: 'nodes[1].api',
      message: '"127.0.0.1:80x1" is not HOST:PORT (port must be 1-65535)',
      hint: 'use e.g. 127.0.0.1:7102',
      line: 13,
    });
    // A required field missing altogether has no line.
    const noToken = failing(text.replace(/api:\n {2}token: .*\n/, ''));
    assert.equal(noToken.problems.length, 6);
    assert.match(noToken.message.split('\n')[5] ?? '', /^cluster\.yml: api\.token: is required; fix: .*OGEL_TOKEN$/);
  });

  test('unknown fields anywhere, with the closest known field', () => {
    const e = failing(
      withNodes(node(1, '    apii: 127.0.0.1:9000\n') + node(2) + node(3), 'rafts:\n  tickMs: 5\npostgres:\n  failover:\n    enable: true\n  zzzzzz: 1\n'),
    );
    assert.deepEqual(paths(e), ['nodes[0].apii', 'rafts', 'postgres.failover.enable', 'postgres.zzzzzz']);
    assert.equal(e.problems[0]?.message, "unknown field; did you mean 'api'?");
    assert.match(e.message, /cluster\.yml:\d+: nodes\[0\]\.apii: unknown field; did you mean 'api'\?/);
    assert.match(e.message, /rafts: unknown field; did you mean 'raft'\?/);
    assert.match(e.message, /postgres\.failover\.enable: unknown field; did you mean 'enabled'\?/);
    // Nothing close: the hint lists what is allowed here.
    assert.match(
      e.message,
      /postgres\.zzzzzz: unknown field; fix: remove it; the fields here are binDir, syncMode, syncQuorum, parameters, volumeBytes, leaseMs, failover$/m,
    );
    // camelCase written as snake_case is recognised too.
    assert.match(failing(withNodes(node(1) + node(2) + node(3), 'raft:\n  election_ticks: 5\n')).message, /did you mean 'electionTicks'\?/);
  });

  test('wrong types name the expected type and the value', () => {
    const text = `cluster:
  secret: ${SECRET}
api:
  token: 123456789012345678
  forwardTimeoutMs: "500"
nodes:
${node(1, '    priority: 1.5\n')}${node(2)}${node(3)}postgres:
  failover:
    enabled: yes
  parameters:
    work_mem: {}
proxy: 12
`;
    const e = failing(text);
    assert.equal(e.problems.length, 6);
    const byPath = new Map(e.problems.map((p) => [p.path, p]));
    assert.equal(byPath.get('nodes[0].priority')?.message, 'expected an integer, got the number 1.5');
    assert.equal(byPath.get('api.forwardTimeoutMs')?.message, 'expected an integer, got the string "500"');
    assert.equal(byPath.get('api.forwardTimeoutMs')?.hint, 'remove the quotes');
    assert.equal(byPath.get('postgres.failover.enabled')?.message, 'expected true or false, got the string "yes"');
    assert.match(byPath.get('postgres.failover.enabled')?.hint ?? '', /write true or false/);
    assert.equal(byPath.get('postgres.parameters.work_mem')?.message, 'expected a string, number or boolean, got a mapping');
    assert.equal(byPath.get('proxy')?.message, 'expected a mapping, got the number 12');
    // A secret's value never appears, even in a type error.
    assert.equal(byPath.get('api.token')?.message, 'expected a string, got a number');
    assert.doesNotMatch(e.message, /123456789012345678/);
  });

  test('bad HOST:PORT addresses', () => {
    const cases: [string, RegExp][] = [
      ['127.0.0.1:80x1', /"127\.0\.0\.1:80x1" is not HOST:PORT \(port must be 1-65535\); fix: use e\.g\. 127\.0\.0\.1:7101/],
      ['127.0.0.1:0', /port must be 1-65535/],
      ['127.0.0.1:65536', /port must be 1-65535/],
      ['127.0.0.1', /the port is missing\); fix: use e\.g\. 127\.0\.0\.1:7101/],
      [':7101', /the host is missing/],
      ['"::1:7101"', /an IPv6 host needs brackets/],
      ['"[::1:7101"', /is not closed/],
      ['10.0.0:7101', /"10\.0\.0" is not a host name or IP address/],
      ['bad_host:7101', /"bad_host" is not a host name/],
      ['0.0.0.0:7101', /is a wildcard address .*fix: .*listenHost: '0\.0\.0\.0'/],
      ["'[::]:7101'", /is a wildcard address/],
    ];
    for (const [addr, re] of cases) {
      const e = failing(withNodes(node(1).replace('api: 127.0.0.1:7101', `api: ${addr}`) + node(2) + node(3)));
      assert.deepEqual(paths(e), ['nodes[0].api'], addr);
      assert.match(e.message, re, addr);
    }
    const e = failing(withNodes(node(1, "    listenHost: '[::]'\n") + node(2, '    listenHost: not_a_host\n') + node(3)));
    assert.deepEqual(paths(e), ['nodes[0].listenHost', 'nodes[1].listenHost']);
    assert.match(e.message, /fix: write it without them: ::/);
  });

  test('duplicate node ids and addresses', () => {
    const dup = node(2).replace('id: n2', 'id: n1').replace('127.0.0.1:7202', '127.0.0.1:7201').replace('127.0.0.1:7302', '127.0.0.1:7101');
    const e = failing(withNodes(node(1) + dup + node(3)));
    assert.deepEqual(paths(e), ['nodes[1].id', 'nodes[1].proxy', 'nodes[1].postgres']);
    assert.match(e.message, /nodes\[1\]\.id: duplicate node id "n1" \(also nodes\[0\]\.id\)/);
    assert.match(e.message, /nodes\[1\]\.proxy: "127\.0\.0\.1:7201" is already used by nodes\[0\]\.proxy/);
    assert.match(e.message, /nodes\[1\]\.postgres: "127\.0\.0\.1:7101" is already used by nodes\[0\]\.api/);
    // The same port on two hosts is fine, unless one node binds both to listenHost.
    const sameHostPort = `  - id: n1
    raft: 10.0.0.1:7000
    api: 10.0.0.2:7000
    proxy: 10.0.0.1:6432
    postgres: 10.0.0.1:5432
    listenHost: '::'
`;
    assert.match(
      failing(withNodes(sameHostPort + node(2) + node(3))).message,
      /nodes\[0\]\.api: port 7000 is also used by nodes\[0\]\.raft, and both listen on ::/,
    );
  });

  test('node list, ids and cross-field rules', () => {
    assert.deepEqual(paths(failing(withNodes('  []\n'))), ['nodes']);
    assert.match(failing(withNodes([1, 2, 3, 4, 5, 6, 7, 8].map((i) => node(i)).join(''))).message, /nodes: must list at most 7 nodes, got 8/);
    assert.match(
      failing(`cluster:\n  secret: ${SECRET}\napi:\n  token: ${TOKEN}\n`).message,
      /^cluster\.yml: nodes: is required; fix: list the cluster's nodes/,
    );
    const e = failing(
      withNodes(
        node(1).replace('id: n1', 'id: Node_1') + node(2).replace(/ {4}api: .*\n/, '') + node(3),
        'raft:\n  electionTicks: 2\n  heartbeatTicks: 2\npostgres:\n  syncQuorum: 3\n',
      ),
    );
    assert.deepEqual(paths(e), ['nodes[0].id', 'nodes[1].api', 'raft.electionTicks', 'postgres.syncQuorum']);
    assert.match(e.message, /nodes\[1\]\.api: is required; fix: add e\.g\. api: 127\.0\.0\.1:7102/);
    assert.match(e.message, /raft\.electionTicks: must be greater than raft\.heartbeatTicks \(2\), got 2/);
    assert.match(e.message, /postgres\.syncQuorum: is 3, but 3 nodes have only 2 standbys/);
    assert.match(e.message, /must be at most 6|standbys/);
  });

  test('postgres parameters: names, managed settings, values', () => {
    const e = failing(
      withNodes(
        node(1) + node(2) + node(3),
        'postgres:\n  parameters:\n    "bad name": 1\n    port: 5433\n    synchronous_commit: "off"\n    wal_level: minimal\n    search_path: "a\\nb"\n',
      ),
    );
    assert.deepEqual(paths(e), [
      'postgres.parameters["bad name"]',
      'postgres.parameters.port',
      'postgres.parameters.synchronous_commit',
      'postgres.parameters.wal_level',
      'postgres.parameters.search_path',
    ]);
    assert.match(e.message, /parameters\.port: is managed by ogel; fix: remove it: set the port in nodes\[\]\.postgres/);
    const typo = parseConfig(withNodes(node(1) + node(2) + node(3), 'postgres:\n  parameters:\n    shared_buffer: 128MB\n'), 'c.yml', NO_ENV);
    assert.match(typo.warnings.join('\n'), /shared_buffer: .*did you mean 'shared_buffers'\?/);
  });

  test('postgres.volumeBytes: a size in bytes or with a unit; a bad one names the field, the value and the form', () => {
    const three = node(1) + node(2) + node(3);
    assert.equal(parseConfig(withNodes(three, 'postgres:\n  volumeBytes: 20GB\n'), 'c.yml', NO_ENV).postgres.volumeBytes, 20 * 1024 ** 3);
    assert.equal(parseConfig(withNodes(three, 'postgres:\n  volumeBytes: 536870912\n'), 'c.yml', NO_ENV).postgres.volumeBytes, 512 * 1024 ** 2);
    assert.equal(parseConfig(withNodes(three), 'c.yml', NO_ENV).postgres.volumeBytes, undefined, 'unset: statfs of the data directory');
    const bad = failing(withNodes(three, 'postgres:\n  volumeBytes: 20 gigs\n'));
    assert.deepEqual(paths(bad), ['postgres.volumeBytes']);
    assert.match(bad.message, /postgres\.volumeBytes: .*expected a size in bytes or with a unit \(B, kB, MB, GB, TB\), e\.g\. '20GB', got "20 gigs"/);
    assert.match(failing(withNodes(three, 'postgres:\n  volumeBytes: 100MB\n')).message, /postgres\.volumeBytes: .*must be at least 256 MB, got "100MB"/);
    for (const v of ['1.5', 'true', '[1]']) {
      assert.match(failing(withNodes(three, `postgres:\n  volumeBytes: ${v}\n`)).message, /postgres\.volumeBytes: expected a size in bytes or with a unit/, v);
    }
  });
});

describe('config: backups', () => {
  test('retention: counts from 0, defaults for what is left out', () => {
    const c = parseConfig(`${MINIMAL}backups:\n  retention:\n    daily: 0\n    monthly: 12\n`, 'c.yml', NO_ENV);
    assert.deepEqual(c.backups.retention, { daily: 0, weekly: 4, monthly: 12, failed: 5 });
  });

  test('retention: bad values name the field, the value and the fix', () => {
    const e = failing(`${MINIMAL}backups:\n  retention:\n    daily: -1\n    weekly: 1.5\n    monthly: 1000\n    failed: "3"\n    yearly: 2\n`);
    assert.deepEqual(paths(e).sort(), [
      'backups.retention.daily',
      'backups.retention.failed',
      'backups.retention.monthly',
      'backups.retention.weekly',
      'backups.retention.yearly',
    ]);
    assert.match(
      e.message,
      /backups\.retention\.daily: must be a count from 0 to 366, got -1; fix: use e\.g\. daily: 7 \(the newest backup of each of the last 7 days/,
    );
    assert.match(e.message, /backups\.retention\.weekly: expected an integer, got the number 1\.5/);
    assert.match(e.message, /backups\.retention\.monthly: must be a count from 0 to 120, got 1000; fix: use e\.g\. monthly: 3/);
    assert.match(e.message, /backups\.retention\.failed: expected an integer, got the string "3"; fix: remove the quotes/);
    assert.match(e.message, /backups\.retention\.yearly: unknown field; fix: remove it; the fields here are daily, weekly, monthly, failed/);
  });
});

describe('config: storage', () => {
  test('defaults to fs under <dataDir>/objects; s3 needs a bucket; credentials go in pairs', () => {
    const c = parseConfig(MINIMAL, 'cluster.yml', NO_ENV);
    assert.equal(c.storage.backend, 'fs');
    assert.equal(objectStoreDir(c), join('./.ogel/data', 'objects'));
    assert.equal(objectStoreDir({ ...c, storage: { ...c.storage, fs: { dir: '/mnt/shared' } } }), '/mnt/shared');
    const s3 = parseConfig(
      `${MINIMAL}storage:\n  backend: s3\n  s3:\n    endpoint: http://127.0.0.1:9000\n    bucket: ogel-backups\n    forcePathStyle: true\n`,
      'c.yml',
      NO_ENV,
    );
    assert.equal(s3.storage.s3.bucket, 'ogel-backups');
    assert.deepEqual(s3.warnings, []);
    const e = failing(`${MINIMAL}storage:\n  backend: s3\n  s3:\n    accessKeyId: abc\n`);
    assert.deepEqual(paths(e), ['storage.s3.bucket', 'storage.s3.secretAccessKey']);
    assert.match(e.message, /storage\.s3\.bucket: is required when storage\.backend is s3; fix: /);
    assert.match(e.message, /storage\.s3\.secretAccessKey: is required with storage\.s3\.accessKeyId.*OGEL_S3_SECRET_ACCESS_KEY/);
  });

  test('bad values name the field, the value and the fix', () => {
    const e = failing(
      `${MINIMAL}storage:\n  backend: minio\n  s3:\n    endpoint: 127.0.0.1:9000\n    bucket: Bad_Bucket\n    prefix: /abs\n    region: 'EU WEST'\n    connectTimeoutMs: 5\n`,
    );
    assert.deepEqual(paths(e).sort(), [
      'storage.backend',
      'storage.s3.bucket',
      'storage.s3.connectTimeoutMs',
      'storage.s3.endpoint',
      'storage.s3.prefix',
      'storage.s3.region',
    ]);
    assert.match(e.message, /storage\.backend: must be one of 'fs', 's3', got the string "minio"/);
    assert.match(e.message, /storage\.s3\.endpoint: "127\.0\.0\.1:9000" is not an http:\/\/ or https:\/\/ URL; fix: use e\.g\./);
    assert.match(e.message, /storage\.s3\.bucket: "Bad_Bucket" is not an S3 bucket name/);
    const a = failing(`${MINIMAL}storage:\n  s3:\n    endpoint: http://user:pw@127.0.0.1:9000\n`);
    assert.match(a.message, /storage\.s3\.endpoint: must not contain credentials/);
    const n = failing(withNodes(node(1) + node(2).replace('id: n2', 'id: objects') + node(3)));
    assert.match(n.message, /nodes\[1\]\.id: "objects" is the name of the default object store directory/);
  });

  test('OGEL_S3_* override the file, and the secret is redacted', () => {
    const text = `${MINIMAL}storage:\n  backend: s3\n  s3:\n    bucket: b-1\n    accessKeyId: from-file\n    secretAccessKey: file-secret\n`;
    const c = parseConfig(text, 'c.yml', { OGEL_S3_ACCESS_KEY_ID: 'from-env', OGEL_S3_SECRET_ACCESS_KEY: 'env-secret' });
    assert.equal(c.storage.s3.accessKeyId, 'from-env');
    assert.equal(c.storage.s3.secretAccessKey, 'env-secret');
    const r = redactConfig(c);
    assert.equal(r.storage.s3.secretAccessKey, '***');
    assert.ok(!configToYaml(r).includes('env-secret'));
    assert.deepEqual(parseConfig(configToYaml(c), 'c.yml', NO_ENV), c);
  });
});

describe('config: environment', () => {
  test('${VAR} and ${VAR:-default} substitution; quoting decides the type', () => {
    const text = `cluster:
  name: \${CLUSTER_NAME:-prod}
  secret: \${SECRET}
  dataDir: "\${DATA:-/var/lib/ogel}/data"
api:
  token: "tok-\${TOKEN_SUFFIX}"
raft:
  tickMs: \${TICK_MS:-25}
postgres:
  binDir: \${PG_BIN:-}
  failover:
    enabled: \${FAILOVER}
  parameters:
    application_name: literal-$\${NOT_A_VAR}
nodes:
  - id: \${NODE_ID}
    raft: \${HOST}:7001
    api: \${HOST}:7101
    proxy: \${HOST}:7201
    postgres: \${HOST}:7301
${node(2)}${node(3)}`;
    const env = { SECRET: '12345678901234567890', TOKEN_SUFFIX: 'abcdefghijklmnop', NODE_ID: 'n1', HOST: '10.1.2.3', FAILOVER: 'false', DATA: '' };
    const c = parseConfig(text, 'c.yml', env);
    assert.equal(c.cluster.name, 'prod');
    assert.equal(c.cluster.secret, '12345678901234567890', 'a string field stays a string, even if it looks like a number');
    assert.equal(c.cluster.dataDir, '/var/lib/ogel/data', 'an empty variable takes the :- default');
    assert.equal(c.api.token, 'tok-abcdefghijklmnop');
    assert.equal(c.raft.tickMs, 25, 'an unquoted number is a number');
    assert.equal(c.postgres.binDir, undefined, 'an empty unquoted result means unset');
    assert.equal(c.postgres.failover.enabled, false);
    assert.equal(c.postgres.parameters.application_name, 'literal-${NOT_A_VAR}');
    assert.equal(c.nodes[0]?.raft, '10.1.2.3:7001');
    // Quoted, a number stays a string, as in YAML.
    const quoted = failing(withNodes(node(1) + node(2) + node(3), 'raft:\n  tickMs: "${TICK}"\n'), { TICK: '30' });
    assert.match(quoted.message, /raft\.tickMs: expected an integer, got the string "30" \(after substituting \$\{TICK\}\)/);
  });

  test('a missing variable names the field and the variable', () => {
    const e = failing(withNodes(node(1).replace('127.0.0.1:7101', '${API_HOST}:7101') + node(2) + node(3), 'log:\n  level: ${LOG_LEVEL}\n'), {});
    assert.deepEqual(paths(e), ['nodes[0].api', 'log.level']);
    assert.match(
      e.message,
      /cluster\.yml:\d+: nodes\[0\]\.api: environment variable API_HOST is not set; fix: export API_HOST, or give a default: \$\{API_HOST:-value\}/,
    );
    assert.match(e.message, /log\.level: environment variable LOG_LEVEL is not set/);
    assert.match(failing(withNodes(node(1) + node(2) + node(3), 'log:\n  level: "${1BAD}"\n')).message, /"\$\{1BAD\}" is not a valid variable reference/);
    assert.match(failing(withNodes(node(1) + node(2) + node(3), 'log:\n  level: "${OPEN"\n')).message, /no closing "\}"/);
  });

  test('OGEL_CLUSTER_SECRET and OGEL_TOKEN override the file', () => {
    const env = { OGEL_CLUSTER_SECRET: 'from-the-environment-0001', OGEL_TOKEN: 'env-token-0123456789' };
    const c = parseConfig(MINIMAL, 'c.yml', env);
    assert.equal(c.cluster.secret, env.OGEL_CLUSTER_SECRET);
    assert.equal(c.api.token, env.OGEL_TOKEN);
    // The file may then leave them out, or reference unset variables for them.
    const bare = withNodes(node(1) + node(2) + node(3)).replace(/cluster:\n.*\napi:\n.*\n/, 'cluster:\n  secret: ${UNSET_SECRET}\n');
    assert.equal(parseConfig(bare, 'c.yml', env).api.token, env.OGEL_TOKEN);
    // Empty means not set.
    assert.equal(parseConfig(MINIMAL, 'c.yml', { OGEL_TOKEN: '' }).api.token, TOKEN);
    // A bad value from the environment says where it came from, and is not echoed.
    const e = failing(MINIMAL, { OGEL_CLUSTER_SECRET: 'tiny-secret' });
    assert.deepEqual(paths(e), ['cluster.secret']);
    assert.match(e.message, /cluster\.secret: must be at least 16 bytes, got 11 \(value from OGEL_CLUSTER_SECRET\)/);
    assert.doesNotMatch(e.message, /tiny-secret/);
  });
});

describe('config: files and syntax', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ogel-config-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('YAML syntax errors name the line and column', () => {
    const e = failing('cluster:\n  secret: x\n nodes: [\n');
    assert.equal(e.problems.length, 1);
    assert.equal(e.problems[0]?.line, 3);
    assert.match(e.message, /^cluster\.yml:3:\d+: YAML syntax error: /);
    const dupKey = failing(`${MINIMAL}api:\n  token: again\n`);
    assert.match(dupKey.message, /^cluster\.yml:\d+:1: YAML syntax error: Map keys must be unique: "api"; fix: remove one of the two$/);
    const flow = failing('cluster: {secret: ${S}}\n');
    assert.match(flow.message, /fix: in flow style .* put values with \$\{\.\.\.\} in quotes/);
  });

  test('empty files, a top level that is not a mapping, missing files, directories', () => {
    for (const t of ['', '   \n', '# only a comment\n', '---\n']) {
      assert.equal(failing(t).message, 'cluster.yml: the file is empty; fix: start from cluster.example.yml');
    }
    assert.match(failing('- id: n1\n').message, /^cluster\.yml:1: the top level must be a mapping of sections \(cluster:, nodes:, \.\.\.\), got a list/);
    assert.match(failing('just words\n').message, /got the string "just words"/);

    const missing = join(dir, 'nope.yml');
    assert.throws(
      () => loadConfig(missing, NO_ENV),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.equal(
          e.message,
          `${missing}: cannot read the config file: no such file (looked for ${missing}); fix: copy cluster.example.yml to start one, or pass --config with the right path`,
        );
        return true;
      },
    );
    mkdirSync(join(dir, 'adir'));
    assert.throws(() => loadConfig(join(dir, 'adir'), NO_ENV), /adir: is a directory, not a config file/);
    const file = join(dir, 'cluster.yml');
    writeFileSync(file, MINIMAL);
    assert.equal(loadConfig(file, NO_ENV).nodes.length, 3);
  });

  test('getNode names the known ids', () => {
    const c = parseConfig(MINIMAL, 'c.yml', NO_ENV);
    assert.equal(getNode(c, 'n2').api, '127.0.0.1:7102');
    assert.throws(
      () => getNode(c, 'n9'),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.match(e.message, /no node with id "n9"; the nodes are n1, n2, n3/);
        return true;
      },
    );
  });
});

describe('config: written and shown', () => {
  test('redactConfig hides the secret and the token, and nothing else', () => {
    const c = parseConfig(MINIMAL, 'c.yml', NO_ENV);
    const r = redactConfig(c);
    assert.equal(r.cluster.secret, '***');
    assert.equal(r.api.token, '***');
    assert.equal(c.cluster.secret, SECRET, 'the original is untouched');
    assert.deepEqual({ ...r, cluster: { ...r.cluster, secret: SECRET }, api: { ...r.api, token: TOKEN } }, c);
    const yaml = configToYaml(r);
    assert.ok(!yaml.includes(SECRET) && !yaml.includes(TOKEN));
  });

  test('localClusterConfig round-trips through configToYaml and parseConfig', () => {
    const c = localClusterConfig({ dataDir: '/tmp/ogel-test/data', secret: SECRET, token: TOKEN });
    assert.deepEqual(
      c.nodes.map((n) => [n.id, n.raft, n.api, n.proxy, n.postgres]),
      [1, 2, 3].map((i) => [`n${i}`, `127.0.0.1:${7000 + i}`, `127.0.0.1:${7100 + i}`, `127.0.0.1:${7200 + i}`, `127.0.0.1:${7300 + i}`]),
    );
    assert.deepEqual(c.warnings, []);
    assert.equal(nodeDataDir(c, 'n3'), '/tmp/ogel-test/data/n3');
    const yaml = configToYaml(c, { comment: 'written by ogel up' });
    assert.match(yaml, /^# written by ogel up\n/);
    assert.deepEqual(parseConfig(yaml, 'c.yml', NO_ENV), c);

    const one = localClusterConfig({ dataDir: 'd', secret: SECRET, token: TOKEN, nodes: 1, basePort: 20000 });
    assert.equal(one.postgres.syncMode, 'async');
    assert.equal(one.nodes[0]?.proxy, '127.0.0.1:20201');
    assert.deepEqual(parseConfig(configToYaml(one), 'c.yml', NO_ENV), one);
    assert.throws(() => localClusterConfig({ dataDir: 'd', secret: 'short', token: TOKEN }), /cluster\.secret: must be at least 16 bytes/);
    assert.throws(() => localClusterConfig({ dataDir: 'd', secret: SECRET, token: TOKEN, nodes: 8 }), /nodes: must be 1 to 7, got 8/);
  });

  test('configToYaml escapes ${ and keeps optional fields and odd strings', () => {
    const base = parseConfig(MINIMAL, 'c.yml', NO_ENV);
    const c: Config = validateConfig({
      ...base,
      warnings: undefined,
      cluster: { ...base.cluster, secret: 'has-${DOLLAR}-and-$$-and-"quotes"' },
      nodes: base.nodes.map((n, i) => (i === 0 ? { ...n, listenHost: '::', priority: 3 } : n)),
      postgres: {
        ...base.postgres,
        binDir: '/opt/pg 17/bin',
        parameters: { search_path: '"$user", public', max_connections: 100, jit: true, work_mem: '64MB' },
      },
    });
    const back = parseConfig(configToYaml(c), 'c.yml', NO_ENV);
    assert.deepEqual(back, c);
    assert.equal(back.cluster.secret, 'has-${DOLLAR}-and-$$-and-"quotes"');
  });
});
