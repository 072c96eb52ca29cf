// sha256 while streaming: a Transform that hashes and counts what passes, and
// (when told the expected digest) fails at the end instead of letting a
// mismatched body be committed.

import { createHash, type Hash } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { ObjectStoreError } from './errors.js';
import { SHA256_HEX, type ObjectBody } from './types.js';

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export class HashingStream extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private digest: string | undefined;
  bytes = 0;

  constructor(
    private readonly key: string,
    private readonly expectedSha256: string | undefined,
  ) {
    super();
  }

  /** The digest, once the stream has ended. */
  get sha256(): string {
    if (this.digest === undefined) throw new Error('HashingStream: sha256 read before the stream ended');
    return this.digest;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    this.digest = this.hash.digest('hex');
    // Failing here, before the end is signalled downstream, is what keeps a
    // mismatched body from being committed: the consumer sees an error, not EOF.
    if (this.expectedSha256 !== undefined && this.digest !== this.expectedSha256) {
      done(mismatch(this.key, this.expectedSha256, this.digest, this.bytes));
      return;
    }
    done();
  }
}

export function mismatch(key: string, expected: string, actual: string, bytes: number): ObjectStoreError {
  return new ObjectStoreError('corrupt', `object ${JSON.stringify(key)}: sha256 of its ${bytes} bytes is ${actual}, expected ${expected}`, { key });
}

export function toReadable(body: ObjectBody): Readable {
  // One chunk per Uint8Array: Readable.from would iterate it byte by byte.
  return body instanceof Uint8Array ? Readable.from([Buffer.from(body.buffer, body.byteOffset, body.byteLength)], { objectMode: false }) : body;
}

/** Programmer errors: a malformed digest is a bug in the caller, not a storage problem. */
export function assertSha256(sha256: string | undefined, what: string): void {
  if (sha256 !== undefined && !SHA256_HEX.test(sha256)) throw new TypeError(`${what}: sha256 must be 64 lowercase hex digits, got ${JSON.stringify(sha256)}`);
}
