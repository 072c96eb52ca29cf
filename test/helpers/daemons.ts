// Real `ogel daemon` processes on loopback for integration tests: a cluster.yml
// with ephemeral ports, one process per node, readiness by polling /health, kill
// by PID, restart on the same data directory. Every node is on 127.0.0.1 unless
// given its own loopback address (partition tests cut nodes off by address).

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { request } from 'undici';
import { setTimeout as sleep } from 'node:timers/promises';

export const CLI = resolve('dist/src/main.js');
export const TOKEN = 'test-token-0123456789abcdef';

export interface DaemonNode {
  id: string;
  /** The address every listener of this node binds and advertises. */
  host: string;
  raftPort: number;
  apiPort: number;
  proxyPort: number;
  postgresPort: number;
  proc?: ChildProcess;
  log: string[];
}

/** Ports handed out by this process: the kernel may give a just-closed port 0 again. */
const portsGiven = new Set<number>();

async function freePort(host: string): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = await ephemeralPort(host);
    if (!portsGiven.has(port)) {
      portsGiven.add(port);
      return port;
    }
  }
  throw new Error('could not find a port not handed out before in 100 tries');
}

async function ephemeralPort(host: string): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolvePort(port));
    });
  });
}

export interface DaemonClusterOptions {
  /** Per-node host (an address on lo, e.g. 127.0.0.11); nodes not listed use 127.0.0.1. */
  hosts?: Readonly<Record<string, string>>;
}

const DEFAULT_HOST = '127.0.0.1';

async function newNode(id: string, host: string): Promise<DaemonNode> {
  return {
    id,
    host,
    raftPort: await freePort(host),
    apiPort: await freePort(host),
    proxyPort: await freePort(host),
    postgresPort: await freePort(host),
    log: [],
  };
}

function nodeYaml(n: DaemonNode): string {
  return `  - id: ${n.id}\n    raft: ${n.host}:${n.raftPort}\n    api: ${n.host}:${n.apiPort}\n    proxy: ${n.host}:${n.proxyPort}\n    postgres: ${n.host}:${n.postgresPort}\n`;
}

export class DaemonCluster {
  readonly nodes = new Map<string, DaemonNode>();

  private constructor(
    readonly dir: string,
    readonly configPath: string,
  ) {}

  static async create(ids = ['n1', 'n2', 'n3'], extraYaml = '', opts: DaemonClusterOptions = {}): Promise<DaemonCluster> {
    const dir = await mkdtemp(join(tmpdir(), 'ogel-daemons-'));
    await chmod(dir, 0o711); // the unprivileged Postgres user must reach the data directories
    const c = new DaemonCluster(dir, join(dir, 'cluster.yml'));
    for (const id of ids) c.nodes.set(id, await newNode(id, opts.hosts?.[id] ?? DEFAULT_HOST));
    const nodesYaml = [...c.nodes.values()].map(nodeYaml).join('');
    // A secret of its own: test clusters run side by side with the same node ids and
    // cluster name, and a port a killed node of one cluster leaves behind can be
    // handed to a node of another. Its peers keep dialling that port; with a shared
    // secret their frames would be accepted, and a node could follow another
    // cluster's leader (the suspected cause of a CI run in which a cluster's nodes
    // never agreed on a leader while writes went through). The secret keeps them out.
    const secret = randomBytes(16).toString('hex');
    const yaml = `cluster:\n  name: test\n  secret: ${secret}\n  dataDir: ${join(dir, 'data')}\nnodes:\n${nodesYaml}raft:\n  tickMs: 20\napi:\n  token: ${TOKEN}\nlog:\n  level: info\n${extraYaml}`;
    await writeFile(c.configPath, yaml);
    return c;
  }

  /**
   * Adds a node that is not in the cluster's config: it gets its own config file
   * listing the cluster plus itself (the running nodes' config stays as it was, so
   * they never treat it as a bootstrap voter). Start it with start(id, ['--join']).
   */
  async addNodeConfig(id: string, host = DEFAULT_HOST): Promise<DaemonNode> {
    const n = await newNode(id, host);
    this.nodes.set(id, n);
    this.extraConfigs.add(id);
    const text = await readFile(this.configPath, 'utf8');
    await writeFile(this.configFor(id), text.replace('\nraft:\n', `\n${nodeYaml(n)}raft:\n`));
    return n;
  }

  private configFor(id: string): string {
    return this.extraConfigs.has(id) ? join(this.dir, `cluster-${id}.yml`) : this.configPath;
  }

  private readonly extraConfigs = new Set<string>();

  apiUrl(id: string): string {
    const n = this.nodes.get(id)!;
    return `http://${n.host}:${n.apiPort}`;
  }

  /** Where node `id`'s Postgres puts its unix socket (unix_socket_directories is the data directory). */
  postgresSocketDir(id: string): string {
    return join(this.dir, 'data', id, 'pg');
  }

  apis(): string {
    return [...this.nodes.keys()].map((id) => this.apiUrl(id)).join(',');
  }

