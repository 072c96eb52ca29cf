// Archives one timeline's WAL stream into the object store (layout.ts), so
// that WAL is there within a second of being written rather than when a
// 16 MiB segment fills (archive_command's granularity):
//
//   - Bytes from the stream fill the current segment's buffer.
//   - Every flushIntervalMs, what arrived since the last upload goes up as a
//     part. Only after it is stored is the position confirmed to the server
//     (the replication slot then lets Postgres recycle the WAL before it) and
//     reported (onArchived, which the daemon turns into wal.archived).
//   - When a segment fills, it goes up whole and its parts are deleted. A
//     segment already archived with other content is a conflict: two servers
//     wrote different WAL under one timeline. It is never overwritten; the
//     archiver stops with ArchiveConflictError and the alarm is raised.
//   - Past maxPartsPerSegment parts (a slow trickle of writes), the next
//     upload carries the whole segment so far and replaces the others, which
//     bounds the objects per segment.
//
// One store operation runs at a time, in order. A store failure ends run()
// with the error: nothing past the last confirmed position was promised, the
// server's slot still holds that WAL, and the caller starts again from it.

import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { formatLsn } from '../../fsm/index.js';
import type { Logger } from '../log.js';
import { isObjectStoreError, type ObjectStore } from '../object-store/index.js';
import { fullSegmentKey, partKey, segmentKeyPrefix } from './layout.js';
import { segmentOf, segmentOffset, segmentStart, walFileName, WAL_SEGMENT_BYTES } from './segments.js';

const brotliCompress = promisify(zlib.brotliCompress);
const brotliDecompress = promisify(zlib.brotliDecompress);
/** Quality 1: smaller and faster than gzip-1 on WAL here (storage-facts.md, section 2). */
export const WAL_BROTLI = { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 1, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: WAL_SEGMENT_BYTES } };

export const DEFAULT_FLUSH_INTERVAL_MS = 200;
/**
 * A commit's timestamp is taken before its record is written and flushed: a
 * commit stamped just before a sample's send time can lie past the flush end
 * that sample reports. Instants claimed for the archive stay this far behind.
 */
export const INSTANT_MARGIN_MS = 100;
export const DEFAULT_MAX_PARTS_PER_SEGMENT = 32;

export class ArchiveConflictError extends Error {
  override name = 'ArchiveConflictError';
}
export class ArchiveStreamError extends Error {
  override name = 'ArchiveStreamError';
}

/** What the stream gives (src/archive/wal-stream.ts). */
export type ArchiveEvent =
  | { kind: 'data'; startLsn: bigint; data: Buffer; serverWalEnd: bigint; serverTimeMs: number }
  | { kind: 'keepalive'; serverWalEnd: bigint; serverTimeMs: number }
  | { kind: 'end-of-timeline'; nextTimeline: number; nextStartLsn: bigint };

export interface Archived {
  timeline: number;
  /** Where this run's contiguous WAL began. */
  startLsn: bigint;
  /** Archived up to here (exclusive). */
  endLsn: bigint;
  /** Every commit made at or before this instant is archived (layout.ts). */
  atMs: number;
}

export interface TimelineArchiverOptions {
  store: ObjectStore;
  clusterPrefix: string;
  timeline: number;
  /** Where the stream starts: normally a segment's start. */
  startLsn: bigint;
  flushIntervalMs?: number;
  maxPartsPerSegment?: number;
  /** After each object is stored and the position confirmed. */
  onArchived?: (a: Archived) => void;
  logger?: Logger;
}

export type RunOutcome = { kind: 'end-of-timeline'; nextTimeline: number; nextStartLsn: bigint } | { kind: 'closed' };

export interface ArchiverStats {
  objects: number;
  storedBytes: number;
  walBytes: number;
}

export class TimelineArchiver {
  private readonly buf = Buffer.alloc(WAL_SEGMENT_BYTES);
  private segno: bigint;
  /** Offsets in the current segment: first byte held, bytes held up to, bytes stored up to. */
  private from: number;
  private filled: number;
  private uploaded: number;
  private partKeys: string[] = [];
  /** (server flush end, server time) pairs, oldest first: see instantFor. */
  private samples: { walEnd: bigint; atMs: number }[] = [];
  private lastInstantMs = 0;
  private chain: Promise<void> = Promise.resolve();
  private failed: unknown = undefined;
  private partQueued = false;
  /** Data messages not yet wholly stored: where each ended and when it arrived (wall clock), oldest first. */
  private arrivals: { end: bigint; atMs: number }[] = [];
  readonly stats: ArchiverStats = { objects: 0, storedBytes: 0, walBytes: 0 };

