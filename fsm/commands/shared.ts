// What every domain's commands share: the Base every command extends, the parser
// type, the field readers that build on fields.ts, and the ranges more than one
// domain checks. Imported by commands/{cluster,postgres,tenants,storage}.ts only.

import { FieldError, Fields } from '../fields.js';
import { LIMITS } from '../state.js';

export interface Base<T extends string, V extends number = 1> {
  readonly v: V;
  readonly type: T;
  /** The proposer's clock. */
  readonly atMs: number;
}

/**
 * The parser of command type T within the union C. Each domain narrows it to its own
 * union (`Parser<T>` over ClusterCommand, ...), commands.ts to the whole Command.
 */
export type ParserOf<C extends { readonly type: string }, T extends C['type']> = (x: unknown) => Extract<C, { type: T }>;

export const TEXT = { maxChars: LIMITS.textChars };
export const MAX_GENERATION = Number.MAX_SAFE_INTEGER;
export const MAX_TIMELINE = 0xffffffff;

export function fieldsOf(x: unknown, keys: readonly string[], hints?: Readonly<Record<string, string>>): Fields {
  return Fields.of(x, '', ['v', 'type', 'atMs', ...keys], hints);
}

export function base<T extends string>(f: Fields, type: T): Base<T> {
  return { v: 1, type, atMs: f.timeMs('atMs') };
}

export function generation(f: Fields, key = 'generation'): number {
  return f.int(key, 0, MAX_GENERATION, '(the fencing token)');
}

export function sortedDistinct(list: string[], path: string): string[] {
  const sorted = [...list].sort();
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i] === sorted[i - 1]) throw new FieldError(path, `lists ${JSON.stringify(sorted[i])} twice; each may appear once`);
  }
  return sorted;
}

/** Adapts a Fields reader to the items of an array, with the item's path in messages. */
export function item<T>(read: (f: Fields, key: string) => T): (v: unknown, path: string) => T {
  return (v, path) => {
    try {
      return read(Fields.of({ item: v }, '', ['item']), 'item');
    } catch (e) {
      if (e instanceof FieldError) throw new FieldError(path, e.detail, e.code);
      throw e;
    }
  };
}

/** The `v` a parser is called with; parseCommand has already checked it is an integer from 1 to COMMAND_VERSION. */
export function rawVersion(x: unknown): number {
  return (x as { v: number }).v;
}
