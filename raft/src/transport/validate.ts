// Strict shape check for Raft messages decoded off the wire.
//
// Everything a peer sends is checked here before the core sees it: the core trusts
// its inputs (it asserts and crashes on nonsense), so a malformed message from a
// buggy or newer peer must be turned into a counted drop at the edge instead.
//
// Hand-written rather than a schema library: it runs on every received message, so
// it allocates only the result (a fresh Message holding exactly the known fields,
// with Buffers normalised to plain Uint8Array views) and a reason string on failure.

import {
  EntryType,
  WIRE_MESSAGE_TYPES,
  type ConfState,
  type Entry,
  type Message,
  type MessageType,
  type NodeId,
  type SnapshotChunk,
  type SnapshotMeta,
} from '../core/types.js';

/** Longest node id accepted anywhere on the wire, in UTF-16 code units. */
export const NODE_ID_LENGTH_MAX = 64;

type Obj = Record<string, unknown>;

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  switch (typeof v) {
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(v);
    case 'string':
      return v.length > 24 ? `string(${v.length})` : JSON.stringify(v);
    case 'object': {
      if (Array.isArray(v)) return `array(${v.length})`;
      const name = (Object.getPrototypeOf(v) as { constructor?: { name?: unknown } } | null)?.constructor?.name;
      return typeof name === 'string' && name !== 'Object' ? name : 'object';
    }
    default:
      return typeof v;
  }
}

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function isNat(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

export function isValidNodeId(v: unknown): v is NodeId {
  return typeof v === 'string' && v.length > 0 && v.length <= NODE_ID_LENGTH_MAX;
}

function natReason(field: string, v: unknown): string {
  return `field ${field}: expected non-negative safe integer, got ${describe(v)}`;
}

function nodeIdReason(field: string, v: unknown): string {
  return `field ${field}: expected node id (1..${NODE_ID_LENGTH_MAX} chars), got ${describe(v)}`;
}

function bytesReason(field: string, v: unknown): string {
  return `field ${field}: expected Uint8Array, got ${describe(v)}`;
}

/** A plain Uint8Array view over the same memory (a Buffer is a Uint8Array subclass). */
function plainBytes(v: Uint8Array): Uint8Array {
  return Object.getPrototypeOf(v) === Uint8Array.prototype ? v : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

function validateNodeIds(v: unknown, field: string): NodeId[] | string {
  if (!Array.isArray(v)) return `field ${field}: expected array, got ${describe(v)}`;
  const out: NodeId[] = new Array<NodeId>(v.length);
  for (let i = 0; i < v.length; i++) {
    const id: unknown = v[i];
    if (!isValidNodeId(id)) return nodeIdReason(`${field}[${i}]`, id);
    out[i] = id;
  }
  return out;
}

function validateMeta(v: unknown): SnapshotMeta | string {
  if (!isObject(v)) return `field snapshot.meta: expected object, got ${describe(v)}`;
  const index = v['index'];
  if (!isNat(index)) return natReason('snapshot.meta.index', index);
  const term = v['term'];
  if (!isNat(term)) return natReason('snapshot.meta.term', term);
  const conf = v['conf'];
  if (!isObject(conf)) return `field snapshot.meta.conf: expected object, got ${describe(conf)}`;
  const voters = validateNodeIds(conf['voters'], 'snapshot.meta.conf.voters');
  if (typeof voters === 'string') return voters;
  const learners = validateNodeIds(conf['learners'], 'snapshot.meta.conf.learners');
  if (typeof learners === 'string') return learners;
  const c: ConfState = { voters, learners };
  return { index, term, conf: c };
}

function validateChunk(v: unknown): SnapshotChunk | string {
  if (!isObject(v)) return `field snapshot: expected object, got ${describe(v)}`;
  const meta = validateMeta(v['meta']);
  if (typeof meta === 'string') return meta;
  const totalBytes = v['totalBytes'];
  if (!isNat(totalBytes)) return natReason('snapshot.totalBytes', totalBytes);
  const offset = v['offset'];
  if (!isNat(offset)) return natReason('snapshot.offset', offset);
  const data = v['data'];
  if (!(data instanceof Uint8Array)) return bytesReason('snapshot.data', data);
  return { meta, totalBytes, offset, data: plainBytes(data) };
}

function validateEntries(v: unknown): Entry[] | string {
  if (!Array.isArray(v)) return `field entries: expected array, got ${describe(v)}`;
  const out: Entry[] = new Array<Entry>(v.length);
  for (let i = 0; i < v.length; i++) {
    const e: unknown = v[i];
    if (!isObject(e)) return `field entries[${i}]: expected object, got ${describe(e)}`;
    const term = e['term'];
    if (!isNat(term)) return natReason(`entries[${i}].term`, term);
    const index = e['index'];
    if (!isNat(index)) return natReason(`entries[${i}].index`, index);
    const type = e['type'];
    if (type !== EntryType.Normal && type !== EntryType.ConfChange) {
      return `field entries[${i}].type: expected EntryType, got ${describe(type)}`;
    }
    const data = e['data'];
    if (!(data instanceof Uint8Array)) return bytesReason(`entries[${i}].data`, data);
    out[i] = { term, index, type, data: plainBytes(data) };
  }
  return out;
}

function validateUnsafe(x: unknown): Message | string {
  if (!isObject(x)) return `message: expected object, got ${describe(x)}`;
  const type = x['type'];
  if (typeof type !== 'number' || !WIRE_MESSAGE_TYPES.has(type as MessageType)) {
    return `field type: expected a wire MessageType, got ${describe(type)}`;
  }
  const from = x['from'];
  if (!isValidNodeId(from)) return nodeIdReason('from', from);
  const to = x['to'];
  if (!isValidNodeId(to)) return nodeIdReason('to', to);
  const term = x['term'];
  if (!isNat(term)) return natReason('term', term);
  const logTerm = x['logTerm'];
  if (!isNat(logTerm)) return natReason('logTerm', logTerm);
  const index = x['index'];
  if (!isNat(index)) return natReason('index', index);
  const entries = validateEntries(x['entries']);
  if (typeof entries === 'string') return entries;
  const commit = x['commit'];
  if (!isNat(commit)) return natReason('commit', commit);
  const reject = x['reject'];
  if (typeof reject !== 'boolean') return `field reject: expected boolean, got ${describe(reject)}`;
  const rejectHint = x['rejectHint'];
  if (!isNat(rejectHint)) return natReason('rejectHint', rejectHint);
  const hintTerm = x['hintTerm'];
  if (!isNat(hintTerm)) return natReason('hintTerm', hintTerm);

  const m: Message = {
    type: type as MessageType,
    from,
    to,
    term,
    logTerm,
    index,
    entries,
    commit,
    reject,
    rejectHint,
    hintTerm,
  };
  // Optional fields: absent and undefined both mean "not set"; anything else must be well formed.
  const snapshot = x['snapshot'];
  if (snapshot !== undefined) {
    const chunk = validateChunk(snapshot);
    if (typeof chunk === 'string') return chunk;
    m.snapshot = chunk;
  }
  const context = x['context'];
  if (context !== undefined) {
    if (!(context instanceof Uint8Array)) return bytesReason('context', context);
    m.context = plainBytes(context);
  }
  const rejoining = x['rejoining'];
  if (rejoining !== undefined && rejoining !== false) {
    if (rejoining !== true) return `field rejoining: expected true or absent, got ${describe(rejoining)}`;
    m.rejoining = true;
  }
  return m;
}

/**
 * Returns a fresh Message holding exactly the known fields of `x` (binary fields as
 * plain Uint8Array views over the same memory), or a short reason why `x` is not a
 * well-formed wire message. Never throws, whatever `x` is.
 */
export function validateMessage(x: unknown): Message | string {
  try {
    return validateUnsafe(x);
  } catch (err) {
    // Only reachable with exotic inputs (throwing getters, revoked proxies); never from msgpack.
    return `message: inspection threw ${err instanceof Error ? err.name : describe(err)}`;
  }
}
