// Command specs, strict argument parsing (node:util parseArgs) and help text.
// Every command declares its flags once; parsing, validation messages and
// `--help` all come from that one declaration so they cannot drift apart.

import { parseArgs } from 'node:util';

/** A problem with how ogel was invoked. Exit code 2. */
export class UsageError extends Error {
  /** The command path ('tenants create'), for the "run 'ogel X --help'" pointer. */
  readonly command: string | undefined;
  constructor(message: string, command?: string) {
    super(message);
    this.name = 'UsageError';
    this.command = command;
  }
}

/** A runtime failure with a message meant for the user. Exit code 1. */
export class CliError extends Error {
  readonly hint: string | undefined;
  readonly exitCode: number;
  constructor(message: string, hint?: string, exitCode = 1) {
    super(message);
    this.name = 'CliError';
    this.hint = hint;
    this.exitCode = exitCode;
  }
}

export interface FlagSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** Placeholder for the value in help text, e.g. 'NODE'. */
  value?: string;
  help: string;
}

export interface Io {
  stdout(text: string): void;
  stderr(text: string): void;
  stdinIsTTY: boolean;
  /** Asks on the terminal; null when stdin ended without an answer. */
  prompt(question: string): Promise<string | null>;
}

export interface CommandContext {
  io: Io;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export interface CommandSpec {
  /** e.g. ['tenants', 'create'] */
  path: string[];
  summary: string;
  /** Usage line after 'ogel ', e.g. 'tenants create NAME [--password P]'. */
  usage: string;
  /** Command-specific flags; the API flags are added when `api` is true. */
  flags: Record<string, FlagSpec>;
  positionals: { names: string[]; min: number; max: number };
  /** Whether the command talks to the admin API (adds --api, --token, --timeout-ms, --json). */
  api: boolean;
  /** Longer explanation shown by --help, optional. */
  details?: string;
  examples: string[];
  run(ctx: CommandContext, args: ParsedArgs): Promise<number>;
}

export const DEFAULT_TIMEOUT_MS = 10_000;
const TIMEOUT_MS_MAX = 3_600_000;

export const API_FLAGS: Record<string, FlagSpec> = {
  json: { type: 'boolean', help: "print the API's JSON (pretty) and nothing else on stdout" },
  api: {
    type: 'string',
    multiple: true,
    value: 'URL[,URL...]',
    help: 'admin API endpoints, tried in order (default: $OGEL_API, then ./.ogel/cluster.json)',
  },
  token: { type: 'string', value: 'TOKEN', help: 'bearer token (default: $OGEL_TOKEN, then the state file)' },
  'timeout-ms': {
    type: 'string',
    value: 'N',
    help: `timeout per request in milliseconds (default ${DEFAULT_TIMEOUT_MS})`,
  },
};

const HELP_FLAG: FlagSpec = { type: 'boolean', short: 'h', help: 'show this help' };

/** The command's own flags, then the API flags it does not redefine, then --help. */
export function allFlags(spec: CommandSpec): Record<string, FlagSpec> {
  const out: Record<string, FlagSpec> = { ...spec.flags };
  if (spec.api) for (const [name, f] of Object.entries(API_FLAGS)) if (!(name in out)) out[name] = f;
  out['help'] = HELP_FLAG;
  return out;
}

export class ParsedArgs {
  readonly command: string;
  readonly values: Readonly<Record<string, string | boolean | string[] | undefined>>;
  readonly positionals: readonly string[];

  constructor(command: string, values: Record<string, string | boolean | string[] | undefined>, positionals: string[]) {
    this.command = command;
    this.values = values;
    this.positionals = positionals;
  }

  bool(name: string): boolean {
    return this.values[name] === true;
  }

  string(name: string): string | undefined {
    const v = this.values[name];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw new Error(`flag --${name} is not a single string flag`);
    return v;
  }

  strings(name: string): string[] | undefined {
    const v = this.values[name];
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) throw new Error(`flag --${name} is not a multiple flag`);
    return v;
  }

  /** A whole number within [min, max], or undefined when the flag is absent. */
  int(name: string, min: number, max: number): number | undefined {
    const raw = this.string(name);
    if (raw === undefined) return undefined;
    return parseIntStrict(raw, `--${name}`, min, max, this.command);
  }

