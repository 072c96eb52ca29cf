// Shape checks for one event. Used on untrusted input (a JSONL file) and on
// histories handed to the pairing function, so a typo in a hand-made history or
// a harness bug fails loudly with the event's index rather than as a confusing
// verdict about the database.

import { HistoryError } from './errors.js';
import { OP_TYPES, type Json, type Key, type Op, type OpType } from './types.js';

const KNOWN_FIELDS = new Set(['process', 'type', 'f', 'key', 'value', 'timeMs', 'node', 'generation', 'generationNode', 'error']);

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** True for values JSON can carry unchanged (finite numbers only). Depth-bounded so a hostile file cannot blow the stack. */
export function isJson(x: unknown, depth = 0): x is Json {
  if (depth > 64) return false;
  if (x === null || typeof x === 'string' || typeof x === 'boolean') return true;
  if (typeof x === 'number') return Number.isFinite(x);
  if (Array.isArray(x)) return x.every((v) => isJson(v, depth + 1));
  if (isRecord(x)) return Object.values(x).every((v) => isJson(v, depth + 1));
  return false;
}

export function isKey(x: unknown): x is Key {
  return typeof x === 'string' || (typeof x === 'number' && Number.isFinite(x));
}

/** Validates one event and returns it typed; throws HistoryError naming `index`. */
export function parseOp(raw: unknown, index: number): Op {
  if (!isRecord(raw)) throw new HistoryError('an event must be a JSON object', index);
  for (const k of Object.keys(raw)) {
    if (!KNOWN_FIELDS.has(k)) throw new HistoryError(`unknown field ${JSON.stringify(k)}`, index);
  }
  const { process, type, f, key, value, timeMs, node, generation, generationNode, error } = raw;
  if (typeof process !== 'number' || !Number.isSafeInteger(process))
    throw new HistoryError(`process must be an integer, got ${JSON.stringify(process)}`, index);
  if (typeof type !== 'string' || !(OP_TYPES as readonly string[]).includes(type)) {
    throw new HistoryError(`type must be one of ${OP_TYPES.join(', ')}, got ${JSON.stringify(type)}`, index);
  }
  if (typeof f !== 'string' || f.length === 0) throw new HistoryError(`f must be a non-empty string, got ${JSON.stringify(f)}`, index);
  if (typeof timeMs !== 'number' || !Number.isFinite(timeMs)) throw new HistoryError(`timeMs must be a finite number, got ${JSON.stringify(timeMs)}`, index);
  const op: Op = { process, type: type as OpType, f, timeMs };
  if (key !== undefined) {
    if (!isKey(key)) throw new HistoryError(`key must be a string or a finite number, got ${JSON.stringify(key)}`, index);
    op.key = key;
  }
  if (value !== undefined) {
    if (!isJson(value)) throw new HistoryError('value must be plain JSON (finite numbers, nesting depth <= 64)', index);
    op.value = value;
  }
  if (node !== undefined) {
    if (typeof node !== 'string') throw new HistoryError(`node must be a string, got ${JSON.stringify(node)}`, index);
    op.node = node;
  }
  if (generation !== undefined) {
    if (typeof generation !== 'number' || !Number.isSafeInteger(generation)) {
      throw new HistoryError(`generation must be an integer, got ${JSON.stringify(generation)}`, index);
    }
    op.generation = generation;
  }
  if (generationNode !== undefined) {
    if (typeof generationNode !== 'string') throw new HistoryError(`generationNode must be a string, got ${JSON.stringify(generationNode)}`, index);
    op.generationNode = generationNode;
  }
  if (error !== undefined) {
    if (typeof error !== 'string') throw new HistoryError(`error must be a string, got ${JSON.stringify(error)}`, index);
    op.error = error;
  }
  return op;
}