  /** Starts (or restarts) a node's daemon and waits for /health. */
  async start(id: string, extraArgs: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<void> {
    const n = this.nodes.get(id)!;
    const proc = spawn(process.execPath, [CLI, 'daemon', '--config', this.configFor(id), '--node', id, ...extraArgs], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    n.proc = proc;
    const keep = (chunk: Buffer) => {
      n.log.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      if (n.log.length > 2_000) n.log.splice(0, n.log.length - 2_000);
    };
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    await this.waitFor(
      async () => (await this.get(id, '/health')).status === 200,
      `${id} /health`,
      10_000,
      () => {
        if (proc.exitCode !== null) throw new Error(`${id} exited with ${proc.exitCode}:\n${n.log.slice(-20).join('\n')}`);
      },
    );
  }

  async startAll(): Promise<void> {
    await Promise.all([...this.nodes.keys()].map((id) => this.start(id)));
  }

  /** kill -9 by PID, and wait until the process is gone. */
  async kill9(id: string): Promise<void> {
    const proc = this.nodes.get(id)!.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    process.kill(proc.pid!, 'SIGKILL');
    await exited;
  }

  /**
   * SIGTERM, and wait for a clean exit. Returns the exit code (null: it was
   * killed after timeoutMs). 30 s: a clean stop includes Postgres's shutdown
   * checkpoint, which on 2 cores shared with another test's I/O was seen to take
   * over 10 s; a hang still fails.
   */
  async terminate(id: string, timeoutMs = 30_000): Promise<number | null> {
    const proc = this.nodes.get(id)!.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return proc?.exitCode ?? null;
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    process.kill(proc.pid!, 'SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    const code = await exited;
    clearTimeout(t);
    return code;
  }

  async get(id: string, path: string, token: string | null = TOKEN): Promise<{ status: number; body: unknown }> {
    try {
      const r = await request(this.apiUrl(id) + path, {
        headers: token ? { authorization: `Bearer ${token}` } : {},
        headersTimeout: 5_000,
        bodyTimeout: 5_000,
      });
      const text = await r.body.text();
      // JSON answers parsed; others (/metrics) as text.
      const json = (r.headers['content-type'] ?? '').toString().startsWith('application/json');
      return { status: r.statusCode, body: text ? (json ? (JSON.parse(text) as unknown) : text) : undefined };
    } catch {
      return { status: 0, body: undefined };
    }
  }

  async send(id: string, method: 'POST' | 'DELETE', path: string, body?: unknown, token: string | null = TOKEN): Promise<{ status: number; body: unknown }> {
    const r = await request(this.apiUrl(id) + path, {
      method,
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
    const text = await r.body.text();
    return { status: r.statusCode, body: text ? (JSON.parse(text) as unknown) : undefined };
  }

  /** The leader every live node agrees on. On a timeout the error says what each node last said. */
  async waitForLeader(timeoutMs = 10_000, not?: string): Promise<string> {
    let leader = '';
    const views = new Map<string, string>();
    try {
      await this.waitFor(
        async () => {
          const seen = new Set<string>();
          let agreed = true;
          for (const [id, n] of this.nodes) {
            if (!n.proc || n.proc.exitCode !== null || n.proc.signalCode !== null) continue;
            const r = await this.get(id, '/v1/status?stale=true');
            const b = r.body as { leader?: string; term?: number; rejoining?: boolean } | undefined;
            views.set(id, r.status === 200 ? `leader ${b?.leader ?? 'none'}, term ${b?.term}, rejoining ${b?.rejoining}` : `no answer (HTTP ${r.status})`);
            const l = b?.leader;
            if (r.status !== 200 || !l) agreed = false;
            else seen.add(l);
          }
          if (!agreed || seen.size !== 1) return false;
          leader = [...seen][0]!;
          return leader !== not;
        },
        'an agreed leader',
        timeoutMs,
      );
    } catch (e) {
      const said = [...views].map(
        ([id, v]) =>
          `  ${id}: ${v}; last log lines:\n${this.nodes
            .get(id)!
            .log.slice(-8)
            .map((l) => `    ${l}`)
            .join('\n')}`,
      );
      throw new Error(`${(e as Error).message}${not ? ` other than ${not}` : ''}; what each node said last:\n${said.join('\n')}`);
    }
    return leader;
  }

  async waitFor(cond: () => Promise<boolean>, what: string, timeoutMs: number, check?: () => void): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      check?.();
      if (await cond()) return;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await sleep(20);
    }
  }

  /** Runs the compiled CLI and returns its exit code and output. */
  async cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return runCli(args, { OGEL_API: this.apis(), OGEL_TOKEN: TOKEN, ...env });
  }

  async destroy(): Promise<void> {
    for (const id of this.nodes.keys()) await this.terminate(id, 10_000);
    // A daemon's Postgres stops with it (fast stop, or the death guard after a
    // kill -9); retry the removal while the last files are closed.
    await rm(this.dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  }
}

export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolveRun) => {
    const p = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    p.on('close', (code) => resolveRun({ code, stdout, stderr }));
  });
}
