// Small pieces both backends share: ranges, putIfAbsent's comparison, errors.

import { ObjectStoreError } from './errors.js';
import type { GetOptions, ObjectBody, ObjectInfo, PutIfAbsentOutcome } from './types.js';

/** The bytes a range selects from an object of `sizeBytes`; past the end is empty. */
export function rangeOf(opts: GetOptions, sizeBytes: number): { start: number; bytes: number } {
  const range = opts.range;
  if (range === undefined) return { start: 0, bytes: sizeBytes };
  const { offsetBytes, lengthBytes } = range;
  if (!Number.isSafeInteger(offsetBytes) || offsetBytes < 0) throw new RangeError(`range.offsetBytes must be a non-negative integer, got ${offsetBytes}`);
  if (lengthBytes !== undefined && (!Number.isSafeInteger(lengthBytes) || lengthBytes < 1))
    throw new RangeError(`range.lengthBytes must be a positive integer, got ${lengthBytes}`);
  const start = Math.min(offsetBytes, sizeBytes);
  const end = lengthBytes === undefined ? sizeBytes : Math.min(sizeBytes, offsetBytes + lengthBytes);
  return { start, bytes: Math.max(0, end - start) };
}

export function compareExisting(key: string, existing: ObjectInfo, sha256: string): PutIfAbsentOutcome {
  if (existing.sha256 === sha256) return 'exists';
  throw new ObjectStoreError(
    'conflict',
    `object ${JSON.stringify(key)} already exists with different content (sha256 ${existing.sha256 ?? 'unknown'}, ${existing.bytes} bytes; this upload's sha256 is ${sha256}); an archived object is never overwritten`,
    { key },
  );
}

export function notFound(key: string, where: string): ObjectStoreError {
  return new ObjectStoreError('not-found', `object ${JSON.stringify(key)} does not exist in the ${where}`, { key });
}

/** A body we will not read (putIfAbsent found the object): release it. */
export function destroyBody(body: ObjectBody): void {
  if (!(body instanceof Uint8Array) && !body.destroyed) body.destroy();
}
