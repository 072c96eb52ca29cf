// A real S3-protocol server for tests: s3rver in its own process on 127.0.0.1,
// an ephemeral port, a temp directory and one pre-created bucket.
//
// A separate process, not in-process: the store's client then pays real socket
// costs, and s3rver must run with --openssl-legacy-provider (its ListObjectsV2
// continuation tokens are DES-encrypted, which OpenSSL 3 refuses without it:
// every truncated listing would answer 500).

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

/** s3rver's built-in account: it knows no other access key id. */
export const S3RVER_ACCESS_KEY_ID = 'S3RVER';
export const S3RVER_SECRET_ACCESS_KEY = 'S3RVER';

export interface S3rver {
  endpoint: string;
  port: number;
  bucket: string;
  /** s3rver's data directory: objects are <dir>/<bucket>/<key>._S3rver_object. */
  dir: string;
  pid: number;
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 15_000;
const POLL_INTERVAL_MS = 25;

export async function startS3rver(opts: { bucket?: string } = {}): Promise<S3rver> {
  const bucket = opts.bucket ?? 'ogel-test';
  const dir = mkdtempSync(join(tmpdir(), 'ogel-s3rver-'));
  const s3rverUrl = pathToFileURL(createRequire(import.meta.url).resolve('s3rver')).href;
  // The child prints its port once listening; the helper then polls HTTP.
  const script = `
    const { default: S3rver } = await import(${JSON.stringify(s3rverUrl)});
    const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: ${JSON.stringify(dir)}, configureBuckets: [{ name: ${JSON.stringify(bucket)} }] });
    const { port } = await server.run();
    process.stdout.write(JSON.stringify({ port }) + '\\n');
    process.on('SIGTERM', () => server.close().finally(() => process.exit(0)));
  `;
  const child = spawn(process.execPath, ['--openssl-legacy-provider', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  try {
    const port = await portLine(child, () => stderr);
    const endpoint = `http://127.0.0.1:${port}`;
    await untilHttpAnswers(port);
    return { endpoint, port, bucket, dir, pid: child.pid ?? -1, stop: () => stop(child, dir) };
  } catch (e) {
    await stop(child, dir);
    throw e;
  }
}

function portLine(child: ChildProcess, stderr: () => string): Promise<number> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`s3rver did not start within ${READY_TIMEOUT_MS} ms; stderr: ${stderr()}`)), READY_TIMEOUT_MS);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n') && line !== undefined) {
        clearTimeout(timer);
        const port = (JSON.parse(line) as { port?: unknown }).port;
        if (typeof port === 'number') resolve(port);
        else reject(new Error(`s3rver printed ${line}`));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`s3rver exited with ${code} before listening; stderr: ${stderr()}`));
    });
  });
}

/** Polls GET / until s3rver answers (any HTTP status), bounded by READY_TIMEOUT_MS. */
async function untilHttpAnswers(port: number): Promise<void> {
  const deadlineMs = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: '/', method: 'GET', timeout: 1000 }, (res) => {
        res.resume();
        resolve(true);
      });
      req.on('error', () => resolve(false));
      req.on('timeout', () => req.destroy());
      req.end();
    });
    if (ok) return;
    if (Date.now() > deadlineMs) throw new Error(`s3rver on port ${port} did not answer HTTP within ${READY_TIMEOUT_MS} ms`);
    await sleep(POLL_INTERVAL_MS);
  }
}

async function stop(child: ChildProcess, dir: string): Promise<void> {
  if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    process.kill(child.pid, 'SIGTERM');
    const timer = setTimeout(() => {
      if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    }, 3000);
    await exited;
    clearTimeout(timer);
  }
  rmSync(dir, { recursive: true, force: true });
}
