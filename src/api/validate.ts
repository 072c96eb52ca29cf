// Request bodies checked against the contract (src/api/contract), with the
// API's error shape: the field's path, the value and the fix, e.g.
//   field 'limits.poolSize': expected an integer from 1 to 10000 (...), got 0
//   hint: e.g. {"limits": {"poolSize": 10}}

import { z } from 'zod';
import { ApiError } from './http.js';
import { describe, hintOf } from './contract/index.js';

/** The body as the schema's type, or an ApiError 400 for the first problem. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  // reportInput: the issue carries the value, for "got ..." and to tell a missing field from a wrong one.
  const r = schema.safeParse(body, { reportInput: true });
  if (r.success) return r.data;
  // An unknown field first: it often explains the other problems (a typo).
  const issues = [...r.error.issues].sort((a, b) => Number(b.code === 'unrecognized_keys') - Number(a.code === 'unrecognized_keys'));
  throw issueToApiError(schema, issues[0]!);
}

function issueToApiError(root: z.ZodType, issue: z.core.$ZodIssue): ApiError {
  const path = issue.path.map(String).join('.');
  const field = path === '' ? 'body' : `field '${path}'`;
  const at = schemaAt(root, issue.path);
  const hint = customHint(issue) ?? (at ? hintOf(at) : undefined);
  if (issue.code === 'unrecognized_keys') {
    const prefix = path === '' ? '' : `${path}.`;
    const known = at ? Object.keys(objectShape(at) ?? {}) : [];
    const what = path === '' ? 'fields' : String(issue.path[issue.path.length - 1]);
    return new ApiError(400, 'invalid_body', `unknown field '${prefix}${issue.keys[0]}'`, `known ${what}: ${known.join(', ')}`);
  }
  if (issue.code === 'invalid_type' && issue.input === undefined) {
    return new ApiError(400, 'invalid_body', `${field} is required`, hint);
  }
  if (issue.code === 'invalid_type' && issue.expected === 'object') {
    return new ApiError(400, 'invalid_body', `${field} must be a JSON object, got ${describe(issue.input)}`, hint);
  }
  return new ApiError(400, 'invalid_body', `${field}: ${issue.message}`, hint);
}

function customHint(issue: z.core.$ZodIssue): string | undefined {
  if (issue.code !== 'custom') return undefined;
  const h = (issue.params as { hint?: unknown } | undefined)?.hint;
  return typeof h === 'string' ? h : undefined;
}

/**
 * The sub-schema at `path` (through optional and nullable wrappers), for its hint
 * and its known fields. A hint set on a wrapper wins over the inner schema's.
 */
function schemaAt(root: z.ZodType, path: readonly PropertyKey[]): z.ZodType | undefined {
  let s: z.ZodType | undefined = root;
  for (const key of path) {
    const shape: Record<string, z.ZodType> | undefined = s ? objectShape(s) : undefined;
    s = shape?.[String(key)];
    if (s === undefined) return undefined;
  }
  return s;
}

function objectShape(s: z.ZodType): Record<string, z.ZodType> | undefined {
  let cur: z.ZodType = s;
  for (let i = 0; i < 8; i++) {
    if (cur instanceof z.ZodObject) return cur.shape as Record<string, z.ZodType>;
    if (cur instanceof z.ZodOptional || cur instanceof z.ZodNullable) cur = cur.unwrap() as z.ZodType;
    else return undefined;
  }
  return undefined;
}
