// The object-store seam: snapshots (base backups), WAL archives and branches
// are written through this one small interface, by agents, never on the Raft
// loop. Two backends: a directory (fs-store.ts, the default) and S3 or any
// S3-compatible server (s3-store.ts).
//
// The sha256 rule: every object's integrity is a sha256 of its bytes that WE
// compute, never an ETag (multipart ETags differ between S3, MinIO and s3rver).
// When the caller knows the sha256 before uploading (opts.sha256, or a
// Uint8Array body) it is stored in the object's metadata and checked at the
// end of the upload. For a streamed S3 upload without it, the sha256 is only
// known once the last byte is sent: put() returns it, and the caller records
// it in its manifest (head() then reports no sha256 for that object).

import type { Readable } from 'node:stream';

export type ObjectBody = Readable | Uint8Array;

export interface PutOptions {
  /** Expected sha256 (64 lowercase hex): stored with the object; a mismatch fails the put and leaves nothing under the key. */
  sha256?: string;
}

export interface PutResult {
  key: string;
  bytes: number;
  /** sha256 of the bytes written, hex, computed while streaming. */
  sha256: string;
}

export interface ObjectInfo {
  key: string;
  bytes: number;
  /** From the object's metadata; undefined for a streamed S3 upload whose sha256 lives in the caller's manifest. */
  sha256: string | undefined;
}

export interface ByteRange {
  offsetBytes: number;
  /** Unset: to the end of the object. */
  lengthBytes?: number;
}

export interface GetOptions {
  range?: ByteRange;
}

export interface GetResult {
  body: Readable;
  /** Bytes in `body` (the range's length when a range was asked for; 0 for a range past the end). */
  bytes: number;
  /** The whole object's sha256 from its metadata, when known. */
  sha256: string | undefined;
}

export interface ListOptions {
  /** Keys fetched per request (S3 caps it at 1000). Default 1000. */
  pageSize?: number;
  /** List only keys after this one (exclusive), in key order: resume a listing. */
  startAfter?: string;
}

/** 'created': written now; 'exists': the same content was already there. */
export type PutIfAbsentOutcome = 'created' | 'exists';

export interface ObjectStore {
  /** 'fs' or 's3', and where: for log lines and messages. */
  readonly description: string;
  /** Streams `body` under `key` with bounded memory; replaces an existing object atomically. */
  put(key: string, body: ObjectBody, opts?: PutOptions): Promise<PutResult>;
  /**
   * Idempotent archive upload: writes `body` only if nothing is under `key`.
   * Same name and same sha256: 'exists' (a retried archive_command succeeds).
   * Same name, different sha256: ObjectStoreError 'conflict' (never overwritten).
   */
  putIfAbsent(key: string, body: ObjectBody, sha256: string): Promise<PutIfAbsentOutcome>;
  /** ObjectStoreError 'not-found' when the key has no object. */
  get(key: string, opts?: GetOptions): Promise<GetResult>;
  /** null when the key has no object. */
  head(key: string): Promise<ObjectInfo | null>;
  /** Keys starting with `prefix`, in S3 key order (UTF-8 bytes), paged. sha256 is not included (it costs a HEAD per key on S3). */
  list(prefix: string, opts?: ListOptions): AsyncIterable<{ key: string; bytes: number }>;
  /** Deletes every key; a missing key is not an error. */
  delete(keys: readonly string[]): Promise<void>;
  /** Startup probe: the bucket or directory exists and can be written, read and listed. */
  check(): Promise<void>;
  /** Releases sockets; the store is unusable afterwards. */
  close(): Promise<void>;
}

export const SHA256_HEX = /^[0-9a-f]{64}$/;
