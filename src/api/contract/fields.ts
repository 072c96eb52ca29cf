// Building blocks of the admin API contract's request schemas. Each one carries
// the message a client sees when its value is wrong ("expected ..., got ..."),
// and its hint (what would be valid) as `x-hint` metadata, which also appears in
// the OpenAPI document. src/api/validate.ts turns a failed parse into the API's
// error shape with the field's path in front.

import { z } from 'zod';
import { parseHostPort } from '../../config/address.js';

/** Metadata key of a field's hint: an example or the valid forms. */
export const HINT_KEY = 'x-hint';

export const ADDRESS_HINT = 'HOST:PORT, e.g. 127.0.0.1:8004';

/** A value as an error message quotes it: short, JSON-like, never a whole object. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}...` : v);
  if (typeof v === 'object') return 'an object';
  return String(v);
}

/** The hint of a schema (set with withHint), looking through optional and nullable wrappers. */
export function hintOf(schema: z.ZodType): string | undefined {
  let s: z.ZodType = schema;
  for (let depth = 0; depth < 8; depth++) {
    const h = s.meta()?.[HINT_KEY];
    if (typeof h === 'string') return h;
    if (s instanceof z.ZodOptional || s instanceof z.ZodNullable) s = s.unwrap() as z.ZodType;
    else return undefined;
  }
  return undefined;
}

export function withHint<S extends z.ZodType>(schema: S, hint: string, description?: string): S {
  return schema.meta({ [HINT_KEY]: hint, ...(description !== undefined ? { description } : {}) });
}

/** A string field; `expected a string, got 5` otherwise. */
export function text(): z.ZodString {
  return z.string({ error: (iss) => `expected a string, got ${describe(iss.input)}` });
}

/** A non-empty string (an id, a name): the empty string counts as missing. */
export function nonEmptyText(): z.ZodString {
  return text().min(1, { error: 'must not be empty' });
}

export function flag(): z.ZodBoolean {
  return z.boolean({ error: (iss) => `expected true or false, got ${describe(iss.input)}` });
}

/** An integer in [min, max]; `what` says what it counts, in the message. */
export function intIn(range: { min: number; max: number }, what?: string): z.ZodInt {
  const error = (iss: { input?: unknown }): string =>
    `expected an integer from ${range.min} to ${range.max}${what ? ` (${what})` : ''}, got ${describe(iss.input)}`;
  return z.int({ error }).min(range.min, { error }).max(range.max, { error });
}

/** HOST:PORT with a port in 1..65535 (a bracketed IPv6 host is fine). */
export function address(): z.ZodType<string> {
  return withHint(text().refine(isHostPort, { error: (iss) => `${describe(iss.input)} is not HOST:PORT` }), ADDRESS_HINT);
}

function isHostPort(v: string): boolean {
  return parseHostPort(v).ok;
}
