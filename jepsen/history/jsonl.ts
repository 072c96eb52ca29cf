// JSONL files: one event per line, in history order. Written in chunks so a large
// history never needs one giant string; read line by line with a bound on the
// number of events, and every line validated (a file is untrusted input).

import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { HistoryError } from './errors.js';
import { DEFAULT_MAX_EVENTS } from './pair.js';
import type { History, Op } from './types.js';
import { parseOp } from './validate.js';

/** Bytes buffered before a write: big enough to amortize syscalls, small enough not to matter. */
const CHUNK_CHARS = 64 * 1024;

/** Writes (truncating) `path`; resolves to the number of events written. */
export async function writeJsonl(path: string, history: History): Promise<number> {
  const fh = await open(path, 'w');
  try {
    let buf = '';
    for (const op of history) {
      buf += JSON.stringify(op) + '\n';
      if (buf.length >= CHUNK_CHARS) {
        await fh.write(buf);
        buf = '';
      }
    }
    if (buf.length > 0) await fh.write(buf);
  } finally {
    await fh.close();
  }
  return history.length;
}

export interface ReadJsonlOptions {
  /** Refuse files with more events (default 2,000,000). */
  maxEvents?: number;
}

/** Reads and validates a JSONL history. Blank lines are skipped. Errors name the line (index = line - 1). */
export async function readJsonl(path: string, opts: ReadJsonlOptions = {}): Promise<Op[]> {
  const maxEvents = opts.maxEvents ?? DEFAULT_MAX_EVENTS;
  const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  const out: Op[] = [];
  let lineNo = 0;
  try {
    for await (const line of lines) {
      lineNo++;
      if (line.trim() === '') continue;
      if (out.length >= maxEvents) throw new HistoryError(`${path}: more than ${maxEvents} events`, lineNo - 1);
      let raw: unknown;
      try {
        raw = JSON.parse(line);
      } catch (e: unknown) {
        throw new HistoryError(`${path} line ${lineNo}: not JSON (${e instanceof Error ? e.message : String(e)})`, lineNo - 1);
      }
      try {
        out.push(parseOp(raw, lineNo - 1));
      } catch (e: unknown) {
        if (e instanceof HistoryError) throw new HistoryError(`${path} line ${lineNo}: ${e.message}`, lineNo - 1);
        throw e;
      }
    }
  } finally {
    lines.close();
  }
  return out;
}