  constructor(private readonly opts: TimelineArchiverOptions) {
    this.segno = segmentOf(opts.startLsn);
    this.from = this.filled = this.uploaded = segmentOffset(opts.startLsn);
  }

  /** How long the oldest WAL received but not yet stored has waited (0 when all is stored). */
  lagMs(nowMs = Date.now()): number {
    const oldest = this.arrivals[0];
    return oldest === undefined ? 0 : Math.max(0, nowMs - oldest.atMs);
  }

  /** Where the next byte of the stream belongs. */
  get position(): bigint {
    return segmentStart(this.segno) + BigInt(this.filled);
  }

  /** Consumes `events` until the timeline ends, the stream closes, or a store operation fails (thrown). */
  async run(events: AsyncIterable<ArchiveEvent>, confirm: (lsn: bigint) => void): Promise<RunOutcome> {
    const timer = setInterval(() => this.queuePart(confirm), this.opts.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS);
    try {
      for await (const ev of events) {
        this.throwIfFailed();
        if (ev.kind === 'end-of-timeline') {
          await this.flushAll(confirm);
          return ev;
        }
        this.sample(ev.serverWalEnd, ev.serverTimeMs);
        if (ev.kind === 'data') await this.take(ev.startLsn, ev.data, confirm);
      }
      await this.flushAll(confirm);
      return { kind: 'closed' };
    } finally {
      clearInterval(timer);
      await this.chain.catch(() => {});
    }
  }

  private throwIfFailed(): void {
    if (this.failed !== undefined) throw this.failed;
  }

  private async flushAll(confirm: (lsn: bigint) => void): Promise<void> {
    this.enqueue(() => this.uploadPart(confirm));
    await this.chain;
    this.throwIfFailed();
  }

  private async take(startLsn: bigint, data: Buffer, confirm: (lsn: bigint) => void): Promise<void> {
    if (startLsn !== this.position) {
      throw new ArchiveStreamError(
        `the stream sent WAL at ${formatLsn(startLsn)} while the archive expected ${formatLsn(this.position)} on timeline ${this.opts.timeline}`,
      );
    }
    if (data.length > 0) this.arrivals.push({ end: startLsn + BigInt(data.length), atMs: Date.now() });
    let off = 0;
    while (off < data.length) {
      const n = Math.min(WAL_SEGMENT_BYTES - this.filled, data.length - off);
      data.copy(this.buf, this.filled, off, off + n);
      this.filled += n;
      off += n;
      this.stats.walBytes += n;
      if (this.filled === WAL_SEGMENT_BYTES) {
        // The socket waits (the iterator is not pulled) while the whole segment is stored.
        this.enqueue(() => this.completeSegment(confirm));
        await this.chain;
        this.throwIfFailed();
      }
    }
  }

  private sample(walEnd: bigint, atMs: number): void {
    const last = this.samples[this.samples.length - 1];
    if (last && last.walEnd === walEnd) last.atMs = Math.max(last.atMs, atMs);
    else this.samples.push({ walEnd, atMs });
  }

  /**
   * The newest instant at which the server's flushed WAL ended at or before
   * `end`: every commit made by then is archived once `end` is. Never goes
   * back (a lagging stream keeps the last instant it proved).
   */
  private instantFor(end: bigint): number {
    while (this.samples.length > 0 && this.samples[0]!.walEnd <= end) {
      this.lastInstantMs = Math.max(this.lastInstantMs, this.samples.shift()!.atMs - INSTANT_MARGIN_MS);
    }
    return Math.max(0, this.lastInstantMs);
  }

  private enqueue(op: () => Promise<void>): void {
    this.chain = this.chain.then(async () => {
      if (this.failed !== undefined) return;
      try {
        await op();
      } catch (e) {
        this.failed = e;
      }
    });
  }

  private queuePart(confirm: (lsn: bigint) => void): void {
    if (this.partQueued || this.filled === this.uploaded || this.failed !== undefined) return;
    this.partQueued = true;
    this.enqueue(async () => {
      this.partQueued = false;
      await this.uploadPart(confirm);
    });
  }

