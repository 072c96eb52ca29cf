// JSON logs, one line per event, with a level filter. The raft library's Logger
// type (a function taking {level, msg, ...fields}) is the common currency.

import type { Logger, LogLine } from '../raft/index.js';

export type { Logger, LogLine };
export type LogLevel = LogLine['level'];

const LEVEL_RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** A logger writing JSON lines to `out` for events at `level` or above, tagged with `fields`. */
export function jsonLogger(level: LogLevel, fields: Record<string, unknown> = {}, out: NodeJS.WritableStream = process.stdout): Logger {
  const min = LEVEL_RANK[level];
  return (line) => {
    if (LEVEL_RANK[line.level] < min) return;
    out.write(`${JSON.stringify({ time: new Date().toISOString(), ...fields, ...line })}\n`);
  };
}

/** A child logger that adds fields (e.g. a component name) to every line. */
export function withFields(log: Logger, fields: Record<string, unknown>): Logger {
  return (line) => log({ ...line, ...fields });
}
