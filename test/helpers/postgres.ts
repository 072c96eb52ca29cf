// Helpers for tests that need a real Postgres: a free port, and a temporary
// primary that is always cleaned up (stopped and removed).

import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PostgresInstance, type InstanceSettings, type StopMode } from '../../src/postgres/instance.js';
import { readReplicationPassword, REPLICATION_ROLE, slotNameFor } from '../../src/postgres/settings.js';
import { createStandby } from '../../src/postgres/standby.js';
import { setTimeout as sleep } from 'node:timers/promises';

/** An ephemeral TCP port that was free a moment ago (bind port 0, close). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

/**
 * A fresh temporary directory under os.tmpdir(), traversable by the Postgres
 * OS user (mkdtemp makes it 0700, owned by us: as root that would lock the
 * Postgres user out). Put data dirs inside it.
 */
export function makeTempRoot(prefix = 'ogel-pg-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o711);
  return dir;
}

export interface TempPrimary {
  pg: PostgresInstance;
  /** The temp root; the data dir is <root>/data. */
  root: string;
  dataDir: string;
  port: number;
  /** Stops (immediate unless told) and removes everything. Idempotent; safe after failures. */
  cleanup(mode?: StopMode): Promise<void>;
}

export interface TempPrimaryOptions {
  nodeId?: string;
  /** Other node ids (for synchronous_standby_names); default none (async). */
  peerNodeIds?: string[];
  settings?: Partial<InstanceSettings>;
  /** Start it (default true). */
  start?: boolean;
  replicationPassword?: string;
}

/**
 * initdb + start a primary on 127.0.0.1:<free port> in a temp dir. Small
 * memory settings so several can run at once. Always call cleanup(), e.g.
 * `t.after(() => p.cleanup())` or in a finally.
 */
export async function makeTempPrimary(opts: TempPrimaryOptions = {}): Promise<TempPrimary> {
  const root = makeTempRoot();
  const dataDir = join(root, 'data');
  let pgi: PostgresInstance | undefined;
  let port = 0;
  const cleanup = async (mode: StopMode = 'immediate') => {
    try {
      if (pgi?.isRunning()) await pgi.stop(mode, { timeoutMs: 10_000 });
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  };
  try {
    port = await freePort();
    const peers = opts.peerNodeIds ?? [];
    pgi = await PostgresInstance.initPrimary({
      dataDir,
      port,
      noSync: true,
      ...(opts.replicationPassword ? { replicationPassword: opts.replicationPassword } : {}),
      settings: {
        nodeId: opts.nodeId ?? 'n1',
        listenAddresses: ['127.0.0.1'],
        syncMode: peers.length > 0 ? 'quorum' : 'async',
        syncQuorum: 1,
        peerNodeIds: peers,
        replicationHosts: ['127.0.0.1'],
        parameters: { shared_buffers: '32MB', max_connections: 30, fsync: false, ...opts.settings?.parameters },
        ...opts.settings,
      },
    });
    if (opts.start !== false) await pgi.start({ timeoutMs: 15_000 });
  } catch (err) {
    await cleanup().catch(() => {});
    throw err;
  }
  return { pg: pgi, root, dataDir, port, cleanup };
}

/**
 * Polls `fn` every 10 ms until it returns a value (not undefined), for at most
 * timeoutMs; the last error it threw is named in the timeout message.
 */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000): Promise<T> {
  const t0 = performance.now();
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      lastErr = e;
    }
    if (performance.now() - t0 > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${(lastErr as Error).message}` : ''}`);
    await sleep(10);
  }
}

/**
 * Starts Postgres on a copy of a data directory (a restored backup, a combined
 * chain) as a standalone server on a free port: asynchronous, local only.
 * `parameters` replace the small test defaults. The caller stops it.
 */
export async function startCopy(
  dataDir: string,
  opts: { parameters?: Record<string, string | number | boolean>; timeoutMs?: number } = {},
): Promise<PostgresInstance> {
  const pg = new PostgresInstance({ dataDir, port: await freePort() });
  pg.writeConfig({
    nodeId: 'copy',
    listenAddresses: ['127.0.0.1'],
    syncMode: 'async',
    syncQuorum: 1,
    peerNodeIds: [],
    replicationHosts: ['127.0.0.1'],
    parameters: opts.parameters ?? { shared_buffers: '32MB', max_connections: 30, fsync: false },
  });
  await pg.start({ timeoutMs: opts.timeoutMs ?? 30_000 });
  return pg;
}

/** Clones a streaming standby of `primary` into <root>/<id> (createStandby: base backup, slot, standby.signal); not started. */
export async function cloneTestStandby(primary: TempPrimary, id = 's1'): Promise<string> {
  const dir = join(primary.root, id);
  await createStandby({
    primary: { host: '127.0.0.1', port: primary.port, user: REPLICATION_ROLE, password: readReplicationPassword(primary.dataDir) },
    replicationUser: REPLICATION_ROLE,
    slotName: slotNameFor(id),
    targetDir: dir,
    owner: primary.pg.user,
    applicationName: id,
    fsync: false,
  });
  return dir;
}

/** A test standby's instance on a free port with the small test settings (config written, not started). */
export async function testStandbyInstance(
  dir: string,
  o: { nodeId?: string; syncMode?: 'async' | 'quorum'; peerNodeIds?: string[] } = {},
): Promise<PostgresInstance> {
  const standby = new PostgresInstance({ dataDir: dir, port: await freePort() });
  standby.writeConfig({
    nodeId: o.nodeId ?? 's1',
    listenAddresses: ['127.0.0.1'],
    syncMode: o.syncMode ?? 'async',
    syncQuorum: 1,
    peerNodeIds: o.peerNodeIds ?? [],
    replicationHosts: ['127.0.0.1'],
    parameters: { shared_buffers: '32MB', max_connections: 30, fsync: false },
  });
  return standby;
}
