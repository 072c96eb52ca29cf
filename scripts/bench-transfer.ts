// npm run bench:transfer -- [--runs 20] [--json]
// Leadership transfer on a 3-node cluster of real ogel daemons: POST
// /v1/leadership/transfer to the current leader, naming the next node in turn, and
// time it until the API answers (the new leader is elected and known to the old
// one). Prints the JSON summary last: {"runs","p50_ms","p99_ms","max_ms",...}.
// The peer figure (Patroni's switchover of leadership in its DCS) is not a
// like-for-like comparison, so none is run; the goal is p99 under 500 ms.

import { performance } from 'node:perf_hooks';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { DaemonCluster } from '../test/helpers/daemons.js';
import { percentile, round, sortNumbers } from './bench/lib/stats.js';

const HELP = `Usage: npm run bench:transfer -- [--runs N] [--json]

Starts three ogel daemons on loopback and moves Raft leadership N times (default
20) with the admin API, each time to the next node, timing each transfer from the
request until the answer (the new leader elected). The JSON summary is printed last.`;

async function main(): Promise<number> {
  const argSpec = {
    options: { runs: { type: 'string', default: '20' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } },
    strict: true,
  } satisfies ParseArgsConfig;
  let a: ReturnType<typeof parseArgs<typeof argSpec>>['values'];
  try {
    a = parseArgs(argSpec).values;
  } catch (e) {
    process.stderr.write(`bench:transfer: ${(e as Error).message}\n${HELP}\n`);
    return 2;
  }
  if (a.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const runs = Number(a.runs);
  if (!Number.isInteger(runs) || runs < 1 || runs > 1000) {
    process.stderr.write(`bench:transfer: --runs must be an integer from 1 to 1000, got '${a.runs}'\n`);
    return 2;
  }
  const c = await DaemonCluster.create();
  const cleanup = () => c.destroy();
  process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));
  try {
    await c.startAll();
    let leader = await c.waitForLeader();
    const ids = [...c.nodes.keys()];
    const clientMs: number[] = [];
    const serverMs: number[] = [];
    for (let i = 0; i < runs; i++) {
      const to = ids[(ids.indexOf(leader) + 1) % ids.length]!;
      const t0 = performance.now();
      const r = await c.send(leader, 'POST', '/v1/leadership/transfer', { to });
      const ms = performance.now() - t0;
      if (r.status !== 200) throw new Error(`transfer ${leader} -> ${to} failed: ${r.status} ${JSON.stringify(r.body)}`);
      const body = r.body as { to: string; durationMs: number };
      if (body.to !== to) throw new Error(`asked for ${to}, got ${body.to}`);
      clientMs.push(ms);
      serverMs.push(body.durationMs);
      process.stderr.write(`[bench:transfer] run ${i + 1}/${runs}: ${leader} -> ${to} in ${ms.toFixed(1)} ms\n`);
      leader = await c.waitForLeader();
      if (leader !== to) throw new Error(`the cluster agrees on ${leader}, not ${to}`);
    }
    const s = sortNumbers(clientMs);
    const summary = {
      runs,
      p50_ms: round(percentile(s, 50), 1),
      p99_ms: round(percentile(s, 99), 1),
      max_ms: round(s[s.length - 1]!, 1),
      server_p50_ms: round(percentile(sortNumbers(serverMs), 50), 1),
      goal_p99_ms: 500,
      samples_ms: clientMs.map((x) => round(x, 1)),
    };
    if (!a.json) process.stderr.write(`[bench:transfer] p50 ${summary.p50_ms} ms, p99 ${summary.p99_ms} ms, max ${summary.max_ms} ms over ${runs} runs\n`);
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return 0;
  } finally {
    await cleanup();
  }
}

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    process.stderr.write(`bench:transfer: ${e.message}\n`);
    process.exit(1);
  },
);
