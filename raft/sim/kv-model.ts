/**
 * Linearizability model of the simulation's key-value state machine: one register
 * per key (`string | undefined`, undefined = absent), partitioned by key.
 *
 * Sequential semantics
 *   get(k)            -> { value }            current value (undefined when absent)
 *   put(k, v)         -> {}                   sets k = v
 *   cas(k, from, to)  -> { ok: true }         if current === from: sets k = to
 *                     -> { ok: false }        otherwise, no change
 *   A cas output counts as a success only when `ok === true`.
 *
 * Operations with unknown outcome (`output.unknown === true`, e.g. a timeout)
 *   Such an op may have taken effect at any point after its call, or never.
 *   - "At some point after its call": `partition` rewrites the op's `ret` to
 *     Infinity (a copy; the input array is not touched), so the checker may place it
 *     anywhere after its call, even after its recorded `ret` — a timed-out request
 *     can still be applied later.
 *   - "Never": linearizing it after every other op of its key is indistinguishable
 *     from it never having happened, and `step` accepts an unknown op in any state,
 *     so that placement is always available.
 *   - When it did take effect, its effect is the deterministic one: put sets the
 *     value; cas sets `to` iff the current value equals `from` and otherwise changes
 *     nothing (the cas "branches" on the state at its linearization point; a cas that
 *     did not apply even though `from` matched is exactly the "never happened" case
 *     above, so no extra branch is needed); get changes nothing.
 *   - An unknown get constrains nothing and changes nothing, so `partition` drops it
 *     (it would only enlarge the search).
 *   - `isUnconstrained` marks unknown ops (step accepts them in every state), which
 *     lets the checker treat them as optional and prune its search.
 */

import { checkOperations, type CheckOptions, type CheckResult, type Model, type Operation } from './linearizability.js';

export type KvInput = { op: 'get'; key: string } | { op: 'put'; key: string; value: string } | { op: 'cas'; key: string; from: string; to: string };

export interface KvOutput {
  /** get: the value read; undefined when the key is absent. */
  value?: string;
  /** cas: whether it applied. */
  ok?: boolean;
  /** The outcome is not known (timeout / indeterminate). */
  unknown?: boolean;
}

export type KvState = string | undefined;

export type KvOperation = Operation<KvInput, KvOutput>;

function show(v: string | undefined): string {
  return v === undefined ? '∅' : JSON.stringify(v);
}

export function stepKv(state: KvState, input: KvInput, output: KvOutput): { ok: boolean; next: KvState } {
  const unknown = output.unknown === true;
  switch (input.op) {
    case 'get':
      return { ok: unknown || output.value === state, next: state };
    case 'put':
      return { ok: true, next: input.value };
    case 'cas': {
      const matches = state === input.from;
      if (unknown) return { ok: true, next: matches ? input.to : state };
      if (output.ok === true) return { ok: matches, next: input.to };
      return { ok: !matches, next: state };
    }
  }
}

export function describeKv(input: KvInput, output: KvOutput): string {
  const res = (known: string): string => (output.unknown === true ? '?' : known);
  switch (input.op) {
    case 'get':
      return `get(${JSON.stringify(input.key)}) -> ${res(show(output.value))}`;
    case 'put':
      return `put(${JSON.stringify(input.key)}, ${JSON.stringify(input.value)}) -> ${res('ok')}`;
    case 'cas':
      return `cas(${JSON.stringify(input.key)}, ${JSON.stringify(input.from)} => ${JSON.stringify(input.to)}) -> ${res(output.ok === true ? 'ok' : 'fail')}`;
  }
}

/** Group by key (first-appearance order); normalise unknown ops (ret = Infinity); drop unknown gets. */
export function partitionKv(ops: KvOperation[]): KvOperation[][] {
  const byKey = new Map<string, KvOperation[]>();
  for (const op of ops) {
    let list = byKey.get(op.input.key);
    if (list === undefined) {
      list = [];
      byKey.set(op.input.key, list);
    }
    if (op.output.unknown !== true) list.push(op);
    else if (op.input.op !== 'get') list.push(op.ret === Infinity ? op : { ...op, ret: Infinity });
  }
  return [...byKey.values()];
}

export const kvModel: Model<KvState, KvInput, KvOutput> = {
  init: () => undefined,
  step: stepKv,
  equal: (a, b) => a === b,
  hash: (s) => (s === undefined ? 'u' : `s${s}`),
  partition: partitionKv,
  describe: describeKv,
  describeState: show,
  isUnconstrained: (_input, output) => output.unknown === true,
};

/** `checkOperations(kvModel, ops, opts)`. */
export function checkKvHistory(ops: readonly KvOperation[], opts?: CheckOptions): CheckResult {
  return checkOperations(kvModel, ops, opts);
}

/** Reference (sequential, in-memory) implementation of the same semantics. */
export function applyKv(store: Map<string, string>, input: KvInput): KvOutput {
  const cur = store.get(input.key);
  switch (input.op) {
    case 'get':
      return cur === undefined ? {} : { value: cur };
    case 'put':
      store.set(input.key, input.value);
      return {};
    case 'cas':
      if (cur !== input.from) return { ok: false };
      store.set(input.key, input.to);
      return { ok: true };
  }
}
