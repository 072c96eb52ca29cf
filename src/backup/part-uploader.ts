// The sink a backup's base.tar streams into: compress (brotli quality 1 by
// default: on these machines it beat gzip-1 in both size and speed, and Node
// 20 has no zstd), cut the compressed stream into parts of a fixed size, and
// upload each part as its own object with its sha256 known before the upload
// (so it sits in the object's metadata as well as in the backup's manifest).
//
// Memory is bounded: one part being filled plus one part uploading, plus the
// compressor's own buffers. When both are busy, write() returns false and the
// BASE_BACKUP reader pauses the socket (TCP backpressure to the server) until
// 'drain'. Nothing of the backup is ever written to local disk.

import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import * as zlib from 'node:zlib';
import type { ArchiveSink } from '../postgres/basebackup.js';
import type { ObjectStore } from '../object-store/index.js';

export type Compression = 'brotli' | 'none';

export const DEFAULT_PART_BYTES = 16 * 1024 * 1024;

export interface UploadedPart {
  key: string;
  bytes: number;
  sha256: string;
}

export interface UploadResult {
  parts: UploadedPart[];
  /** Bytes of tar before compression, and their sha256 (checked again after a restore's decompression). */
  tarBytes: number;
  tarSha256: string;
  /** Bytes stored: the sum of the parts. */
  storedBytes: number;
}

export interface PartUploaderOptions {
  store: ObjectStore;
  /** Part keys are `${keyPrefix}${five-digit index}`. */
  keyPrefix: string;
  compression: Compression;
  partBytes?: number;
  /** Called after each part is stored (progress display, metrics). */
  onPart?: (p: UploadedPart) => void;
}

/**
 * Tar bytes arrive in the protocol's CopyData messages (tens of KB). Each write
 * into the compressor is one job on libuv's thread pool, and each into the
 * collector one copy and one hash call. Gathered into stages of this size (with
 * BROTLI_CHUNK_BYTES below), a full backup of 1.1 GB (pgbench scale 70) went from
 * 129 to 259 MB/s here (docs/backups.md, "Measured").
 */
const STAGE_BYTES = 1 << 20;
/** The compressor's output chunks: its default 16 KB costs a thread-pool round trip per 16 KB. */
export const BROTLI_CHUNK_BYTES = 1 << 18;

export function partSuffix(compression: Compression): string {
  return compression === 'brotli' ? 'base.tar.br.' : 'base.tar.';
}

export class PartUploader extends EventEmitter implements ArchiveSink<UploadResult> {
  private readonly input: zlib.BrotliCompress | undefined;
  private readonly collector: Writable;
  private readonly tarHash = createHash('sha256');
  private tarBytes = 0;
  private readonly parts: UploadedPart[] = [];
  private pending: Buffer[] = [];
  /** Tar bytes gathered until STAGE_BYTES, then written on as one chunk. */
  private stage = Buffer.allocUnsafe(STAGE_BYTES);
  private staged = 0;
  private pendingBytes = 0;
  private partHash = createHash('sha256');
  private uploading: Promise<void> = Promise.resolve();
  private failed: Error | undefined;
  private readonly partBytes: number;

