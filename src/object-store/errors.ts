// One error type for every object-store failure. The message is one line that
// names what was being done, the config field and value at fault, and the fix,
// so an operator never has to read an SDK stack trace or an "[object Object]".

export type ObjectStoreErrorCode =
  /** The endpoint (or the fs directory's filesystem) cannot be reached: refused, DNS, timeout. */
  | 'unreachable'
  /** storage.s3.bucket does not exist (or storage.fs.dir does not). */
  | 'no-such-bucket'
  /** Credentials refused, or file permissions. */
  | 'access-denied'
  /** The key has no object (get; head returns null instead). */
  | 'not-found'
  /** putIfAbsent found different content under the name, or an fs key clashes with a "folder". */
  | 'conflict'
  /** Content does not match its sha256 (on upload, or found by verify). */
  | 'corrupt'
  /** The key is not a valid object name (empty segment, '..', absolute, ...). */
  | 'invalid-key'
  /** Anything else: disk full, an unexpected server answer. */
  | 'io';

export class ObjectStoreError extends Error {
  override readonly name = 'ObjectStoreError';
  readonly code: ObjectStoreErrorCode;
  /** The object key involved, when there is one. */
  readonly key: string | undefined;

  constructor(code: ObjectStoreErrorCode, message: string, opts: { key?: string; cause?: unknown } = {}) {
    // One line, always: multi-line SDK messages would break log lines.
    super(message.replace(/\s*\n\s*/g, ' '), opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.key = opts.key;
  }
}

export function isObjectStoreError(e: unknown, code?: ObjectStoreErrorCode): e is ObjectStoreError {
  return e instanceof ObjectStoreError && (code === undefined || e.code === code);
}

/** A short, one-line description of any thrown value (never "[object Object]"). */
export function describeCause(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code;
    const first = (e.message.split('\n')[0] ?? '').trim();
    const text = first === '' ? e.name : first;
    return code !== undefined && !text.includes(code) ? `${code}: ${text}` : text;
  }
  if (typeof e === 'string') return e;
  try {
    return JSON.stringify(e) ?? String(e);
  } catch {
    return String(e);
  }
}
