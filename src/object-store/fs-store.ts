// The default object store: a directory. Every node of a local cluster opens
// the same directory, so a backup taken on one node restores on any.
//
// Layout under storage.fs.dir:
//   objects/<key>        the object's record (JSON: version, bytes, sha256, blob)
//   blobs/<hh>/<uuid>    the bytes; part of an object only once a record names it
//   tmp/<uuid>.json      records being written
//
// Crash safety: one rename is the commit point of every change. put() streams
// the bytes to a fresh blob (hashing them), fsyncs it and its directory, writes
// the record to tmp/, fsyncs it, then renames it onto objects/<key> and fsyncs
// that directory. A crash before the rename leaves the old object (or none)
// plus an unreferenced blob; a crash after leaves the new object whole. Nothing
// half-written is ever reachable under a key, and head/get/list read only
// objects/, so orphan blobs and temp files are invisible; sweepOrphans()
// removes them. delete() unlinks the record first (the commit), then the blob.
//
// One limit S3 does not have: a key cannot be both an object and a "folder"
// ('a' and 'a/b'); such a put fails with 'conflict'.

import { randomUUID } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { link, mkdir, open, readdir, readFile, rename, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describeCause, ObjectStoreError } from './errors.js';
import { compareExisting, destroyBody, notFound, rangeOf } from './common.js';
import { walkKeys } from './fs-walk.js';
import { assertSha256, HashingStream, toReadable } from './hashing.js';
import { assertKey, assertPrefix } from './keys.js';
import { probeStore } from './probe.js';
import {
  SHA256_HEX,
  type GetOptions,
  type GetResult,
  type ListOptions,
  type ObjectBody,
  type ObjectInfo,
  type ObjectStore,
  type PutIfAbsentOutcome,
  type PutOptions,
  type PutResult,
} from './types.js';

const RECORD_VERSION = 1;

interface ObjectRecord {
  version: typeof RECORD_VERSION;
  bytes: number;
  sha256: string;
  /** Path of the blob relative to the store's directory: blobs/<hh>/<uuid>. */
  blob: string;
}

export interface FsStoreOptions {
  /** storage.fs.dir (resolved against the working directory). */
  dir: string;
}

/** A concurrent delete may remove an empty parent between mkdir and rename: retry this often. */
const COMMIT_ATTEMPTS_MAX = 10;

export class FsObjectStore implements ObjectStore {
  readonly description: string;
  readonly dir: string;
  private readonly objectsDir: string;
  private readonly blobsDir: string;
  private readonly tmpDir: string;
  private ready: Promise<void> | undefined;

  constructor(opts: FsStoreOptions) {
    this.dir = resolve(opts.dir);
    this.description = `fs store at ${this.dir} (storage.fs.dir)`;
    this.objectsDir = join(this.dir, 'objects');
    this.blobsDir = join(this.dir, 'blobs');
    this.tmpDir = join(this.dir, 'tmp');
  }

  async put(key: string, body: ObjectBody, opts: PutOptions = {}): Promise<PutResult> {
    assertKey(key);
    assertSha256(opts.sha256, `put ${key}`);
    await this.layout(key);
    const staged = await this.stage(key, body, opts.sha256);
    const old = await this.readRecord(key).catch(() => undefined);
    try {
      await this.commit(key, staged.tmpRecord, 'replace');
    } catch (e) {
      await unlinkQuietly(join(this.dir, staged.record.blob));
      throw e;
    }
    if (old !== undefined && old.blob !== staged.record.blob) await unlinkQuietly(join(this.dir, old.blob));
    return { key, bytes: staged.record.bytes, sha256: staged.record.sha256 };
  }

