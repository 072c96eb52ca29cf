// ConfigError: every problem in a config, each with its field path and a fix.

export interface ConfigProblem {
  /** Field path like `nodes[1].api`; '' for the file as a whole. */
  path: string;
  message: string;
  /** What to do about it, when there is something specific to say. */
  hint?: string;
  /** 1-based position in the YAML source, when the problem has one. */
  line?: number;
  column?: number;
}

/** `file:line: path: message; fix: hint` — one line, no stack trace needed. */
export function formatProblem(source: string, p: ConfigProblem): string {
  const where = p.line === undefined ? source : p.column === undefined ? `${source}:${p.line}` : `${source}:${p.line}:${p.column}`;
  const path = p.path === '' ? '' : `${p.path}: `;
  const hint = p.hint === undefined ? '' : `; fix: ${p.hint}`;
  return `${where}: ${path}${p.message}${hint}`;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  /** The file (or other origin) the config came from, as shown in messages. */
  readonly source: string;
  readonly problems: ConfigProblem[];

  constructor(source: string, problems: ConfigProblem[]) {
    if (problems.length === 0) throw new Error('ConfigError needs at least one problem');
    super(problems.map((p) => formatProblem(source, p)).join('\n'));
    this.source = source;
    this.problems = problems;
  }
}

/** `nodes[1].api`, `postgres.parameters["odd key"]`. */
export function pathToString(path: readonly (string | number)[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}
