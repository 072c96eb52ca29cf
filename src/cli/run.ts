// The `ogel` command line: dispatches to one module per command group. Every command
// parses its own flags strictly; every error ends as a one-line message (plus a
// hint line when there is one) and a non-zero exit: 2 for usage errors, 1 for
// runtime errors. Stack traces only with OGEL_DEBUG=1.

import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { CliError, UsageError, parseCommandArgs, renderHelp, type CommandContext, type CommandSpec, type Io } from './args.js';
import { describeClientError, isClientError } from './client.js';
import { backupCreate, backupDelete, backupList, backupShow, backupVerify } from './commands/backups.js';
import { configShow } from './commands/config.js';
import { history } from './commands/history.js';
import { pools } from './commands/pools.js';
import { pause, resume } from './commands/maintenance.js';
import { restorePointCreate, restorePointList } from './commands/restore-points.js';
import { membersAdd, membersList, membersRemove } from './commands/members.js';
import { failover, reinit, switchover } from './commands/roles.js';
import { status } from './commands/status.js';
import { tenantsCreate, tenantsDelete, tenantsGet, tenantsList, tenantsSetLimits } from './commands/tenants.js';
import { transferLeadership } from './commands/transfer.js';

const COMMANDS: CommandSpec[] = [
  status,
  switchover,
  failover,
  reinit,
  transferLeadership,
  membersList,
  membersAdd,
  membersRemove,
  pause,
  resume,
  history,
  pools,
  tenantsCreate,
  tenantsList,
  tenantsGet,
  tenantsDelete,
  tenantsSetLimits,
  backupCreate,
  backupList,
  backupShow,
  backupVerify,
  backupDelete,
  restorePointCreate,
  restorePointList,
  configShow,
];

/**
 * A command implemented outside the CLI that takes raw argv (`ogel up`, `ogel daemon`).
 * The binary's entry point (src/main.ts) supplies them, so the CLI, a client of the
 * admin API, never imports the daemon or the local cluster runner.
 */
export interface ExternalCommand {
  summary: string;
  load: () => Promise<{ run(argv: string[]): Promise<number> }>;
}

export type ExternalCommands = Readonly<Record<string, ExternalCommand>>;

const GROUP_SUMMARIES: Record<string, string> = {
  members: 'list, add or remove cluster members',
  tenants: 'create, list, get, delete tenants, or set their limits',
  config: "show the cluster's effective configuration",
  backup: 'take, list or show base backups (restore: ogel restore)',
  'restore-point': 'create or list named restore points (restore to one: ogel restore --target-name)',
};

function topCommands(external: ExternalCommands): string[] {
  const names: string[] = [];
  for (const c of COMMANDS) if (!names.includes(c.path[0] ?? '')) names.push(c.path[0] ?? '');
  return [...Object.keys(external), ...names];
}

function subcommands(group: string): CommandSpec[] {
  return COMMANDS.filter((c) => c.path.length === 2 && c.path[0] === group);
}

function findCommand(path: string[]): CommandSpec | undefined {
  return COMMANDS.find((c) => c.path.length === path.length && c.path.every((p, i) => p === path[i]));
}

function topHelp(external: ExternalCommands): string {
  const rows: [string, string][] = [];
  for (const [name, e] of Object.entries(external)) rows.push([name, e.summary]);
  for (const c of COMMANDS) rows.push([c.path.join(' '), c.summary]);
  const width = Math.max(...rows.map(([n]) => n.length));
  return (
    [
      'ogel: the OgelBase control plane CLI',
      '',
      'Usage: ogel <command> [flags]',
      '',
      'Commands:',
      ...rows.map(([n, s]) => `  ${n.padEnd(width)}  ${s}`),
      '',
      'Flags of every API command:',
      "  --json                  print the API's JSON (pretty) and nothing else on stdout",
      '  --api URL[,URL...]      admin API endpoints, tried in order',
      '  --token TOKEN           bearer token',
      '  --timeout-ms N          timeout per request (default 10000)',
      '  -h, --help              help for the command',
      '',
      'Endpoints and token come from the flags, then OGEL_API (comma-separated) and',
      'OGEL_TOKEN, then the local cluster state file ./.ogel/cluster.json (or',
      '$OGEL_STATE_FILE), which `ogel up` writes.',
      '',
      'Other:',
      '  ogel help <command>     help for a command',
      '  ogel --version          the version',
      '',
      'Examples:',
      '  ogel up',
      '  ogel status',
      '  OGEL_API=http://10.0.0.1:8001,http://10.0.0.2:8001 ogel transfer-leadership --to n2',
    ].join('\n') + '\n'
  );
}

function groupHelp(group: string): string {
  const subs = subcommands(group);
  const width = Math.max(...subs.map((c) => c.path.join(' ').length));
  return (
    [
      `ogel ${group}: ${GROUP_SUMMARIES[group] ?? ''}`,
      '',
      `Usage: ogel ${group} <${subs.map((c) => c.path[1]).join('|')}> [flags]`,
      '',
      'Commands:',
      ...subs.map((c) => `  ${c.path.join(' ').padEnd(width)}  ${c.summary}`),
      '',
      `Run 'ogel ${group} <command> --help' for its flags.`,
    ].join('\n') + '\n'
  );
}

