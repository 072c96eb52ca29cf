// Reads an object back and checks it against the sha256 the caller recorded
// (in its manifest, or the object's own metadata). Restores and the scrubber
// use it; it is the only integrity check that does not trust the store.

import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { ObjectStoreError } from './errors.js';
import { assertSha256, HashingStream } from './hashing.js';
import type { ObjectStore } from './types.js';

export interface VerifyResult {
  bytes: number;
  sha256: string;
}

/** Streams `key` and compares its sha256; ObjectStoreError 'corrupt' on a mismatch. */
export async function verify(store: ObjectStore, key: string, expectedSha256: string): Promise<VerifyResult> {
  assertSha256(expectedSha256, `verify ${key}`);
  const { body, bytes } = await store.get(key);
  const hasher = new HashingStream(key, expectedSha256);
  await pipeline(body, hasher, new Writable({ write: (_chunk, _enc, done) => done() }));
  if (hasher.bytes !== bytes) {
    throw new ObjectStoreError('corrupt', `object ${JSON.stringify(key)}: read ${hasher.bytes} bytes, the store reported ${bytes}`, { key });
  }
  return { bytes: hasher.bytes, sha256: hasher.sha256 };
}
