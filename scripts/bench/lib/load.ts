// A closed-loop load driver: C clients, each sending its next request as soon as the
// previous one is answered. After a warm-up, every request that completes inside the
// measurement window is counted and its latency recorded (exact percentiles).

import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Dispatcher } from 'undici';
import { LatencyRecorder, type LatencySummary } from './stats.js';

export interface LoadOptions {
  clients: number;
  warmupMs: number;
  durationMs: number;
  /**
   * Issues one request for `client` (0-based), its `seq`-th (0-based), consumes the
   * answer, and resolves with the HTTP status. A throw counts as an error.
   */
  op: (client: number, seq: number) => Promise<number>;
  /** Pause a client this long after a thrown error, so a dead server is not spun on. */
  errorBackoffMs?: number;
}

export interface LoadResult {
  clients: number;
  /** Length of the measurement window. */
  durationMs: number;
  /** Successful (2xx) requests completed in the window. */
  ops: number;
  opsPerSec: number;
  /** Non-2xx answers and thrown errors completed in the window. */
  errors: number;
  /** Errors by kind (`http_421`, `UND_ERR_SOCKET`, ...), window and warm-up together. */
  errorKinds: Record<string, number>;
  warmupOps: number;
  /** Latency of the successful requests in the window. */
  latency: LatencySummary;
}

export async function runClosedLoop(o: LoadOptions): Promise<LoadResult> {
  if (!(Number.isInteger(o.clients) && o.clients > 0)) throw new RangeError(`clients must be a positive integer, got ${o.clients}`);
  const rec = new LatencyRecorder(1 << 16);
  const errorKinds: Record<string, number> = {};
  let errors = 0;
  let warmupOps = 0;
  const t0 = performance.now();
  const windowStart = t0 + o.warmupMs;
  const windowEnd = windowStart + o.durationMs;
  const backoffMs = o.errorBackoffMs ?? 5;

  const client = async (c: number): Promise<void> => {
    for (let seq = 0; performance.now() < windowEnd; seq++) {
      const start = performance.now();
      let kind: string | undefined;
      try {
        const status = await o.op(c, seq);
        if (status < 200 || status > 299) kind = `http_${status}`;
      } catch (e) {
        kind = errorKind(e);
      }
      const end = performance.now();
      const inWindow = end >= windowStart && end < windowEnd;
      if (kind === undefined) {
        if (inWindow) rec.record(end - start);
        else if (end < windowStart) warmupOps++;
        continue;
      }
      errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
      if (inWindow) errors++;
      if (kind.startsWith('http_')) continue;
      await sleep(backoffMs);
    }
  };
  await Promise.all(Array.from({ length: o.clients }, (_, c) => client(c)));
  return {
    clients: o.clients,
    durationMs: o.durationMs,
    ops: rec.count,
    opsPerSec: (rec.count * 1000) / o.durationMs,
    errors,
    errorKinds,
    warmupOps,
    latency: rec.summary(),
  };
}

function errorKind(e: unknown): string {
  if (e && typeof e === 'object') {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    const name = (e as { name?: unknown }).name;
    if (typeof name === 'string') return name;
  }
  return 'error';
}

/** One HTTP request on `d` whose body is drained; resolves with the status code. */
export async function httpStatus(d: Dispatcher, opts: Dispatcher.RequestOptions): Promise<number> {
  const { statusCode, body } = await d.request(opts);
  await body.dump();
  return statusCode;
}