  /** The non-empty string value of a flag that must not be blank when given. */
  nonEmpty(name: string): string | undefined {
    const raw = this.string(name);
    if (raw === undefined) return undefined;
    if (raw.trim() === '') throw new UsageError(`--${name} needs a non-empty value`, this.command);
    return raw;
  }

  timeoutMs(): number {
    return this.int('timeout-ms', 1, TIMEOUT_MS_MAX) ?? DEFAULT_TIMEOUT_MS;
  }
}

export function parseIntStrict(raw: string, what: string, min: number, max: number, command?: string): number {
  const n = /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`${what}: expected a whole number from ${min} to ${max}, got '${raw}'`, command);
  }
  return n;
}

/**
 * Parses argv for one command, strictly. Returns null when --help was given
 * (the caller prints help). Throws UsageError with a one-line message.
 */
export function parseCommandArgs(spec: CommandSpec, argv: string[]): ParsedArgs | null {
  const command = spec.path.join(' ');
  const flags = allFlags(spec);
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const [name, f] of Object.entries(flags)) {
    options[name] = { type: f.type, ...(f.short ? { short: f.short } : {}), ...(f.multiple ? { multiple: true } : {}) };
  }
  // --help wins over everything else, even over other mistakes on the line.
  if (argv.includes('--help') || argv.includes('-h')) {
    const end = argv.indexOf('--');
    const helpAt = Math.min(...['--help', '-h'].map((h) => argv.indexOf(h)).filter((i) => i >= 0));
    if (end < 0 || helpAt < end) return null;
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: spec.positionals.max > 0 });
  } catch (err) {
    throw new UsageError(describeParseError(err, spec), command);
  }
  const { values, positionals } = parsed;
  if (positionals.length < spec.positionals.min) {
    const missing = spec.positionals.names.slice(positionals.length, spec.positionals.min);
    throw new UsageError(`missing ${missing.join(' ')}`, command);
  }
  if (positionals.length > spec.positionals.max) {
    const extra = positionals.slice(spec.positionals.max);
    throw new UsageError(`unexpected argument '${extra[0]}'`, command);
  }
  const args = new ParsedArgs(command, values as Record<string, string | boolean | string[] | undefined>, positionals);
  if (spec.api) args.timeoutMs(); // validate before any discovery or I/O
  return args;
}

function describeParseError(err: unknown, spec: CommandSpec): string {
  const e = err as { code?: string; message?: string };
  const msg = String(e.message ?? err);
  const quoted = /'([^']*)'/.exec(msg)?.[1] ?? '';
  switch (e.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown flag '${quoted}'`;
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return spec.positionals.max === 0
        ? `unexpected argument '${quoted}': 'ogel ${spec.path.join(' ')}' takes no arguments`
        : `unexpected argument '${quoted}'`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      const flag = quoted.split(' ')[0] ?? quoted;
      if (msg.includes('does not take an argument')) return `${flag} does not take a value`;
      const f = allFlags(spec)[flag.replace(/^-+/, '')];
      const placeholder = f?.value ?? 'VALUE';
      return `${flag} needs a value (${flag} ${placeholder}); to pass a value that starts with '-', write ${flag}=VALUE`;
    }
    default:
      return msg.split('\n')[0] ?? msg;
  }
}

export function renderHelp(spec: CommandSpec): string {
  const lines: string[] = [];
  lines.push(`ogel ${spec.path.join(' ')}: ${spec.summary}`, '', `Usage: ogel ${spec.usage}`);
  if (spec.details) lines.push('', spec.details);
  const flags = allFlags(spec);
  const rows = Object.entries(flags).map(([name, f]) => {
    const left = `${f.short ? `-${f.short}, ` : ''}--${name}${f.type === 'string' ? ` ${f.value ?? 'VALUE'}` : ''}`;
    return [left, f.help] as const;
  });
  const width = Math.max(...rows.map(([l]) => l.length));
  lines.push('', 'Flags:');
  for (const [l, h] of rows) lines.push(`  ${l.padEnd(width)}  ${h}`);
  if (spec.examples.length > 0) {
    lines.push('', 'Examples:');
    for (const ex of spec.examples) lines.push(`  ${ex}`);
  }
  return lines.join('\n') + '\n';
}
