// npm run jepsen -- --workload register|set|bank --nemesis NAME[,NAME] --time 60 --seed S [--json]
// npm run jepsen:all [-- --time S --seed S --seeds N]   (every workload against every nemesis and the combined cells, N seeds each)
//
// Needs root: the run creates a private network namespace (`unshare --net`), in
// which it adds iptables rules and per-host cgroups. As root, this script runs
// itself again inside that namespace; the machine's firewall is never changed.
// Prints the run's JSON as its last line; exit 0 when valid, 1 when not (or the
// run could not be judged), 2 for a usage error or a machine that cannot run it.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { inPrivateNetns, isRoot, missingTools, reexecInNetns } from './harness/env.js';
import { DEFAULT_RUN, run, type ArchiveSummary, type RunOptions, type Summary } from './harness/runner.js';
import { NEMESIS_NAMES, parseNemeses, type NemesisName } from './nemesis/index.js';
import { DEFAULT_SCHEDULE } from './nemesis/scheduler.js';
import { parseUnsafeSwitches, UNSAFE_SWITCHES, type UnsafeSwitch } from '../src/postgres/unsafe-switches.js';
import { WORKLOAD_NAMES, type WorkloadName } from './workloads/index.js';

const SCRIPT = fileURLToPath(import.meta.url);

/** Cells of the matrix that run several nemeses at once, with shorter quiet gaps: faults that overlap in time. */
export const COMBINED_CELLS: readonly { nemeses: NemesisName[] }[] = [
  { nemeses: ['partition-primary', 'pause-daemon', 'kill-host'] },
  { nemeses: ['partition-leader', 'kill-daemon', 'slow-link'] },
];
const COMBINED_QUIET_MS = '500-1500';

export interface MatrixCell {
  workload: WorkloadName;
  nemeses: NemesisName[];
  seed: number;
  /** Extra arguments for the run (the combined cells' quiet gaps). */
  extra: string[];
}

/** The runs of the matrix, in order: per workload, per cell (single nemeses, then combined), per seed. */
export function matrixCells(o: {
  workloads: readonly WorkloadName[];
  nemeses: readonly NemesisName[];
  combined: boolean;
  seed: number;
  seeds: number;
}): MatrixCell[] {
  const cells: { nemeses: NemesisName[]; extra: string[] }[] = o.nemeses.map((n) => ({ nemeses: [n], extra: [] }));
  if (o.combined) for (const c of COMBINED_CELLS) cells.push({ nemeses: [...c.nemeses], extra: ['--quiet-ms', COMBINED_QUIET_MS] });
  const out: MatrixCell[] = [];
  for (const workload of o.workloads)
    for (const c of cells) for (let i = 0; i < o.seeds; i++) out.push({ workload, nemeses: c.nemeses, seed: (o.seed + i) % 2 ** 32, extra: c.extra });
  return out;
}

const USAGE = `Usage: npm run jepsen -- --workload register|set|bank [--nemesis NAME[,NAME]] [--time 60] [--seed S] [--json]
       npm run jepsen:all [-- --time S] [--seed S] [--seeds N]

Runs a real three-node cluster (127.0.0.11-13 in a private network namespace;
needs root), a workload's clients through the proxies, and faults from a seeded
schedule; heals everything, checks the history, writes a run folder under
./jepsen-runs/ and prints its JSON last. Exit 0 when valid, 1 when not.

  --workload W        ${WORKLOAD_NAMES.join(' | ')}
  --nemesis LIST      comma-separated, or none: ${NEMESIS_NAMES.join(', ')}
  --time S            seconds of workload under faults (default ${DEFAULT_RUN.timeS})
  --seed N            the PRNG seed: same seed, same requests and fault plan (default: random, printed)
  --json              only the JSON on stdout (progress stays on stderr)
  --concurrency N     client workers (default per workload)
  --rate N            operations per second, all workers (default per workload)
  --op-timeout-ms N   an operation with no answer by then is abandoned: fail before COMMIT, info after (default ${DEFAULT_RUN.opTimeoutMs})
  --lease-ms N        the primary's lease (default ${DEFAULT_RUN.leaseMs})
  --recovery-timeout-ms N  bound on "fully healthy" after the final heal (default ${DEFAULT_RUN.recoveryTimeoutMs})
  --fault-ms MIN-MAX  how long each fault lasts (default ${DEFAULT_SCHEDULE.faultMinMs}-${DEFAULT_SCHEDULE.faultMaxMs})
  --quiet-ms MIN-MAX  the pause between faults (default ${DEFAULT_SCHEDULE.quietMinMs}-${DEFAULT_SCHEDULE.quietMaxMs})
  --out DIR           where run folders go (default ${DEFAULT_RUN.outDir})
  --unsafe LIST       run the daemons with safety steps turned off, to show the
                      run catches it (expect INVALID): ${Object.keys(UNSAFE_SWITCHES).join(', ')}
  --all               the matrix: every workload x (every nemesis alone, then the
                      combined cells: ${COMBINED_CELLS.map((c) => c.nemeses.join('+')).join(', ')},
                      with quiet gaps of ${COMBINED_QUIET_MS}); --workload and --nemesis
                      narrow it (a narrowed matrix has no combined cells)
  --seeds N           with --all: N runs per cell, seeds S, S+1, ... (default 1)`;

