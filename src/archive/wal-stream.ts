// A physical WAL streaming client: START_REPLICATION on a `replication: true`
// connection, what pg_receivewal does, as an async iterator of the server's
// frames. It feeds the continuous WAL archiver; storing the bytes is the
// caller's business, and so is restarting after an error or a timeline end.
//
// The protocol (PostgreSQL 17, "Streaming Replication Protocol"):
//   - START_REPLICATION [SLOT s] PHYSICAL X/X TIMELINE n answers CopyBothResponse,
//     then CopyData frames: 'w' XLogData (dataStart, walEnd, sendTime, bytes) and
//     'k' keepalive (walEnd, sendTime, replyRequested). We send 'r' standby status
//     updates (write, flush, apply, clientTime, replyRequested) as CopyData; the
//     flush position is what moves a physical slot's restart_lsn.
//   - Some refusals come before CopyBothResponse (a start not on the requested
//     timeline, a missing or busy slot), others after it, as an ErrorResponse in
//     the middle of the copy (WAL already removed, a start ahead of the flush
//     position): both end up as a WalStreamError with a `reason`.
//   - On a historic timeline the server stops at the switch point with CopyDone;
//     we answer CopyDone, and it sends one row (next_tli, next_tli_startpos),
//     CommandComplete and ReadyForQuery: the 'end-of-timeline' event.
//
// Like BaseBackupCommand (src/postgres/basebackup.ts) this is a pg Submittable:
// pg's Client hands it every message of the command, CopyData chunks are views
// into the parser's reused buffer (copied before they are queued), and when the
// consumer falls behind the socket is paused (TCP backpressure to the walsender).

import pg from 'pg';
import type { CopyDataMessage, DataRowMessage } from 'pg-protocol/dist/messages.js';

import { formatLsn, parseLsn } from '../../fsm/index.js';
import { quoteIdent, quoteLiteral } from '../postgres/query.js';

export interface WalConnOptions {
  host: string;
  port: number;
  /** A role with REPLICATION (ogel_replication). */
  user: string;
  password?: string | undefined;
  /** Shown in pg_stat_replication.application_name (default 'ogel-wal-stream'). */
  applicationName?: string | undefined;
  /** Extra pg client settings (ssl, keepAlive, connectionTimeoutMillis). */
  client?: Partial<pg.ClientConfig> | undefined;
  signal?: AbortSignal | undefined;
}

export interface WalStreamOptions extends WalConnOptions {
  /** START_REPLICATION SLOT <slot>: the slot keeps WAL until confirm() passes it. */
  slot: string | null;
  timeline: number;
  /** Where streaming starts, taken as is (pg_receivewal passes a segment start). */
  startLsn: bigint;
  /** How often a status update is sent unprompted (default 1000). */
  statusIntervalMs?: number | undefined;
  /** Queued bytes the consumer has not pulled at which the socket pauses (default 8 MiB). */
  bufferBytesMax?: number | undefined;
  /**
   * Silence from the server (while the socket is not paused) after which the
   * stream fails with reason 'connection' (default 30 s); at half of it a status
   * update asks for a reply, as the walreceiver does with wal_receiver_timeout.
   * A peer that vanished without a FIN would otherwise be a hang.
   */
  receiveTimeoutMs?: number | undefined;
}

export type WalStreamEvent =
  | { kind: 'data'; startLsn: bigint; data: Buffer; serverWalEnd: bigint; serverTimeMs: number }
  | { kind: 'keepalive'; serverWalEnd: bigint; serverTimeMs: number }
  | { kind: 'end-of-timeline'; nextTimeline: number; nextStartLsn: bigint };

/**
 * Why a stream failed. 'wal-removed' is a gap: the server no longer has the WAL
 * asked for, so the archive cannot be continuous from there.
 */
export type WalStreamErrorReason =
  | 'wal-removed' // requested WAL segment ... has already been removed
  | 'ahead-of-flush' // requested starting point ... is ahead of the WAL flush position
  | 'not-in-history' // requested starting point (or timeline) ... is not in this server's history
  | 'slot' // the slot is missing, busy or logical
  | 'server' // any other error the server reported
  | 'connection' // could not connect, connection lost, server shut down, receive timeout
  | 'protocol' // a frame we cannot read
  | 'aborted'; // the signal fired