  private async uploadPart(confirm: (lsn: bigint) => void): Promise<void> {
    const end = this.filled;
    if (end === this.uploaded) return;
    // Too many parts: this one carries everything held, and replaces the rest.
    const start = this.partKeys.length >= (this.opts.maxPartsPerSegment ?? DEFAULT_MAX_PARTS_PER_SEGMENT) ? this.from : this.uploaded;
    const endLsn = segmentStart(this.segno) + BigInt(end);
    const atMs = this.instantFor(endLsn);
    const key = partKey(this.opts.clusterPrefix, this.opts.timeline, this.segno, start, end, atMs);
    await this.putCompressed(key, this.buf.subarray(start, end));
    if (start === this.from && this.partKeys.length > 0) {
      await this.opts.store.delete(this.partKeys);
      this.partKeys = [];
    }
    this.partKeys.push(key);
    this.uploaded = end;
    this.done(endLsn, atMs, confirm);
  }

  private async completeSegment(confirm: (lsn: bigint) => void): Promise<void> {
    const segno = this.segno;
    const endLsn = segmentStart(segno + 1n);
    const atMs = this.instantFor(endLsn);
    const prefix = segmentKeyPrefix(this.opts.clusterPrefix, this.opts.timeline, segno);
    const existing: string[] = [];
    for await (const o of this.opts.store.list(prefix)) existing.push(o.key);
    const whole = existing.find((k) => k.slice(prefix.length).startsWith('full.'));
    if (whole !== undefined && this.from === 0) {
      await this.checkSame(whole, segno);
    } else if (this.from === 0) {
      await this.putCompressed(fullSegmentKey(this.opts.clusterPrefix, this.opts.timeline, segno, atMs), this.buf);
    } else if (this.filled > this.uploaded) {
      // Started mid-segment (never by the daemon, which starts at a segment's
      // start): the bytes before `from` are not held, so the tail goes up as a part.
      await this.uploadPart(confirm);
    }
    if (this.from === 0) {
      const stale = existing.filter((k) => k !== whole);
      if (stale.length > 0) await this.opts.store.delete(stale);
      await this.opts.store.delete(this.partKeys);
    }
    this.partKeys = [];
    this.segno = segno + 1n;
    this.from = this.filled = this.uploaded = 0;
    this.done(endLsn, atMs, confirm);
  }

  /** A whole copy is already stored (a restart after the upload): the same bytes, or a conflict. */
  private async checkSame(key: string, segno: bigint): Promise<void> {
    const got = await this.opts.store.get(key);
    const chunks: Buffer[] = [];
    for await (const c of got.body) chunks.push(c as Buffer);
    let theirs: Buffer;
    try {
      theirs = await brotliDecompress(Buffer.concat(chunks));
    } catch (e) {
      throw new ArchiveConflictError(
        `${key} does not decompress (${(e as Error).message}); segment ${walFileName(this.opts.timeline, segno)} is archived damaged and is not overwritten`,
      );
    }
    if (!theirs.equals(this.buf)) {
      throw new ArchiveConflictError(
        `segment ${walFileName(this.opts.timeline, segno)} is already archived (${key}) with different content: two servers wrote different WAL on timeline ${this.opts.timeline}; the archived copy is kept and archiving stops until this is looked at`,
      );
    }
  }

  private async putCompressed(key: string, raw: Buffer): Promise<void> {
    const body = await brotliCompress(raw, WAL_BROTLI);
    const sha = createHash('sha256').update(body).digest('hex');
    try {
      await this.opts.store.putIfAbsent(key, body, sha);
    } catch (e) {
      // The key names its bytes and instant: another body under it is a retried upload whose compressor differed; compare what it holds.
      if (!isObjectStoreError(e, 'conflict')) throw e;
      const got = await this.opts.store.get(key);
      const chunks: Buffer[] = [];
      for await (const c of got.body) chunks.push(c as Buffer);
      if (!(await brotliDecompress(Buffer.concat(chunks))).equals(raw))
        throw new ArchiveConflictError(`${key} is already archived with different WAL; it is not overwritten`);
    }
    this.stats.objects++;
    this.stats.storedBytes += body.length;
  }

  private done(endLsn: bigint, atMs: number, confirm: (lsn: bigint) => void): void {
    while (this.arrivals.length > 0 && this.arrivals[0]!.end <= endLsn) this.arrivals.shift();
    confirm(endLsn);
    this.opts.onArchived?.({ timeline: this.opts.timeline, startLsn: this.opts.startLsn, endLsn, atMs });
  }
}
