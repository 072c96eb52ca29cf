// Object keys: '/'-separated segments, the same rules for every backend, so a
// key that works on the fs store also works on S3 and the other way round.

import { ObjectStoreError } from './errors.js';

/** S3's limit on a key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why `key` is not a valid object key, or undefined when it is. */
export function keyProblem(key: string): string | undefined {
  if (typeof key !== 'string') return 'is not a string';
  if (key === '') return 'is empty';
  if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) return `is longer than ${MAX_KEY_BYTES} bytes`;
  // Control characters break file names, log lines and XML listings alike.
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return 'contains a control character';
  }
  if (key.includes('\\')) return "contains '\\' (keys use '/' between segments)";
  if (key.startsWith('/')) return "is absolute (starts with '/')";
  if (key.endsWith('/')) return "ends with '/' (an empty last segment)";
  for (const segment of key.split('/')) {
    if (segment === '') return "has an empty segment ('//')";
    if (segment === '.' || segment === '..') return `has a '${segment}' segment`;
  }
  // Lone surrogates do not survive UTF-8: the key read back would differ.
  if (LONE_SURROGATE.test(key)) return 'is not well-formed Unicode (a lone surrogate)';
  return undefined;
}

/** Throws ObjectStoreError('invalid-key') naming the key when it is not valid. */
export function assertKey(key: string): void {
  const problem = keyProblem(key);
  if (problem !== undefined) {
    throw new ObjectStoreError(
      'invalid-key',
      `object key ${JSON.stringify(key)} ${problem}; keys are '/'-separated names without empty, '.' or '..' segments`,
      { key },
    );
  }
}

/** A list prefix may be '' or end in the middle of a segment, but must not escape. */
export function assertPrefix(prefix: string): void {
  if (prefix === '') return;
  // 'a/' and 'a/b' are valid prefixes: what precedes one trailing '/' must be a valid key.
  const problem = keyProblem(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix);
  if (problem !== undefined)
    throw new ObjectStoreError('invalid-key', `list prefix ${JSON.stringify(prefix)} is not a key prefix: it ${problem}`, { key: prefix });
}

/** S3's key order: by UTF-8 bytes, not JavaScript's UTF-16 code units. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