export class WalStreamError extends Error {
  override name = 'WalStreamError';
  readonly reason: WalStreamErrorReason;
  /** The server's SQLSTATE when the server reported the error. */
  readonly sqlState: string | undefined;
  constructor(reason: WalStreamErrorReason, message: string, opts: { sqlState?: string | undefined; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.reason = reason;
    this.sqlState = opts.sqlState;
  }
}

/** Postgres timestamps count microseconds from 2000-01-01 00:00 UTC. */
const PG_EPOCH_UNIX_MS = 946_684_800_000;
const XLOG_DATA_HEADER_BYTES = 25;
const KEEPALIVE_BYTES = 18;
export const STATUS_UPDATE_BYTES = 34;
/** A queued keepalive counts as this many bytes, so a stalled consumer cannot queue them without bound either. */
const EVENT_OVERHEAD_BYTES = 64;
const CLOSE_TIMEOUT_MS = 2_000;
const SLOT_NAME = /^[a-z0-9_]{1,63}$/;

export type WalFrame =
  | { kind: 'data'; startLsn: bigint; serverWalEnd: bigint; serverTimeMs: number; data: Buffer }
  | { kind: 'keepalive'; serverWalEnd: bigint; serverTimeMs: number; replyRequested: boolean };

/** Decodes one CopyData payload of the stream; `data` is a view into `chunk`. Throws a 'protocol' WalStreamError. */
export function decodeFrame(chunk: Buffer): WalFrame {
  const type = chunk[0];
  if (type === 0x77 /* 'w' */) {
    if (chunk.length < XLOG_DATA_HEADER_BYTES)
      throw protocolError(`XLogData ('w') frame of ${chunk.length} bytes, shorter than its ${XLOG_DATA_HEADER_BYTES}-byte header`);
    return {
      kind: 'data',
      startLsn: chunk.readBigUInt64BE(1),
      serverWalEnd: chunk.readBigUInt64BE(9),
      serverTimeMs: pgTimeToUnixMs(chunk.readBigInt64BE(17)),
      data: chunk.subarray(XLOG_DATA_HEADER_BYTES),
    };
  }
  if (type === 0x6b /* 'k' */) {
    if (chunk.length !== KEEPALIVE_BYTES) throw protocolError(`keepalive ('k') frame of ${chunk.length} bytes, expected ${KEEPALIVE_BYTES}`);
    return {
      kind: 'keepalive',
      serverWalEnd: chunk.readBigUInt64BE(1),
      serverTimeMs: pgTimeToUnixMs(chunk.readBigInt64BE(9)),
      replyRequested: chunk[17] !== 0,
    };
  }
  throw protocolError(`unknown CopyData frame type ${type === undefined ? '(empty frame)' : `0x${type.toString(16).padStart(2, '0')}`}`);
}

/** A standby status update ('r'): positions are exclusive ends (the last byte + 1). */
export function encodeStatusUpdate(u: { writtenLsn: bigint; flushedLsn: bigint; appliedLsn: bigint; clientTimeMs: number; replyRequested: boolean }): Buffer {
  const b = Buffer.alloc(STATUS_UPDATE_BYTES);
  b[0] = 0x72; // 'r'
  b.writeBigUInt64BE(u.writtenLsn, 1);
  b.writeBigUInt64BE(u.flushedLsn, 9);
  b.writeBigUInt64BE(u.appliedLsn, 17);
  b.writeBigInt64BE(BigInt(Math.round(u.clientTimeMs - PG_EPOCH_UNIX_MS)) * 1000n, 25);
  b[33] = u.replyRequested ? 1 : 0;
  return b;
}

function pgTimeToUnixMs(us: bigint): number {
  return Number(us / 1000n) + PG_EPOCH_UNIX_MS;
}

function protocolError(message: string): WalStreamError {
  return new WalStreamError('protocol', `WAL stream: ${message}`);
}

/** The start of the WAL segment holding `lsn`. */
export function segmentStart(lsn: bigint, segmentBytes: number): bigint {
  return lsn - (lsn % BigInt(segmentBytes));
}

/** The WAL file name of the segment holding `lsn` on `timeline`, e.g. 000000010000000000000003. */
export function walFileName(timeline: number, lsn: bigint, segmentBytes: number): string {
  const segNo = lsn / BigInt(segmentBytes);
  const segsPerId = 0x1_0000_0000n / BigInt(segmentBytes);
  const hex = (v: bigint | number) => v.toString(16).toUpperCase().padStart(8, '0');
  return hex(timeline) + hex(segNo / segsPerId) + hex(segNo % segsPerId);
}

/** Maps an error from pg (or the socket) to a WalStreamError. */
function classify(err: unknown, during: string): WalStreamError {
  if (err instanceof WalStreamError) return err;
  const e = err as { message?: string; code?: string; detail?: string; severity?: string };
  const message = `${during}: ${e.message ?? String(err)}${e.detail ? ` (${e.detail})` : ''}`;
  if (!(err instanceof pg.DatabaseError)) return new WalStreamError('connection', message, { cause: err });
  const text = e.message ?? '';
  const reason: WalStreamErrorReason = /requested WAL segment \S+ has already been removed/.test(text)
    ? 'wal-removed'
    : /is ahead of the WAL flush position/.test(text)
      ? 'ahead-of-flush'
      : /is not in this server's history/.test(text)
        ? 'not-in-history'
        : /replication slot/.test(text)
          ? 'slot'
          : e.severity === 'FATAL' || e.severity === 'PANIC'
            ? 'connection' // the server ends the session (terminated, shutting down)
            : 'server';
  return new WalStreamError(reason, message, { sqlState: e.code, cause: err });
}

/**
 * A connected physical replication client (replication=true): it takes
 * IDENTIFY_SYSTEM, TIMELINE_HISTORY, SHOW and START_REPLICATION, no SQL.
 * The signal ends the connection, while connecting or later.
 */
export async function openReplicationClient(o: WalConnOptions): Promise<pg.Client> {
  const config: pg.ClientConfig & { replication: string } = {
    connectionTimeoutMillis: 10_000,
    keepAlive: true,
    ...o.client,
    host: o.host,
    port: o.port,
    user: o.user,
    password: o.password,
    application_name: o.applicationName ?? 'ogel-wal-stream',
    replication: 'true',
  };
  const client = new pg.Client(config);
  client.on('error', () => {}); // the pending command fails instead
  const signal = o.signal;
  if (signal?.aborted) throw new WalStreamError('aborted', 'WAL stream aborted before connecting', { cause: signal.reason });
  const destroy = () => (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
  signal?.addEventListener('abort', destroy, { once: true });
  client.once('end', () => signal?.removeEventListener('abort', destroy));
  try {
    await client.connect();
  } catch (e) {
    destroy();
    if (signal?.aborted) throw new WalStreamError('aborted', 'WAL stream aborted while connecting', { cause: signal.reason });
    throw classify(e, `connecting to ${o.host}:${o.port}`);
  }
  return client;
}

/** What runs one SQL text: a pg Client or Pool (a replication connection for the replication commands), or PostgresInstance. */
export interface SqlConn {
  query<R extends pg.QueryResultRow>(sql: string): Promise<{ rows: R[] }>;
}

/** IDENTIFY_SYSTEM on a replication connection. */
export async function identifySystem(conn: SqlConn): Promise<{ systemId: string; timeline: number; xlogPos: bigint }> {
  const row = (await conn.query<{ systemid: string; timeline: number | string; xlogpos: string }>('IDENTIFY_SYSTEM')).rows[0];
  const timeline = Number(row?.timeline);
  const xlogPos = parseLsn(row?.xlogpos ?? '');
  if (!row || !/^\d+$/.test(String(row.systemid)) || !Number.isInteger(timeline) || timeline < 1 || xlogPos === null)
    throw new WalStreamError('protocol', `IDENTIFY_SYSTEM returned ${JSON.stringify(row)}`);
  return { systemId: String(row.systemid), timeline, xlogPos };
}

/**
 * TIMELINE_HISTORY on a replication connection: the history file of `timeline`
 * (name and bytes) as the server holds it, for the archive. pg hands the column
 * over as UTF-8 text; a file that is not valid UTF-8 (a restore point name in
 * another encoding) could not be reproduced byte for byte, so it is refused.
 */
export async function timelineHistory(conn: pg.ClientBase, timeline: number): Promise<{ fileName: string; content: Buffer }> {
  if (!Number.isInteger(timeline) || timeline < 2) throw new RangeError(`timeline ${timeline} has no history file (timelines >= 2 do)`);
  const raw = { getTypeParser: () => (v: string) => v }; // the content column is typed bytea but sent as the file's raw bytes
  const row = (await conn.query<{ filename: string; content: string }>({ text: `TIMELINE_HISTORY ${timeline}`, types: raw })).rows[0];
  if (!row || !/^[0-9A-F]{8}\.history$/.test(row.filename))
    throw new WalStreamError('protocol', `TIMELINE_HISTORY ${timeline} returned ${JSON.stringify(row)}`);
  if (row.content.includes('\uFFFD')) throw new WalStreamError('protocol', `${row.filename} is not valid UTF-8; it cannot be copied byte for byte`);
  return { fileName: row.filename, content: Buffer.from(row.content, 'utf8') };
}

/** The server's WAL segment size in bytes (SHOW wal_segment_size: '16MB'). Works on any connection. */
export async function walSegmentBytes(conn: SqlConn): Promise<number> {
  const text = String(Object.values((await conn.query('SHOW wal_segment_size')).rows[0] ?? {})[0]);
  const m = /^(\d+)(B|kB|MB|GB)$/.exec(text);
  if (!m) throw new WalStreamError('protocol', `SHOW wal_segment_size returned ${JSON.stringify(text)}`);
  return Number(m[1]) * { B: 1, kB: 1 << 10, MB: 1 << 20, GB: 1 << 30 }[m[2] as 'B'];
}

/**
 * Creates the physical slot `name` with its WAL reserved now
 * (pg_create_physical_replication_slot(name, true)), or finds it. `sql` is an
 * SQL connection (a normal one or replication=database). This works on a
 * standby in recovery too: a physical slot there keeps the standby's own WAL,
 * from its last restartpoint's redo position.
 */
export async function ensurePhysicalSlot(sql: SqlConn, name: string): Promise<'created' | 'exists'> {
  assertSlotName(name);
  const look = async () =>
    (await sql.query<{ slot_type: string }>(`SELECT slot_type FROM pg_replication_slots WHERE slot_name = ${quoteLiteral(name)}`)).rows[0];
  let row = await look();
  if (!row) {
    try {
      await sql.query(`SELECT pg_create_physical_replication_slot(${quoteLiteral(name)}, true)`);
      return 'created';
    } catch (e) {
      if ((e as { code?: string }).code !== '42710') throw e; // duplicate_object: created meanwhile
      row = await look();
    }
  }
  if (row?.slot_type !== 'physical') throw new WalStreamError('slot', `replication slot ${name} exists but is a ${row?.slot_type ?? 'vanished'} slot`);
  return 'exists';
}

/**
 * pg_replication_slot_advance: moves the slot's restart_lsn forward to `lsn`
 * and resolves with where it is now. A target at or before the slot resolves
 * with the slot's position (the server refuses to go back: "cannot advance
 * replication slot to X, minimum is Y"). The server clamps the target to its
 * flush position, or on a standby in recovery to its replay position
 * (pg_last_wal_replay_lsn()); advancing works in recovery. A slot in use by a
 * stream cannot be advanced ("is active for PID", 55006): while streaming,
 * confirm() moves it instead. The new position reaches disk at the next
 * checkpoint (restartpoint on a standby); a crash before it leaves the slot
 * where it was, which only keeps more WAL.
 */
export async function advanceSlot(sql: SqlConn, name: string, lsn: bigint): Promise<bigint> {
  assertSlotName(name);
  let text: string | null | undefined;
  try {
    const r = await sql.query<{ end_lsn: string }>(
      `SELECT end_lsn::text AS end_lsn FROM pg_replication_slot_advance(${quoteLiteral(name)}, ${quoteLiteral(formatLsn(lsn))}::pg_lsn)`,
    );
    text = r.rows[0]?.end_lsn;
  } catch (e) {
    if ((e as { code?: string }).code !== '55000' || !/minimum is/.test((e as Error).message)) throw e;
    const r = await sql.query<{ l: string | null }>(`SELECT restart_lsn::text AS l FROM pg_replication_slots WHERE slot_name = ${quoteLiteral(name)}`);
    text = r.rows[0]?.l;
  }
  const end = parseLsn(text ?? '');
  if (end === null) throw new WalStreamError('protocol', `advancing replication slot ${name} left it at ${JSON.stringify(text)}`);
  return end;
}

function assertSlotName(name: string): void {
  if (!SLOT_NAME.test(name)) throw new RangeError(`${JSON.stringify(name)} is not a replication slot name (1-63 of [a-z0-9_])`);
}

type Phase = 'starting' | 'streaming' | 'ending' | 'done';

/**
 * One START_REPLICATION. Open with WalStream.open(), iterate once (one
 * consumer), confirm() what is stored, close() when done. The iterator ends
 * (done) after 'end-of-timeline' or close(); it throws a WalStreamError on any
 * failure, after the events received before it ('aborted' discards them).
 *
 * After 'end-of-timeline' the caller restarts on `nextTimeline` at the START OF
 * THE SEGMENT holding `nextStartLsn`, as pg_receivewal does (receivelog.c,
 * ReceiveXlogStream): the server allows it (walsender.c accepts a start before
 * the switch point on the new timeline), and the new timeline's file for that
 * segment is then archived whole, not as a partial file that begins mid-segment.
 * WAL received on the old timeline past `nextStartLsn` (possible from a standby
 * promoted while streaming) is not part of that timeline.
 *
 * A server shutting down (smart or fast) ends each walsender only once the
 * position reported as flushed equals what it sent (walsender.c, WalSndDone);
 * our status updates keep wal_sender_timeout from firing, so an archiver that
 * stops confirming holds up the shutdown until it confirms or close()s. Then
 * the stream fails with reason 'connection' ("it is shutting down").
 */
export class WalStream implements AsyncIterable<WalStreamEvent> {
  private client: pg.Client | undefined;
  private connection: pg.Connection | undefined;
  private phase: Phase = 'starting';
  private readonly queue: WalStreamEvent[] = [];
  private queuedBytes = 0;
  private waiter: { resolve: (r: IteratorResult<WalStreamEvent>) => void; reject: (e: Error) => void } | undefined;
  /** Set once the stream is over: an error to throw, or null for a normal end. */
  private ending: WalStreamError | null | undefined;
  private started!: { resolve: () => void; reject: (e: Error) => void };
  /** The exclusive end of the WAL received so far: where the next XLogData must start. */
  private receivedEnd: bigint;
  private confirmedLsn = 0n;
  private paused = false;
  /** Between CopyBothResponse and the server's CopyDone (or an error): status updates may be sent. */
  private copyOpen = false;
  private lastHeardMs = performance.now();
  private pinged = false;
  private serverCommandComplete = false;
  private nextTimeline: { nextTimeline: number; nextStartLsn: bigint } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  private readonly detach: Array<() => void> = [];
  private readonly statusIntervalMs: number;
  private readonly bufferBytesMax: number;
  private readonly receiveTimeoutMs: number;

  private constructor(private readonly opts: WalStreamOptions) {
    this.receivedEnd = opts.startLsn;
    this.statusIntervalMs = opts.statusIntervalMs ?? 1000;
    this.bufferBytesMax = opts.bufferBytesMax ?? 8 << 20;
    this.receiveTimeoutMs = opts.receiveTimeoutMs ?? 30_000;
  }

  /** Connects and sends START_REPLICATION; rejects with a WalStreamError when the server refuses before streaming. */
  static async open(opts: WalStreamOptions): Promise<WalStream> {
    if (!Number.isInteger(opts.timeline) || opts.timeline < 1 || opts.timeline > 0xffffffff)
      throw new RangeError(`timeline ${opts.timeline} is not a timeline ID`);
    if (opts.slot !== null) assertSlotName(opts.slot);
    for (const [k, v] of [
      ['statusIntervalMs', opts.statusIntervalMs],
      ['bufferBytesMax', opts.bufferBytesMax],
      ['receiveTimeoutMs', opts.receiveTimeoutMs],
    ] as const)
      if (v !== undefined && !(v > 0)) throw new RangeError(`${k} must be positive, not ${v}`);
    const command = `START_REPLICATION ${opts.slot === null ? '' : `SLOT ${quoteIdent(opts.slot)} `}PHYSICAL ${formatLsn(opts.startLsn)} TIMELINE ${opts.timeline}`;
    const stream = new WalStream(opts);
    const client = await openReplicationClient(opts);
    stream.client = client;
    const started = new Promise<void>((resolve, reject) => (stream.started = { resolve, reject }));
    const onAbort = () =>
      stream.fail(new WalStreamError('aborted', `WAL stream aborted: ${String(opts.signal?.reason ?? 'signal')}`, { cause: opts.signal?.reason }));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    stream.detach.push(() => opts.signal?.removeEventListener('abort', onAbort));
    client.query(stream.submittable(command) as unknown as pg.QueryConfig);
    if (opts.signal?.aborted) onAbort();
    try {
      await started;
    } catch (e) {
      await stream.closing; // refused: no connection is left behind
      throw e;
    }
    return stream;
  }

  /** Bytes received and not yet pulled by the consumer. */
  get bufferedBytes(): number {
    return this.queuedBytes;
  }

  /** The highest position passed to confirm(). */
  get confirmed(): bigint {
    return this.confirmedLsn;
  }

  /**
   * The consumer has durably stored the WAL up to `lsn` (exclusive end). It is
   * sent as the write, flush and apply positions of the next status update; with
   * a slot, the flush position becomes the slot's restart_lsn. Lower values than
   * before are ignored; confirming past what was received is a caller bug.
   */
  confirm(lsn: bigint): void {
    if (lsn > this.receivedEnd) throw new RangeError(`confirm(${formatLsn(lsn)}) is past the WAL received (${formatLsn(this.receivedEnd)})`);
    if (lsn > this.confirmedLsn) this.confirmedLsn = lsn;
  }

  [Symbol.asyncIterator](): AsyncIterator<WalStreamEvent> {
    return {
      next: () => this.pull(),
      return: async () => {
        await this.close();
        return { value: undefined, done: true };
      },
    };
  }

  /** Ends the stream (a pending next() resolves done) and the connection; sends the last confirmed position first. */
  close(): Promise<void> {
    if (this.ending === undefined) {
      if (this.copyOpen) this.sendStatus(false); // the last confirmed position reaches the slot
      this.dropQueue();
      this.finish(null);
    }
    this.closing ??= this.closeConnection();
    return this.closing;
  }

  private pull(): Promise<IteratorResult<WalStreamEvent>> {
    const ev = this.queue.shift();
    if (ev) {
      this.queuedBytes -= eventBytes(ev);
      if (this.paused && this.queuedBytes <= this.bufferBytesMax / 2) {
        this.paused = false;
        this.lastHeardMs = performance.now(); // silence while paused was ours
        this.connection?.stream.resume();
      }
      return Promise.resolve({ value: ev, done: false });
    }
    if (this.ending === null) return Promise.resolve({ value: undefined, done: true });
    if (this.ending) {
      const err = this.ending;
      this.ending = null; // thrown once; the iterator is done after it
      return Promise.reject(err);
    }
    if (this.waiter) return Promise.reject(new Error('WalStream has one consumer: next() called before the previous one settled'));
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  private push(ev: WalStreamEvent): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve({ value: ev, done: false });
      return;
    }
    this.queue.push(ev);
    this.queuedBytes += eventBytes(ev);
    if (!this.paused && this.queuedBytes >= this.bufferBytesMax) {
      this.paused = true;
      this.connection?.stream.pause();
    }
  }

  /** The stream is over: `err` null for a normal end. Wakes the consumer; the connection is closed separately. */
  private finish(err: WalStreamError | null): void {
    if (this.ending !== undefined) return;
    this.phase = 'done';
    this.copyOpen = false;
    this.ending = err;
    clearInterval(this.timer);
    for (const d of this.detach.splice(0)) d();
    this.started.resolve(); // a no-op when fail() rejected it first
    const w = this.waiter; // a waiter means the queue is empty
    if (!w) return;
    this.waiter = undefined;
    if (err === null) return w.resolve({ value: undefined, done: true });
    this.ending = null; // thrown once
    w.reject(err);
  }

  /** A failure: the stream errors (open() rejects if it has not resolved) and the connection is dropped. */
  private fail(err: WalStreamError): void {
    if (this.ending !== undefined) return;
    if (this.phase === 'starting') this.started.reject(err);
    if (err.reason === 'aborted') this.dropQueue(); // the consumer asked to stop: no more events
    this.finish(err);
    // After an error the server reported, the session is intact: closeConnection
    // ends it with Terminate. Anything else leaves it in an unknown state: cut it.
    if (err.sqlState === undefined) this.connection?.stream.destroy();
    this.closing ??= this.closeConnection();
  }

  private dropQueue(): void {
    this.queue.length = 0;
    this.queuedBytes = 0;
  }

  private async closeConnection(): Promise<void> {
    const client = this.client;
    if (!client) return;
    if (this.paused) this.connection?.stream.resume(); // a paused socket would never see the server's close
    this.paused = false;
    const ended = new Promise<void>((resolve) => {
      if ((client as unknown as { _ended?: boolean })._ended) resolve();
      else client.once('end', () => resolve());
    });
    // Terminate ('X') ends the walsender at once; a server that does not close its side is cut off.
    void client.end().catch(() => {});
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([ended, new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_TIMEOUT_MS)))]);
    clearTimeout(timer);
    this.connection?.stream.destroy();
  }

  private sendStatus(replyRequested: boolean): void {
    const conn = this.connection as unknown as { sendCopyFromChunk(b: Buffer): void } | undefined;
    if (!conn || !this.copyOpen || !this.connection?.stream.writable) return;
    const c = this.confirmedLsn;
    conn.sendCopyFromChunk(encodeStatusUpdate({ writtenLsn: c, flushedLsn: c, appliedLsn: c, clientTimeMs: Date.now(), replyRequested }));
  }

  private tick(): void {
    if (this.phase !== 'streaming') return;
    if (this.paused) this.lastHeardMs = performance.now();
    const silentMs = performance.now() - this.lastHeardMs;
    if (silentMs >= this.receiveTimeoutMs) {
      this.fail(new WalStreamError('connection', `WAL stream: no message from ${this.opts.host}:${this.opts.port} for ${Math.round(silentMs)} ms`));
      return;
    }
    const ping = silentMs >= this.receiveTimeoutMs / 2 && !this.pinged;
    if (ping) this.pinged = true;
    this.sendStatus(ping);
  }

  private onCopyBoth(): void {
    if (this.phase !== 'starting') return this.fail(protocolError(`CopyBothResponse in phase ${this.phase}`));
    this.phase = 'streaming';
    this.copyOpen = true;
    this.lastHeardMs = performance.now();
    this.timer = setInterval(() => this.tick(), this.statusIntervalMs);
    this.timer.unref();
    this.sendStatus(false);
    this.started.resolve();
  }

  private onCopyData(msg: CopyDataMessage): void {
    if (this.phase !== 'streaming') return this.fail(protocolError(`CopyData in phase ${this.phase}`));
    this.lastHeardMs = performance.now();
    this.pinged = false;
    let frame: WalFrame;
    try {
      frame = decodeFrame(msg.chunk);
    } catch (e) {
      return this.fail(e as WalStreamError);
    }
    if (frame.kind === 'keepalive') {
      if (frame.replyRequested) this.sendStatus(false);
      return this.push({ kind: 'keepalive', serverWalEnd: frame.serverWalEnd, serverTimeMs: frame.serverTimeMs });
    }
    if (frame.startLsn !== this.receivedEnd)
      return this.fail(protocolError(`XLogData starts at ${formatLsn(frame.startLsn)}, expected ${formatLsn(this.receivedEnd)} (the end of the WAL received)`));
    this.receivedEnd = frame.startLsn + BigInt(frame.data.length);
    // A copy: the chunk is a view into the parser's buffer, reused for the next message.
    this.push({ kind: 'data', startLsn: frame.startLsn, data: Buffer.from(frame.data), serverWalEnd: frame.serverWalEnd, serverTimeMs: frame.serverTimeMs });
  }

  /** The server left copy mode: the end of a historic timeline. Answer CopyDone; the next timeline follows as a row. */
  private onServerCopyDone(): void {
    if (this.phase !== 'streaming') return this.fail(protocolError(`CopyDone in phase ${this.phase}`));
    this.phase = 'ending';
    this.copyOpen = false;
    clearInterval(this.timer);
    (this.connection as unknown as { endCopyFrom(): void }).endCopyFrom();
  }

  private onDataRow(msg: DataRowMessage): void {
    const [tliText, lsnText] = msg.fields as Array<string | null>;
    const nextTimeline = Number(tliText);
    const nextStartLsn = parseLsn(lsnText ?? '');
    if (this.phase === 'streaming' || !Number.isInteger(nextTimeline) || nextTimeline <= this.opts.timeline || nextStartLsn === null)
      return this.fail(protocolError(`unexpected row ${JSON.stringify(msg.fields)} in phase ${this.phase}`));
    // As pg_receivewal checks: a stop before the switch point would leave a hole.
    // Past it is possible (a cascading walsender whose server was promoted may
    // have sent the head of a record that never completed on the old timeline).
    if (nextStartLsn > this.receivedEnd)
      return this.fail(
        protocolError(
          `the server stopped streaming timeline ${this.opts.timeline} at ${formatLsn(this.receivedEnd)}, but says timeline ${nextTimeline} begins at ${formatLsn(nextStartLsn)}`,
        ),
      );
    this.nextTimeline = { nextTimeline, nextStartLsn };
  }

  private onReadyForQuery(): void {
    if (this.ending !== undefined) return;
    const next = this.nextTimeline;
    if (!next) return this.fail(protocolError('START_REPLICATION ended without naming a next timeline'));
    // On a historic timeline starting at its switch point, no copy happens: open() resolves with just this event.
    this.phase = 'ending';
    this.push({ kind: 'end-of-timeline', ...next });
    this.finish(null);
    this.closing ??= this.closeConnection();
  }

  /** The pg Submittable for START_REPLICATION: pg's Client routes this command's messages here. */
  private submittable(text: string) {
    const guard =
      <A extends unknown[]>(f: (...a: A) => void) =>
      (...a: A) => {
        // We run inside the socket's data handler: a throw here would crash the process.
        try {
          f(...a);
        } catch (e) {
          this.fail(e instanceof WalStreamError ? e : protocolError(`internal error: ${(e as Error).message}`));
        }
      };
    return {
      text,
      submit: (connection: pg.Connection) => {
        this.connection = connection;
        const onCopyBoth = guard(() => this.onCopyBoth());
        const onCopyDone = guard(() => this.onServerCopyDone());
        connection.on('replicationStart', onCopyBoth); // pg's name for CopyBothResponse
        connection.on('copyDone', onCopyDone);
        this.detach.push(() => {
          connection.off('replicationStart', onCopyBoth);
          connection.off('copyDone', onCopyDone);
        });
        connection.query(text);
      },
      handleCopyData: guard((msg: CopyDataMessage) => this.onCopyData(msg)),
      handleRowDescription: () => {},
      handleDataRow: guard((msg: DataRowMessage) => this.onDataRow(msg)),
      handleCommandComplete: () => {
        this.serverCommandComplete = true;
      },
      handleEmptyQuery: () => {},
      handlePortalSuspended: () => {},
      handleCopyInResponse: guard(() => this.fail(protocolError('CopyInResponse to START_REPLICATION'))),
      // A Submittable that errors never sees ReadyForQuery (pg drops the active query): fail here.
      handleError: (err: Error) => {
        // A walsender that shuts down sends CommandComplete, then closes the connection.
        const where = `START_REPLICATION on ${this.opts.host}:${this.opts.port}${this.serverCommandComplete ? ' (the server ended streaming: it is shutting down)' : ''}`;
        this.fail(classify(err, where));
      },
      handleReadyForQuery: guard(() => this.onReadyForQuery()),
    };
  }
}

function eventBytes(ev: WalStreamEvent): number {
  return ev.kind === 'data' ? ev.data.length + EVENT_OVERHEAD_BYTES : EVENT_OVERHEAD_BYTES;
}