class UsageError extends Error {}

function int(name: string, v: string | undefined, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name}: expected an integer in [${min}, ${max}], got ${JSON.stringify(v)}`);
  return n;
}

function range(name: string, v: string | undefined): [number, number] | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+)-(\d+)$/.exec(v);
  if (!m || Number(m[1]) > Number(m[2]) || Number(m[1]) === 0) throw new UsageError(`--${name}: expected MIN-MAX in ms (MIN > 0), got ${JSON.stringify(v)}`);
  return [Number(m[1]), Number(m[2])];
}

export interface Cli {
  all: boolean;
  json: boolean;
  /** Runs per matrix cell (--all). */
  seeds: number;
  run: RunOptions;
}

export function parseCli(argv: readonly string[]): Cli | 'help' {
  const argSpec = {
    args: [...argv],
    options: {
      workload: { type: 'string' },
      nemesis: { type: 'string', default: 'none' },
      time: { type: 'string' },
      seed: { type: 'string' },
      json: { type: 'boolean', default: false },
      concurrency: { type: 'string' },
      rate: { type: 'string' },
      'op-timeout-ms': { type: 'string' },
      'lease-ms': { type: 'string' },
      'recovery-timeout-ms': { type: 'string' },
      'fault-ms': { type: 'string' },
      'quiet-ms': { type: 'string' },
      out: { type: 'string' },
      unsafe: { type: 'string' },
      all: { type: 'boolean', default: false },
      seeds: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: false,
    strict: true,
  } satisfies ParseArgsConfig;
  let v: ReturnType<typeof parseArgs<typeof argSpec>>['values'];
  try {
    v = parseArgs(argSpec).values;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (v.help) return 'help';
  const workload = v.workload;
  if (!v.all) {
    if (workload === undefined) throw new UsageError('--workload is required');
    if (!(WORKLOAD_NAMES as readonly string[]).includes(workload))
      throw new UsageError(`--workload: expected one of ${WORKLOAD_NAMES.join(', ')}, got ${JSON.stringify(workload)}`);
  }
  let nemeses: NemesisName[];
  try {
    nemeses = parseNemeses(v.nemesis!);
  } catch (e) {
    throw new UsageError(`--nemesis: ${(e as Error).message}`);
  }
  const fault = range('fault-ms', v['fault-ms']);
  const quiet = range('quiet-ms', v['quiet-ms']);
  let unsafe: UnsafeSwitch[];
  try {
    unsafe = [...parseUnsafeSwitches(v.unsafe)];
  } catch (e) {
    throw new UsageError(`--unsafe: ${(e as Error).message.replace(/^OGEL_UNSAFE: /, '')}`);
  }
  const concurrency = int('concurrency', v.concurrency, 1, 256);
  const rate = int('rate', v.rate, 1, 100_000);
  const seeds = int('seeds', v.seeds, 1, 100);
  if (seeds !== undefined && !v.all) throw new UsageError('--seeds runs each cell of the matrix several times: use it with --all');
  return {
    all: v.all!,
    json: v.json!,
    seeds: seeds ?? 1,
    run: {
      ...DEFAULT_RUN,
      workload: (workload ?? 'set') as WorkloadName,
      nemeses,
      timeS: int('time', v.time, 1, 24 * 3600) ?? DEFAULT_RUN.timeS,
      seed: int('seed', v.seed, 0, 2 ** 32 - 1) ?? Math.floor(Math.random() * 2 ** 31),
      ...(concurrency !== undefined ? { concurrency } : {}),
      ...(rate !== undefined ? { rate } : {}),
      opTimeoutMs: int('op-timeout-ms', v['op-timeout-ms'], 100, 600_000) ?? DEFAULT_RUN.opTimeoutMs,
      leaseMs: int('lease-ms', v['lease-ms'], 100, 600_000) ?? DEFAULT_RUN.leaseMs,
      recoveryTimeoutMs: int('recovery-timeout-ms', v['recovery-timeout-ms'], 1_000, 3_600_000) ?? DEFAULT_RUN.recoveryTimeoutMs,
      outDir: v.out ?? DEFAULT_RUN.outDir,
      unsafe,
      schedule: {
        faultMinMs: fault?.[0] ?? DEFAULT_SCHEDULE.faultMinMs,
        faultMaxMs: fault?.[1] ?? DEFAULT_SCHEDULE.faultMaxMs,
        quietMinMs: quiet?.[0] ?? DEFAULT_SCHEDULE.quietMinMs,
        quietMaxMs: quiet?.[1] ?? DEFAULT_SCHEDULE.quietMaxMs,
      },
    },
  };
}

/** A run's hard limit: setup, the run, recovery, final reads, cleanup, with room to spare. */
function hardLimitMs(o: RunOptions): number {
  return o.timeS * 1000 + o.recoveryTimeoutMs + 5 * 60_000;
}

/** The archive checker's verdict in a few words: "caught up in 812 ms (1 span to 0/5A3B2C8)", "2 spans (gap)", "behind". */
export function describeArchive(a: ArchiveSummary | null | undefined): string {
  if (a === null || a === undefined) return '-';
  const spans = `${a.spans} span${a.spans === 1 ? '' : 's'}`;
  if (a.valid) return `caught up in ${a.caught_up_ms} ms (${spans} to ${a.archived_to})`;
  const what = [a.spans > 1 ? 'GAP' : '', a.caught_up_ms === null ? `BEHIND: ${a.archived_to ?? 'nothing'} of ${a.flush_lsn}` : ''].filter(Boolean);
  return `${what.join(', ')} (${spans})`;
}

function printSummary(s: Summary, json: boolean): void {
  if (!json) {
    process.stdout.write(
      `${s.valid === true ? 'VALID' : s.valid === false ? 'INVALID' : 'UNKNOWN'}: ${s.workload} / ${s.nemesis.join(',') || 'none'} / seed ${s.seed}: ${s.ops} ops (${s.ok} ok, ${s.fail} fail, ${s.info} info), ${s.faults}/${s.faults_planned} faults injected/planned, ${s.anomalies.length} anomalies, recovery ${s.recovery_ms ?? '-'} ms, longest write unavailability ${s.write_unavailable_ms ?? '-'} ms, archive ${describeArchive(s.archive)}${s.unsafe ? ` (UNSAFE: ${s.unsafe.join(',')})` : ''}\n`,
    );
    process.stdout.write(`run folder: ${s.dir} (report.html)\n`);
  }
  process.stdout.write(`${JSON.stringify(s)}\n`);
}

/** argv without `--name VALUE` / `--name=VALUE` (for options the caller sets itself). */
function dropOption(argv: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === `--${name}`) i++;
    else if (!a.startsWith(`--${name}=`)) out.push(a);
  }
  return out;
}

interface MatrixRow {
  workload: string;
  nemesis: string;
  seed?: number;
  valid: Summary['valid'] | undefined;
  ops: number | undefined;
  anomalies: number | undefined;
  /** Faults injected and planned. */
  faults: number | undefined;
  faults_planned: number | undefined;
  recovery_ms: number | null | undefined;
  write_unavailable_ms: number | null | undefined;
  /** The archive checker's part (undefined: the run gave none). */
  archive?: ArchiveSummary | null | undefined;
  dir: string | undefined;
  error?: string;
}

/** The matrix as a Markdown table: one row per run. */
export function matrixTable(rows: readonly MatrixRow[]): string {
  const cell = (v: unknown) => (v === undefined || v === null ? '-' : String(v));
  const lines = [
    '| workload | nemesis | seed | valid | ops | anomalies | faults (injected/planned) | longest write unavailability (ms) | recovery (ms) | WAL archive |',
    '|---|---|---:|---|---:|---:|---:|---:|---:|---|',
  ];
  for (const r of rows) {
    const faults = r.faults === undefined || r.faults_planned === undefined ? '-' : `${r.faults}/${r.faults_planned}`;
    lines.push(
      `| ${r.workload} | ${r.nemesis} | ${cell(r.seed)} | ${cell(r.valid)}${r.error ? ` (${r.error})` : ''} | ${cell(r.ops)} | ${cell(r.anomalies)} | ${faults} | ${cell(r.write_unavailable_ms)} | ${cell(r.recovery_ms)} | ${describeArchive(r.archive)} |`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** The matrix: each run is this script again (its own namespace and cluster); the last line of each is its JSON. */
async function runMatrix(c: Cli, argv: readonly string[]): Promise<number> {
  const pass = ['workload', 'nemesis', 'seed', 'seeds'].reduce(
    dropOption,
    argv.filter((a) => a !== '--all' && a !== '--json'),
  );
  // --workload / --nemesis narrow the matrix.
  const narrowed = argv.some((a) => a === '--nemesis' || a.startsWith('--nemesis='));
  const cells = matrixCells({
    workloads: argv.some((a) => a === '--workload' || a.startsWith('--workload=')) ? [c.run.workload] : WORKLOAD_NAMES,
    nemeses: c.run.nemeses.length > 0 ? c.run.nemeses : NEMESIS_NAMES,
    combined: !narrowed,
    seed: c.run.seed,
    seeds: c.seeds,
  });
  const rows: MatrixRow[] = [];
  let allValid = true;
  for (const cell of cells) {
    const { workload } = cell;
    const n = cell.nemeses.join(',');
    {
      const args = [
        ...(cell.extra.length > 0 ? dropOption(pass, 'quiet-ms') : pass),
        ...cell.extra,
        '--workload',
        workload,
        '--nemesis',
        n,
        '--json',
        '--seed',
        String(cell.seed),
      ];
      const out = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
        const p = spawn(process.execPath, [SCRIPT, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
        let stdout = '';
        p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
        p.on('close', (code) => resolve({ code, stdout }));
      });
      const line = out.stdout.trim().split('\n').at(-1) ?? '';
      let s: Partial<Summary> = {};
      try {
        s = JSON.parse(line) as Summary;
      } catch {
        s = { valid: 'unknown', error: `no JSON from the run (exit ${out.code})` };
      }
      allValid &&= s.valid === true;
      rows.push({
        workload,
        nemesis: cell.nemeses.join('+'),
        seed: cell.seed,
        valid: s.valid,
        ops: s.ops,
        anomalies: s.anomalies?.length,
        faults: s.faults,
        faults_planned: s.faults_planned,
        recovery_ms: s.recovery_ms,
        write_unavailable_ms: s.write_unavailable_ms,
        archive: s.archive,
        dir: s.dir,
        ...(s.error ? { error: s.error } : {}),
      });
      process.stderr.write(`jepsen:all ${workload} / ${n} / seed ${cell.seed}: ${String(s.valid)}\n`);
    }
  }
  if (!c.json) process.stdout.write(matrixTable(rows));
  process.stdout.write(`${JSON.stringify({ valid: allValid, seed: c.run.seed, seeds: c.seeds, runs: rows })}\n`);
  return allValid ? 0 : 1;
}

async function main(argv: readonly string[]): Promise<number> {
  let c: Cli | 'help';
  try {
    c = parseCli(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`jepsen: ${e.message}\n\n${USAGE}\n`);
    return 2;
  }
  if (c === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (!isRoot()) {
    process.stderr.write('jepsen: needs root (it creates a private network namespace with unshare --net, iptables rules and cgroups in it); run it as root\n');
    return 2;
  }
  if (c.all) return runMatrix(c, argv);
  if (!inPrivateNetns()) {
    const why = missingTools();
    if (why !== undefined) {
      process.stderr.write(`jepsen: ${why}\n`);
      return 2;
    }
    // Pin the seed, so the namespace's run uses the one printed here.
    const args = [...dropOption(argv, 'seed'), '--seed', String(c.run.seed)];
    return reexecInNetns(SCRIPT, args, hardLimitMs(c.run));
  }
  const s = await run(c.run);
  printSummary(s, c.json);
  return s.valid === true ? 0 : 1;
}

if (process.argv[1] === SCRIPT) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: Error) => {
      process.stderr.write(`jepsen: ${e.stack ?? e.message}\n`);
      process.exit(1);
    },
  );
}