  constructor(private readonly o: PartUploaderOptions) {
    super();
    this.partBytes = o.partBytes ?? DEFAULT_PART_BYTES;
    if (!(this.partBytes >= 64 * 1024)) throw new RangeError(`partBytes ${this.partBytes} is below 64 KiB`);
    this.collector = new Writable({
      highWaterMark: 1 << 20,
      write: (chunk: Buffer, _enc, cb) => this.collect(chunk).then(() => cb(), cb),
      final: (cb) => this.flush().then(() => cb(), cb),
    });
    this.collector.on('error', (e) => this.fail(e));
    if (o.compression === 'brotli') {
      this.input = zlib.createBrotliCompress({ chunkSize: BROTLI_CHUNK_BYTES, params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 1 } });
      this.input.on('error', (e) => this.fail(e));
      this.input.pipe(this.collector);
      this.input.on('drain', () => this.emit('drain'));
    } else {
      this.collector.on('drain', () => this.emit('drain'));
    }
  }

  write(chunk: Uint8Array): boolean {
    if (this.failed) return true; // the command aborts on 'error'; nothing more is kept
    // Copied into the stage: the chunk is a view into the protocol reader's reused buffer.
    let off = 0;
    let more = true;
    while (off < chunk.length) {
      const n = Math.min(chunk.length - off, STAGE_BYTES - this.staged);
      this.stage.set(chunk.subarray(off, off + n), this.staged);
      this.staged += n;
      off += n;
      if (this.staged === STAGE_BYTES) more = this.flushStage();
    }
    return more && !(this.input ?? this.collector).writableNeedDrain;
  }

  /** Writes the staged bytes on (hashed once, as one chunk); false when the next stage should wait for 'drain'. */
  private flushStage(): boolean {
    if (this.staged === 0) return true;
    const full = this.staged === STAGE_BYTES ? this.stage : this.stage.subarray(0, this.staged);
    this.stage = Buffer.allocUnsafe(STAGE_BYTES);
    this.staged = 0;
    this.tarHash.update(full);
    this.tarBytes += full.length;
    return this.input !== undefined ? this.input.write(full) : this.collector.write(full);
  }

  async end(): Promise<UploadResult> {
    const finished = new Promise<void>((resolve, reject) => {
      this.collector.once('finish', resolve);
      this.collector.once('error', reject);
    });
    if (!this.failed) this.flushStage();
    if (this.input !== undefined) this.input.end();
    else this.collector.end();
    await finished;
    await this.uploading;
    if (this.failed) throw this.failed;
    return { parts: this.parts, tarBytes: this.tarBytes, tarSha256: this.tarHash.digest('hex'), storedBytes: this.parts.reduce((s, p) => s + p.bytes, 0) };
  }

  destroy(err: Error): void {
    this.failed ??= err;
    this.input?.destroy();
    this.collector.destroy();
  }

  /** The keys of every part stored so far (for cleanup after a failure). */
  storedKeys(): string[] {
    return this.parts.map((p) => p.key);
  }

  private fail(e: Error): void {
    if (this.failed) return;
    this.failed = e;
    if (this.listenerCount('error') > 0) this.emit('error', e);
  }

  /**
   * Appends to the part being filled, hashing as the bytes come (a part's
   * sha256 in one call would hold the event loop, which Raft shares, for tens
   * of milliseconds); a full part is cut and uploaded.
   */
  private async collect(chunk: Buffer): Promise<void> {
    let off = 0;
    while (off < chunk.length) {
      const piece = chunk.subarray(off, off + (this.partBytes - this.pendingBytes));
      this.pending.push(piece);
      this.pendingBytes += piece.length;
      this.partHash.update(piece);
      off += piece.length;
      if (this.pendingBytes === this.partBytes) await this.cutPart();
    }
  }

  private async flush(): Promise<void> {
    if (this.pendingBytes > 0 || this.parts.length === 0) await this.cutPart();
    await this.uploading;
  }

  private async cutPart(): Promise<void> {
    const data = Buffer.concat(this.pending, this.pendingBytes);
    const sha256 = this.partHash.digest('hex');
    this.pending = [];
    this.pendingBytes = 0;
    this.partHash = createHash('sha256');
    await this.startUpload(data, sha256);
  }

  /** Waits for the previous upload (at most one in flight), then starts this one. */
  private async startUpload(data: Buffer, sha256: string): Promise<void> {
    await this.uploading;
    if (this.failed) throw this.failed;
    const index = this.parts.length + this.inFlight;
    const key = `${this.o.keyPrefix}${String(index).padStart(5, '0')}`;
    this.inFlight++;
    this.uploading = this.o.store.put(key, data, { sha256 }).then(
      (r) => {
        this.inFlight--;
        const p = { key, bytes: r.bytes, sha256 };
        this.parts.push(p);
        this.o.onPart?.(p);
      },
      (e: Error) => {
        this.inFlight--;
        this.fail(e);
      },
    );
  }

  private inFlight = 0;
}