function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = d[i]!;
      const prev = d[i - 1]!;
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length]![b.length]!;
}

function suggest(word: string, candidates: string[]): string {
  const best = candidates.map((c) => ({ c, d: c.startsWith(word) && word.length >= 2 ? 0 : distance(word, c) })).sort((x, y) => x.d - y.d)[0];
  return best !== undefined && best.d <= 2 ? `; did you mean '${best.c}'?` : '';
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** Resolves argv to a command spec and the argv left for it; throws UsageError. */
function resolve(argv: string[], external: ExternalCommands): { spec: CommandSpec; rest: string[] } | { group: string } | { external: string; rest: string[] } {
  const [first, second] = argv;
  if (first === undefined) throw new UsageError('missing command');
  if (external[first] !== undefined) return { external: first, rest: argv.slice(1) };
  const top = findCommand([first]);
  if (top !== undefined) return { spec: top, rest: argv.slice(1) };
  const subs = subcommands(first);
  if (subs.length > 0) {
    if (second === undefined) throw new UsageError(`missing command: ${subs.map((c) => c.path[1]).join(', ')}`, first);
    if (second === '--help' || second === '-h') return { group: first };
    const spec = findCommand([first, second]);
    if (spec === undefined) {
      const names = subs.map((c) => c.path[1] ?? '');
      throw new UsageError(`unknown command 'ogel ${first} ${second}'${suggest(second, names)} (commands: ${names.join(', ')})`, first);
    }
    return { spec, rest: argv.slice(2) };
  }
  if (first.startsWith('-')) {
    throw new UsageError(`unknown flag '${first}' before the command; flags go after it, as in 'ogel status --json'`);
  }
  throw new UsageError(`unknown command '${first}'${suggest(first, topCommands(external))}`);
}

export async function runCli(argv: string[], ctx: CommandContext, external: ExternalCommands = {}): Promise<number> {
  const first = argv[0];
  if (first === undefined) {
    ctx.io.stderr(topHelp(external));
    return 2;
  }
  if (first === '--help' || first === '-h') {
    ctx.io.stdout(topHelp(external));
    return 0;
  }
  if (first === '--version') {
    ctx.io.stdout(version() + '\n');
    return 0;
  }
  if (first === 'help') {
    if (argv.length === 1) {
      ctx.io.stdout(topHelp(external));
      return 0;
    }
    const r = resolve(argv.slice(1), external);
    if ('external' in r) return (await external[r.external]!.load()).run(['--help']);
    ctx.io.stdout('group' in r ? groupHelp(r.group) : renderHelp(r.spec));
    return 0;
  }
  const r = resolve(argv, external);
  if ('external' in r) return (await external[r.external]!.load()).run(r.rest);
  if ('group' in r) {
    ctx.io.stdout(groupHelp(r.group));
    return 0;
  }
  const args = parseCommandArgs(r.spec, r.rest);
  if (args === null) {
    ctx.io.stdout(renderHelp(r.spec));
    return 0;
  }
  return r.spec.run(ctx, args);
}

/** Prints an error as 'ogel: message' (+ 'hint: ...') and returns the exit code. */
export function reportError(err: unknown, io: Io, debug: boolean): number {
  if (err instanceof UsageError) {
    io.stderr(`ogel: ${err.command ? `${err.command}: ` : ''}${err.message}\n`);
    io.stderr(`hint: run 'ogel ${err.command ? `${err.command} ` : ''}--help' for usage\n`);
    return 2;
  }
  if (err instanceof CliError) {
    io.stderr(`ogel: ${err.message}\n`);
    if (err.hint) io.stderr(`hint: ${err.hint}\n`);
    return err.exitCode;
  }
  if (isClientError(err)) {
    const d = describeClientError(err);
    io.stderr(`ogel: ${d?.message ?? (err as Error).message}\n`);
    if (d?.hint) io.stderr(`hint: ${d.hint}\n`);
    if (debug) io.stderr(`${(err as Error).stack ?? ''}\n`);
    return 1;
  }
  // A bug in ogel itself: say so in one line; the stack on request.
  const e = err instanceof Error ? err : new Error(String(err));
  io.stderr(`ogel: internal error: ${e.message}\n`);
  io.stderr(debug ? `${e.stack ?? ''}\n` : 'hint: set OGEL_DEBUG=1 for the stack trace, and please report it\n');
  return 1;
}

export function processIo(): Io {
  return {
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
    stdinIsTTY: process.stdin.isTTY === true,
    prompt: (question) =>
      new Promise<string | null>((resolveAnswer) => {
        const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
        let answered = false;
        rl.on('SIGINT', () => rl.close());
        rl.once('close', () => {
          if (!answered) process.stderr.write('\n');
          resolveAnswer(answered ? '' : null);
        });
        rl.question(question, (answer) => {
          answered = true;
          resolveAnswer(answer);
          rl.close();
        });
      }),
  };
}