  async putIfAbsent(key: string, body: ObjectBody, sha256: string): Promise<PutIfAbsentOutcome> {
    assertKey(key);
    assertSha256(sha256, `putIfAbsent ${key}`);
    if (!SHA256_HEX.test(sha256)) throw new TypeError(`putIfAbsent ${key}: sha256 is required`);
    await this.layout(key);
    const existing = await this.head(key);
    if (existing !== null) {
      destroyBody(body);
      return compareExisting(key, existing, sha256);
    }
    const staged = await this.stage(key, body, sha256);
    try {
      // link() fails with EEXIST when the name is taken: unlike S3, no race.
      await this.commit(key, staged.tmpRecord, 'exclusive');
      return 'created';
    } catch (e) {
      await unlinkQuietly(join(this.dir, staged.record.blob));
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const winner = await this.head(key);
      if (winner === null) throw new ObjectStoreError('io', `object ${JSON.stringify(key)} appeared and vanished during putIfAbsent; retry`, { key });
      return compareExisting(key, winner, sha256);
    } finally {
      await unlinkQuietly(staged.tmpRecord);
    }
  }

  async get(key: string, opts: GetOptions = {}): Promise<GetResult> {
    assertKey(key);
    // A concurrent put may unlink the blob the record we read named: read again once.
    for (let attempt = 1; ; attempt++) {
      const record = await this.readRecord(key);
      if (record === undefined) throw notFound(key, this.description);
      let fh: FileHandle;
      try {
        fh = await open(join(this.dir, record.blob), 'r');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT' && attempt < 2) continue;
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
          throw new ObjectStoreError('corrupt', `object ${JSON.stringify(key)}: its blob ${record.blob} is missing from ${this.dir}`, { key });
        }
        throw this.mapError(e, 'get', key);
      }
      const sizeBytes = (await fh.stat()).size;
      if (sizeBytes !== record.bytes) {
        await fh.close();
        throw new ObjectStoreError('corrupt', `object ${JSON.stringify(key)}: blob ${record.blob} has ${sizeBytes} bytes, its record says ${record.bytes}`, {
          key,
        });
      }
      const { start, bytes } = rangeOf(opts, sizeBytes);
      if (bytes === 0) {
        await fh.close();
        return { body: Readable.from([]), bytes: 0, sha256: record.sha256 };
      }
      const body = fh.createReadStream({ start, end: start + bytes - 1, autoClose: true });
      return { body, bytes, sha256: record.sha256 };
    }
  }

  async head(key: string): Promise<ObjectInfo | null> {
    assertKey(key);
    const record = await this.readRecord(key);
    return record === undefined ? null : { key, bytes: record.bytes, sha256: record.sha256 };
  }

  async *list(prefix: string, opts: ListOptions = {}): AsyncGenerator<{ key: string; bytes: number }> {
    assertPrefix(prefix);
    if (opts.startAfter !== undefined) assertKey(opts.startAfter);
    try {
      for await (const key of walkKeys(this.objectsDir, prefix, opts.startAfter)) {
        // A record deleted between the directory read and now is simply gone.
        const record = await this.readRecord(key);
        if (record !== undefined) yield { key, bytes: record.bytes };
      }
    } catch (e) {
      throw this.mapError(e, 'list', prefix);
    }
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (const key of keys) assertKey(key);
    for (const key of keys) {
      const record = await this.readRecord(key).catch((e: unknown) => {
        if (e instanceof ObjectStoreError && e.code === 'corrupt') return undefined; // a broken record is deleted all the same
        throw e;
      });
      const recordPath = join(this.objectsDir, key);
      try {
        await unlink(recordPath);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw this.mapError(e, 'delete', key);
      }
      await fsyncDir(dirname(recordPath));
      if (record !== undefined) await unlinkQuietly(join(this.dir, record.blob));
      await this.removeEmptyParents(dirname(recordPath));
    }
  }

  async check(): Promise<void> {
    try {
      const st = await stat(dirname(this.dir));
      if (!st.isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        throw new ObjectStoreError(
          'no-such-bucket',
          `storage.fs.dir ${JSON.stringify(this.dir)}: its parent ${dirname(this.dir)} does not exist (is a shared volume not mounted?); fix: create it, or set storage.fs.dir`,
        );
      }
      throw this.mapError(e, 'check', undefined);
    }
    await probeStore(this);
  }

  async close(): Promise<void> {
    // Nothing held open between calls.
  }

  /**
   * Removes blobs no record names and temp files, older than `olderThanMs`
   * (younger ones may belong to a put in progress). Returns how many.
   */
  async sweepOrphans(opts: { olderThanMs: number; nowMs?: number }): Promise<number> {
    const cutoffMs = (opts.nowMs ?? Date.now()) - opts.olderThanMs;
    const referenced = new Set<string>();
    for await (const key of walkKeys(this.objectsDir, '', undefined)) {
      const record = await this.readRecord(key).catch(() => undefined);
      if (record !== undefined) referenced.add(record.blob);
    }
    let removed = 0;
    const candidates: string[] = [];
    for (const shard of await readdirQuietly(this.blobsDir)) {
      for (const name of await readdirQuietly(join(this.blobsDir, shard))) candidates.push(`blobs/${shard}/${name}`);
    }
    for (const name of await readdirQuietly(this.tmpDir)) candidates.push(`tmp/${name}`);
    for (const rel of candidates) {
      if (referenced.has(rel)) continue;
      const st = await stat(join(this.dir, rel)).catch(() => undefined);
      if (st === undefined || st.mtimeMs > cutoffMs) continue;
      await unlinkQuietly(join(this.dir, rel));
      removed++;
    }
    return removed;
  }

  /** Where the bytes of `key` live on disk (for diagnostics and tests); undefined when absent. */
  async blobPath(key: string): Promise<string | undefined> {
    assertKey(key);
    const record = await this.readRecord(key);
    return record === undefined ? undefined : join(this.dir, record.blob);
  }

  // -------------------------------------------------------------------------

  /** Creates the three top directories once; and the key's parent in objects/. */
  private async layout(key: string): Promise<void> {
    this.ready ??= (async () => {
      for (const d of [this.objectsDir, this.blobsDir, this.tmpDir]) await mkdir(d, { recursive: true });
      await fsyncDir(this.dir);
    })();
    try {
      await this.ready;
    } catch (e) {
      this.ready = undefined;
      throw this.mapError(e, 'open', key);
    }
  }

  /** Streams the body into a new blob and writes its record to tmp/: nothing visible yet. */
  private async stage(key: string, body: ObjectBody, expectedSha256: string | undefined): Promise<{ record: ObjectRecord; tmpRecord: string }> {
    const id = randomUUID();
    const blob = `blobs/${id.slice(0, 2)}/${id}`;
    const blobPath = join(this.dir, blob);
    const hasher = new HashingStream(key, expectedSha256);
    try {
      await mkdir(dirname(blobPath), { recursive: true });
      const fh = await open(blobPath, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o640);
      try {
        await pipeline(toReadable(body), hasher, fileSink(fh));
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fsyncDir(dirname(blobPath));
    } catch (e) {
      destroyBody(body);
      await unlinkQuietly(blobPath);
      throw e instanceof ObjectStoreError ? e : this.mapError(e, 'put', key);
    }
    const record: ObjectRecord = { version: RECORD_VERSION, bytes: hasher.bytes, sha256: hasher.sha256, blob };
    const tmpRecord = join(this.tmpDir, `${id}.json`);
    try {
      await writeDurably(tmpRecord, JSON.stringify(record));
    } catch (e) {
      await unlinkQuietly(blobPath);
      await unlinkQuietly(tmpRecord);
      throw this.mapError(e, 'put', key);
    }
    return { record, tmpRecord };
  }

  /** The commit: rename (replace) or link (exclusive) the record onto objects/<key>. */
  private async commit(key: string, tmpRecord: string, mode: 'replace' | 'exclusive'): Promise<void> {
    const target = join(this.objectsDir, key);
    for (let attempt = 1; ; attempt++) {
      try {
        await mkdirDurably(this.objectsDir, dirname(target));
        if (mode === 'replace') await rename(tmpRecord, target);
        else await link(tmpRecord, target);
        await fsyncDir(dirname(target));
        return;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' && attempt < COMMIT_ATTEMPTS_MAX) continue;
        if (code === 'EEXIST' && mode === 'exclusive') throw e;
        if (mode === 'replace') await unlinkQuietly(tmpRecord);
        throw this.mapError(e, 'put', key);
      }
    }
  }

  private async readRecord(key: string): Promise<ObjectRecord | undefined> {
    let text: string;
    try {
      text = await readFile(join(this.objectsDir, key), 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // ENOTDIR: a parent segment is an object ('a' when asked for 'a/b'): no such key.
      // EISDIR: the key is a "folder" of other keys, not an object.
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return undefined;
      throw this.mapError(e, 'read', key);
    }
    const record = parseRecord(text);
    if (record === undefined)
      throw new ObjectStoreError('corrupt', `object ${JSON.stringify(key)}: its record ${join(this.objectsDir, key)} is not a valid object record`, { key });
    return record;
  }

  private async removeEmptyParents(dir: string): Promise<void> {
    let d = dir;
    while (d.startsWith(`${this.objectsDir}/`)) {
      try {
        await rmdir(d);
      } catch {
        return; // not empty (or already gone): stop climbing
      }
      d = dirname(d);
    }
  }

  private mapError(e: unknown, op: string, key: string | undefined): ObjectStoreError {
    if (e instanceof ObjectStoreError) return e;
    const code = (e as NodeJS.ErrnoException).code;
    const what = key === undefined ? `${op} in ${this.dir}` : `${op} ${JSON.stringify(key)} in ${this.dir}`;
    const opts = key === undefined ? { cause: e } : { key, cause: e };
    switch (code) {
      case 'EACCES':
      case 'EPERM':
      case 'EROFS':
        return new ObjectStoreError(
          'access-denied',
          `object store: ${what}: ${describeCause(e)}; fix: give the daemon's user write access to storage.fs.dir ${JSON.stringify(this.dir)}, or set storage.fs.dir`,
          opts,
        );
      case 'ENOSPC':
      case 'EDQUOT':
        return new ObjectStoreError(
          'io',
          `object store: ${what}: no space left on the filesystem of storage.fs.dir ${JSON.stringify(this.dir)}; fix: free space or move storage.fs.dir`,
          opts,
        );
      case 'ENOTDIR':
      case 'EISDIR':
      case 'EEXIST':
        return new ObjectStoreError(
          'conflict',
          `object store: ${what}: a key and a "folder" of keys share a name (the fs store cannot hold both 'a' and 'a/b'); fix: use a different key`,
          opts,
        );
      default:
        return new ObjectStoreError('io', `object store: ${what}: ${describeCause(e)}`, opts);
    }
  }
}

function parseRecord(text: string): ObjectRecord | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const r = v as Record<string, unknown>;
  if (r.version !== RECORD_VERSION || !Number.isSafeInteger(r.bytes) || (r.bytes as number) < 0) return undefined;
  if (typeof r.sha256 !== 'string' || !SHA256_HEX.test(r.sha256)) return undefined;
  if (typeof r.blob !== 'string' || !/^blobs\/[0-9a-f]{2}\/[0-9a-f-]{36}$/.test(r.blob)) return undefined;
  return { version: RECORD_VERSION, bytes: r.bytes as number, sha256: r.sha256, blob: r.blob };
}

/**
 * A Writable into an open FileHandle that it does not close (we fsync first).
 * Not fh.createWriteStream({ autoClose: false }): pipeline() waits for its
 * 'close', which then never comes.
 */
function fileSink(fh: FileHandle): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      fh.write(chunk).then(() => done(), done);
    },
    writev(chunks, done) {
      fh.writev(chunks.map((c) => c.chunk as Buffer)).then(() => done(), done);
    },
  });
}

async function writeDurably(path: string, text: string): Promise<void> {
  const fh = await open(path, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o640);
  try {
    await fh.writeFile(text, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** mkdir -p that fsyncs each new directory's parent, so the path survives a crash. */
async function mkdirDurably(root: string, dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true });
  if (first === undefined) return;
  for (let d = dir; d.length >= first.length && d.startsWith(root); d = dirname(d)) await fsyncDir(dirname(d));
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function unlinkQuietly(path: string): Promise<void> {
  await unlink(path).catch(() => undefined);
}

async function readdirQuietly(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => []);
}
