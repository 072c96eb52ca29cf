// The WAL streaming client against real PostgreSQL 17 servers (a primary, a
// standby, a promoted standby), then against a scripted fake walsender for what
// a real server does not do on demand: malformed frames, a cut connection, a
// consumer that stops pulling.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { formatLsn, parseLsn } from '../../fsm/index.js';
import type { PostgresInstance } from '../postgres/instance.js';
import { readReplicationPassword, REPLICATION_ROLE } from '../postgres/settings.js';
import {
  advanceSlot,
  decodeFrame,
  encodeStatusUpdate,
  ensurePhysicalSlot,
  identifySystem,
  openReplicationClient,
  segmentStart,
  timelineHistory,
  walFileName,
  walSegmentBytes,
  WalStream,
  WalStreamError,
  type WalStreamEvent,
  type WalStreamOptions,
} from './wal-stream.js';
import { cloneTestStandby, makeTempPrimary, testStandbyInstance, waitFor, type TempPrimary } from '../../test/helpers/postgres.js';

const APP = 'wal-stream-test';
const SMALL = { shared_buffers: '32MB', max_connections: 30, fsync: false };

function connTo(port: number, dataDir: string) {
  return { host: '127.0.0.1', port, user: REPLICATION_ROLE, password: readReplicationPassword(dataDir), applicationName: APP };
}

async function lsnOf(inst: PostgresInstance, expr: string): Promise<bigint> {
  const text = (await inst.query<{ l: string }>(`SELECT (${expr})::text AS l`)).rows[0]?.l ?? '';
  const lsn = parseLsn(text);
  assert.ok(lsn !== null, `${expr} returned ${JSON.stringify(text)}`);
  return lsn;
}

async function slotRestartLsn(inst: PostgresInstance, slot: string): Promise<bigint | null> {
  const r = await inst.query<{ l: string | null }>(`SELECT restart_lsn::text AS l FROM pg_replication_slots WHERE slot_name = $1`, [slot]);
  return r.rows[0]?.l ? parseLsn(r.rows[0].l) : null;
}

async function ourWalSenders(inst: PostgresInstance): Promise<number> {
  return (await inst.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_replication WHERE application_name = $1`, [APP])).rows[0]!.n;
}

async function writeRows(inst: PostgresInstance, batches = 5): Promise<void> {
  await inst.query('CREATE TABLE IF NOT EXISTS t (id serial, pad text)');
  for (let i = 0; i < batches; i++) await inst.query(`INSERT INTO t (pad) SELECT repeat('x', 100) FROM generate_series(1, 500)`);
}

/** Pulls events until the WAL received reaches `untilLsn` (or the stream ends); data must be contiguous from `from`. */
async function receive(it: AsyncIterator<WalStreamEvent>, from: bigint, untilLsn: bigint): Promise<{ bytes: Buffer; events: WalStreamEvent[]; done: boolean }> {
  const parts: Buffer[] = [];
  const events: WalStreamEvent[] = [];
  let end = from;
  while (end < untilLsn) {
    const r = await it.next();
    if (r.done) return { bytes: Buffer.concat(parts), events, done: true };
    events.push(r.value);
    if (r.value.kind !== 'data') continue;
    assert.equal(formatLsn(r.value.startLsn), formatLsn(end), 'XLogData is contiguous');
    parts.push(r.value.data);
    end += BigInt(r.value.data.length);
  }
  return { bytes: Buffer.concat(parts), events, done: false };
}

/** The error a stream ends with, from open() or from iterating. */
async function streamError(opts: WalStreamOptions): Promise<WalStreamError> {
  let stream: WalStream | undefined;
  try {
    stream = await WalStream.open(opts);
    for await (const _ of stream);
  } catch (e) {
    assert.ok(e instanceof WalStreamError, `a WalStreamError, not ${String(e)}`);
    return e;
  } finally {
    await stream?.close();
  }
  assert.fail('the stream ended without an error');
}

/** A primary and a started streaming standby (under the primary's temp root: its cleanup removes both). */
async function primaryAndStandby(): Promise<{ primary: TempPrimary; standby: PostgresInstance; standbyDir: string; cleanup(): Promise<void> }> {
  const primary = await makeTempPrimary();
  let standby: PostgresInstance | undefined;
  const cleanup = async () => {
    try {
      if (standby?.isRunning()) await standby.stop('immediate', { timeoutMs: 10_000 });
    } finally {
      await primary.cleanup();
    }
  };
  try {
    const standbyDir = await cloneTestStandby(primary, 's1');
    standby = await testStandbyInstance(standbyDir);
    await standby.start({ timeoutMs: 30_000 });
    return { primary, standby, standbyDir, cleanup };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

async function waitReplayed(standby: PostgresInstance, lsn: bigint): Promise<void> {
  await waitFor(`standby replay at ${formatLsn(lsn)}`, async () => ((await lsnOf(standby, 'pg_last_wal_replay_lsn()')) >= lsn ? true : undefined));
}

test('a completed segment arrives byte for byte as the file in pg_wal, streamed while rows are written', { timeout: 120_000 }, async (t) => {
  const p = await makeTempPrimary();
  t.after(() => p.cleanup());
  const segBytes = await walSegmentBytes(p.pg);
  const segStart = segmentStart(await lsnOf(p.pg, 'pg_current_wal_lsn()'), segBytes);
  const stream = await WalStream.open({ ...connTo(p.port, p.dataDir), slot: null, timeline: 1, startLsn: segStart, statusIntervalMs: 100 });
  t.after(() => stream.close());
  const it = stream[Symbol.asyncIterator]();
  // Rows go in while the stream runs; then the segment is closed.
  const writing = (async () => {
    await writeRows(p.pg, 20);
    return lsnOf(p.pg, 'pg_switch_wal()');
  })();
  const got = await receive(it, segStart, segStart + BigInt(segBytes));
  await writing;
  assert.ok(got.bytes.length >= segBytes, 'the segment was completed');
  const dataEvents = got.events.filter((e) => e.kind === 'data').length;
  assert.ok(dataEvents > 1, `the segment came in ${dataEvents} XLogData messages`);
  const file = fs.readFileSync(join(p.dataDir, 'pg_wal', walFileName(1, segStart, segBytes)));
  assert.equal(file.length, segBytes);
  assert.ok(got.bytes.subarray(0, segBytes).equals(file), 'streamed bytes equal the segment file');
  t.diagnostic(`segment ${walFileName(1, segStart, segBytes)} in ${dataEvents} messages`);
  await stream.close();
  assert.equal((await it.next()).done, true, 'the iterator is done after close()');
});

test('confirm() moves the slot restart_lsn, and the slot keeps that WAL through checkpoints', { timeout: 120_000 }, async (t) => {
  const p = await makeTempPrimary({ settings: { parameters: { ...SMALL, wal_keep_size: 0 } } });
  t.after(() => p.cleanup());
  const segBytes = await walSegmentBytes(p.pg);
  assert.equal(await ensurePhysicalSlot(p.pg, 'archiver'), 'created');
  assert.equal(await ensurePhysicalSlot(p.pg, 'archiver'), 'exists');
  assert.ok((await slotRestartLsn(p.pg, 'archiver')) !== null, 'WAL is reserved at creation');

  const segStart = segmentStart(await lsnOf(p.pg, 'pg_current_wal_lsn()'), segBytes);
  const segEnd = segStart + BigInt(segBytes);
  const stream = await WalStream.open({ ...connTo(p.port, p.dataDir), slot: 'archiver', timeline: 1, startLsn: segStart, statusIntervalMs: 100 });
  t.after(() => stream.close());
  const it = stream[Symbol.asyncIterator]();
  await writeRows(p.pg);
  await p.pg.query('SELECT pg_switch_wal()');
  await receive(it, segStart, segEnd);
  assert.throws(() => stream.confirm(segEnd + BigInt(segBytes)), RangeError, 'cannot confirm WAL not received');
  stream.confirm(segEnd);
  await waitFor('restart_lsn at the confirmed position', async () => ((await slotRestartLsn(p.pg, 'archiver')) === segEnd ? true : undefined), 10_000);
  await stream.close();
  assert.equal(await slotRestartLsn(p.pg, 'archiver'), segEnd, 'close() leaves the slot where it was confirmed');

  // Checkpoints remove what is before the slot, never what it holds.
  const before = walFileName(1, segStart, segBytes);
  const held = walFileName(1, segEnd, segBytes);
  for (let i = 0; i < 4; i++) {
    await writeRows(p.pg, 1);
    await p.pg.query('SELECT pg_switch_wal()');
    await p.pg.query('CHECKPOINT');
  }
  const files = fs.readdirSync(join(p.dataDir, 'pg_wal'));
  assert.ok(files.includes(held), `${held} (restart_lsn ${formatLsn(segEnd)}) is kept`);
  assert.ok(!files.includes(before), `${before}, before the slot, was removed (pg_wal: ${files.join(' ')})`);
  const status = (await p.pg.query<{ wal_status: string }>(`SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'archiver'`)).rows[0];
  assert.equal(status?.wal_status, 'reserved');
});

test('a timeline switch: the old timeline ends with end-of-timeline at the switch point, the new one streams from its segment start', {
  timeout: 180_000,
}, async (t) => {
  const env = await primaryAndStandby();
  t.after(() => env.cleanup());
  const { primary, standby, standbyDir } = env;
  await writeRows(primary.pg);
  await waitReplayed(standby, await lsnOf(primary.pg, 'pg_current_wal_lsn()'));
  await standby.promote();
  const conn = connTo(standby.port, standbyDir);

  const rc = await openReplicationClient(conn);
  let switchpoint: bigint;
  try {
    const id = await identifySystem(rc);
    assert.equal(id.timeline, 2);
    const history = await timelineHistory(rc, 2);
    assert.equal(history.fileName, '00000002.history');
    assert.ok(history.content.equals(fs.readFileSync(join(standbyDir, 'pg_wal', '00000002.history'))), 'TIMELINE_HISTORY returns the file as is');
    const m = /^1\t([0-9A-F]+\/[0-9A-F]+)\t/m.exec(history.content.toString('utf8'));
    assert.ok(m, `history names timeline 1's end: ${history.content.toString('utf8')}`);
    switchpoint = parseLsn(m[1]!)!;
    assert.ok(id.xlogPos >= switchpoint);
  } finally {
    await rc.end();
  }
  const segBytes = await walSegmentBytes(standby);
  const segStart = segmentStart(switchpoint, segBytes);
  assert.ok(segStart < switchpoint, 'the switch is inside a segment');

  // Timeline 1, from before the switch: its WAL up to the switch point, then end-of-timeline.
  const s1 = await WalStream.open({ ...conn, slot: null, timeline: 1, startLsn: segStart, statusIntervalMs: 100 });
  t.after(() => s1.close());
  const old = await receive(s1[Symbol.asyncIterator](), segStart, switchpoint + 1n);
  assert.equal(old.done, true, 'the stream ends at the switch point');
  assert.equal(BigInt(old.bytes.length), switchpoint - segStart, 'every byte of timeline 1 up to the switch point');
  assert.deepEqual(old.events.at(-1), { kind: 'end-of-timeline', nextTimeline: 2, nextStartLsn: switchpoint });

  // Exactly at the switch point the server streams nothing: just the next timeline.
  const s2 = await WalStream.open({ ...conn, slot: null, timeline: 1, startLsn: switchpoint });
  const atSwitch = await receive(s2[Symbol.asyncIterator](), switchpoint, switchpoint + 1n);
  assert.deepEqual(atSwitch.events, [{ kind: 'end-of-timeline', nextTimeline: 2, nextStartLsn: switchpoint }]);
  await s2.close();

  // Past the switch point, timeline 1 is not this server's history.
  const notOurs = await streamError({ ...conn, slot: null, timeline: 1, startLsn: switchpoint + BigInt(segBytes) });
  assert.equal(notOurs.reason, 'not-in-history', notOurs.message);

  // Timeline 2 from the start of the switch point's segment, as pg_receivewal restarts.
  const s3 = await WalStream.open({ ...conn, slot: null, timeline: 2, startLsn: segStart, statusIntervalMs: 100 });
  t.after(() => s3.close());
  await writeRows(standby, 2);
  const until = await lsnOf(standby, 'pg_current_wal_flush_lsn()');
  const fresh = await receive(s3[Symbol.asyncIterator](), segStart, until);
  assert.ok(fresh.bytes.subarray(0, old.bytes.length).equals(old.bytes), 'the new timeline file starts with the old timeline WAL up to the switch point');
  await s3.close();
  assert.equal(await ourWalSenders(standby), 0);
});

test('removed WAL and a start ahead of the flush position are typed errors', { timeout: 120_000 }, async (t) => {
  const p = await makeTempPrimary({ settings: { parameters: { ...SMALL, wal_keep_size: 0 } } });
  t.after(() => p.cleanup());
  const segBytes = await walSegmentBytes(p.pg);
  const conn = connTo(p.port, p.dataDir);
  const first = walFileName(1, BigInt(segBytes), segBytes); // initdb's first segment
  await waitFor(
    `${first} removed`,
    async () => {
      await writeRows(p.pg, 1);
      await p.pg.query('SELECT pg_switch_wal()');
      await p.pg.query('CHECKPOINT');
      return fs.existsSync(join(p.dataDir, 'pg_wal', first)) ? undefined : true;
    },
    30_000,
  );
  const removed = await streamError({ ...conn, slot: null, timeline: 1, startLsn: BigInt(segBytes) });
  assert.equal(removed.reason, 'wal-removed', removed.message);
  assert.equal(removed.sqlState, '58P01');
  assert.match(removed.message, new RegExp(first));

  const ahead = segmentStart(await lsnOf(p.pg, 'pg_current_wal_flush_lsn()'), segBytes) + 2n * BigInt(segBytes);
  const tooFar = await streamError({ ...conn, slot: null, timeline: 1, startLsn: ahead });
  assert.equal(tooFar.reason, 'ahead-of-flush', tooFar.message);

  const noSlot = await streamError({ ...conn, slot: 'missing', timeline: 1, startLsn: segmentStart(ahead, segBytes) });
  assert.equal(noSlot.reason, 'slot', noSlot.message);
  assert.equal(noSlot.sqlState, '42704');
  await waitFor('no walsender left', async () => ((await ourWalSenders(p.pg)) === 0 ? true : undefined), 5_000);
});

test('slots on a standby in recovery: created, streamed with, confirmed, advanced (clamped to replay)', { timeout: 180_000 }, async (t) => {
  const env = await primaryAndStandby();
  t.after(() => env.cleanup());
  const { primary, standby, standbyDir } = env;
  assert.equal((await standby.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]?.r, true);
  assert.equal(await ensurePhysicalSlot(standby, 'archiver'), 'created');
  assert.equal(await ensurePhysicalSlot(standby, 'archiver'), 'exists');
  const reserved = await slotRestartLsn(standby, 'archiver');
  assert.ok(reserved !== null && reserved <= (await lsnOf(standby, 'pg_last_wal_replay_lsn()')), 'WAL reserved from the last restartpoint');

  // A cascading walsender streams with the slot, and confirm() moves it.
  const segBytes = await walSegmentBytes(standby);
  const segStart = segmentStart(await lsnOf(standby, 'pg_last_wal_replay_lsn()'), segBytes);
  const segEnd = segStart + BigInt(segBytes);
  const conn = connTo(standby.port, standbyDir);
  const stream = await WalStream.open({ ...conn, slot: 'archiver', timeline: 1, startLsn: segStart, statusIntervalMs: 100 });
  t.after(() => stream.close());
  await writeRows(primary.pg);
  await primary.pg.query('SELECT pg_switch_wal()');
  await receive(stream[Symbol.asyncIterator](), segStart, segEnd);
  stream.confirm(segEnd);
  await waitFor('standby slot at the confirmed position', async () => ((await slotRestartLsn(standby, 'archiver')) === segEnd ? true : undefined), 10_000);
  // Busy: pg_replication_slot_advance refuses a slot a walsender holds.
  await assert.rejects(advanceSlot(standby, 'archiver', segEnd), (e: { code?: string }) => e.code === '55006');
  await stream.close();

  await writeRows(primary.pg, 2);
  await primary.pg.query('SELECT pg_switch_wal()');
  await waitReplayed(standby, await lsnOf(primary.pg, 'pg_current_wal_lsn()'));
  const replayed = await lsnOf(standby, 'pg_last_wal_replay_lsn()');
  assert.equal(await advanceSlot(standby, 'archiver', replayed), replayed, 'advance in recovery works');
  assert.equal(await slotRestartLsn(standby, 'archiver'), replayed);
  assert.equal(await advanceSlot(standby, 'archiver', segStart), replayed, 'never backwards');
  const clamped = await advanceSlot(standby, 'archiver', replayed + 100n * BigInt(segBytes));
  assert.ok(clamped >= replayed && clamped <= (await lsnOf(standby, 'pg_last_wal_replay_lsn()')), `clamped to the replay position (got ${formatLsn(clamped)})`);
});

test('close() and abort end a running stream promptly and leave no walsender; a killed walsender is an error; a shutdown waits for confirm()', {
  timeout: 120_000,
}, async (t) => {
  const p = await makeTempPrimary();
  t.after(() => p.cleanup());
  const segBytes = await walSegmentBytes(p.pg);
  const conn = connTo(p.port, p.dataDir);
  const start = segmentStart(await lsnOf(p.pg, 'pg_current_wal_lsn()'), segBytes);

  const s1 = await WalStream.open({ ...conn, slot: null, timeline: 1, startLsn: start });
  const it1 = s1[Symbol.asyncIterator]();
  assert.equal((await it1.next()).value?.kind, 'data');
  assert.equal(await ourWalSenders(p.pg), 1);
  const pending = it1.next(); // the rest of the segment may be queued; close() drops it
  let t0 = performance.now();
  await s1.close();
  const closeMs = performance.now() - t0;
  assert.ok(closeMs < 1000, `close() took ${Math.round(closeMs)} ms`);
  await pending;
  assert.equal((await it1.next()).done, true);
  assert.equal(await ourWalSenders(p.pg), 0, 'the walsender is gone once close() resolves');

  const ac = new AbortController();
  const s2 = await WalStream.open({ ...conn, slot: null, timeline: 1, startLsn: start, signal: ac.signal });
  const it2 = s2[Symbol.asyncIterator]();
  await receive(it2, start, await lsnOf(p.pg, 'pg_current_wal_flush_lsn()')); // caught up: next() now waits
  const waiting = it2.next();
  t0 = performance.now();
  ac.abort(new Error('test abort'));
  // `waiting` may have taken a record written meanwhile (a checkpoint's): the call after it must fail.
  const untilError = async () => {
    for (let r = await waiting; !r.done; r = await it2.next());
  };
  await assert.rejects(untilError(), (e: WalStreamError) => e.reason === 'aborted');
  assert.ok(performance.now() - t0 < 1000);
  await s2.close();
  await waitFor('no walsender after abort', async () => ((await ourWalSenders(p.pg)) === 0 ? true : undefined), 2_000);

  const s3 = await WalStream.open({ ...conn, slot: null, timeline: 1, startLsn: start });
  const it3 = s3[Symbol.asyncIterator]();
  await receive(it3, start, await lsnOf(p.pg, 'pg_current_wal_flush_lsn()'));
  await p.pg.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_replication WHERE application_name = $1`, [APP]);
  const err = await it3.next().then(
    () => assert.fail('the iterator went on after its walsender was killed'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof WalStreamError && err.reason === 'connection', String(err));
  await s3.close();

  // A clean shutdown waits until the stream confirms all it was sent, then ends it.
  const s4 = await WalStream.open({ ...conn, slot: null, timeline: 1, startLsn: start, statusIntervalMs: 100 });
  let received = start;
  let ended: unknown;
  const pulling = (async () => {
    try {
      for await (const ev of s4) if (ev.kind === 'data') received = ev.startLsn + BigInt(ev.data.length);
    } catch (e) {
      ended = e;
    }
  })();
  const stopping = p.pg.stop('fast', { timeoutMs: 30_000 });
  await sleep(1500);
  assert.ok(p.pg.isRunning(), 'the shutdown waits for the WAL it sent to be confirmed');
  const confirming = setInterval(() => s4.confirm(received), 50);
  try {
    await stopping;
    await pulling;
  } finally {
    clearInterval(confirming);
    await s4.close();
  }
  assert.ok(ended instanceof WalStreamError && ended.reason === 'connection', String(ended));
  assert.match(ended.message, /shutting down/);
});

// ------------------------------------------------------------ a scripted walsender

function frame(type: string, body: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

function xlogData(start: bigint, data: Buffer): Buffer {
  const h = Buffer.alloc(25);
  h.write('w', 0, 'latin1');
  h.writeBigUInt64BE(start, 1);
  h.writeBigUInt64BE(start + BigInt(data.length), 9);
  h.writeBigInt64BE(0n, 17);
  return frame('d', Buffer.concat([h, data]));
}

/** The next-timeline result set, CommandComplete and ReadyForQuery, as a walsender ends a historic timeline. */
function nextTimelineReply(tli: number, lsn: string): Buffer {
  const field = (name: string, typeOid: number) => {
    const b = Buffer.alloc(18);
    b.writeInt32BE(typeOid, 6);
    b.writeInt16BE(-1, 10);
    b.writeInt32BE(-1, 12);
    return Buffer.concat([Buffer.from(`${name}\0`), b]);
  };
  const count = Buffer.alloc(2);
  count.writeInt16BE(2);
  const col = (s: string) => {
    const len = Buffer.alloc(4);
    len.writeInt32BE(Buffer.byteLength(s));
    return Buffer.concat([len, Buffer.from(s)]);
  };
  return Buffer.concat([
    frame('T', Buffer.concat([count, field('next_tli', 20), field('next_tli_startpos', 25)])),
    frame('D', Buffer.concat([count, col(String(tli)), col(lsn)])),
    frame('C', Buffer.from('START_STREAMING\0')),
    frame('Z', Buffer.from('I')),
  ]);
}

interface FakeSession {
  socket: net.Socket;
  /** CopyData payloads the client sent (its status updates). */
  copyData: Buffer[];
  copyDoneFromClient: boolean;
}

/** A server that logs anyone in, then runs `onQuery` for the START_REPLICATION query. */
async function fakeWalSender(onQuery: (s: FakeSession) => void): Promise<{ port: number; sessions: FakeSession[]; close(): Promise<void> }> {
  const sessions: FakeSession[] = [];
  const server = net.createServer((socket) => {
    const session: FakeSession = { socket, copyData: [], copyDoneFromClient: false };
    sessions.push(session);
    socket.on('error', () => {});
    let buf = Buffer.alloc(0);
    let started = false;
    socket.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (!started) {
          if (buf.length < 4 || buf.length < buf.readInt32BE(0)) return;
          buf = buf.subarray(buf.readInt32BE(0));
          started = true;
          const authOk = Buffer.alloc(4);
          socket.write(Buffer.concat([frame('R', authOk), frame('Z', Buffer.from('I'))]));
          continue;
        }
        if (buf.length < 5 || buf.length < 1 + buf.readInt32BE(1)) return;
        const type = String.fromCharCode(buf[0]!);
        const body = buf.subarray(5, 1 + buf.readInt32BE(1));
        buf = buf.subarray(1 + buf.readInt32BE(1));
        if (type === 'Q') onQuery(session);
        else if (type === 'd') session.copyData.push(Buffer.from(body));
        else if (type === 'c') session.copyDoneFromClient = true;
        else if (type === 'X') socket.end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    sessions,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sessions) s.socket.destroy();
        server.close(() => resolve());
      }),
  };
}

const COPY_BOTH = frame('W', Buffer.from([0, 0, 0]));
const fakeOpts = (port: number): WalStreamOptions => ({
  host: '127.0.0.1',
  port,
  user: 'x',
  slot: null,
  timeline: 1,
  startLsn: 0x1000000n,
  statusIntervalMs: 50,
});

test('frame codec: status update layout, and short or unknown frames are errors that name the frame', () => {
  const r = encodeStatusUpdate({ writtenLsn: 0x1_0000_0010n, flushedLsn: 0x20n, appliedLsn: 0x30n, clientTimeMs: 946_684_800_000 + 1.5, replyRequested: true });
  assert.equal(r.length, 34);
  assert.equal(r.toString('latin1', 0, 1), 'r');
  assert.deepEqual([r.readBigUInt64BE(1), r.readBigUInt64BE(9), r.readBigUInt64BE(17), r.readBigInt64BE(25), r[33]], [0x1_0000_0010n, 0x20n, 0x30n, 2000n, 1]);
  const k = Buffer.alloc(18);
  k.write('k', 0, 'latin1');
  k.writeBigUInt64BE(0x5000000n, 1);
  k.writeBigInt64BE(1_000_000n, 9);
  k[17] = 1;
  assert.deepEqual(decodeFrame(k), { kind: 'keepalive', serverWalEnd: 0x5000000n, serverTimeMs: 946_684_801_000, replyRequested: true });
  for (const [bad, names] of [
    [Buffer.from('w123'), /XLogData \('w'\) frame of 4 bytes/],
    [Buffer.from('k12'), /keepalive \('k'\) frame of 3 bytes/],
    [Buffer.from('z'), /unknown CopyData frame type 0x7a/],
    [Buffer.alloc(0), /empty frame/],
  ] as const) {
    assert.throws(
      () => decodeFrame(bad),
      (e: WalStreamError) => e.reason === 'protocol' && names.test(e.message),
    );
  }
});

test('fake walsender: a malformed frame errors the stream, a cut connection ends it with an error (no crash, no hang)', { timeout: 30_000 }, async (t) => {
  const payloads = [Buffer.from('w12345'), Buffer.from('k'), Buffer.from('?'), xlogData(0x1000100n, Buffer.from('gap')).subarray(5), null];
  let n = 0;
  const fake = await fakeWalSender((s) => {
    const p = payloads[n++];
    s.socket.write(COPY_BOTH);
    if (p === null) setTimeout(() => s.socket.destroy(), 50);
    else s.socket.write(frame('d', p));
  });
  t.after(() => fake.close());
  for (const want of [
    /XLogData \('w'\) frame of 6 bytes/,
    /keepalive \('k'\) frame of 1 bytes/,
    /unknown CopyData frame type 0x3f/,
    /starts at 0\/1000100, expected 0\/1000000/,
  ]) {
    const e = await streamError(fakeOpts(fake.port));
    assert.equal(e.reason, 'protocol');
    assert.match(e.message, want);
  }
  const cut = await streamError(fakeOpts(fake.port));
  assert.equal(cut.reason, 'connection', cut.message);
});

test('fake walsender: backpressure bounds the buffer, status updates carry confirm() while paused, CopyDone is answered', { timeout: 60_000 }, async (t) => {
  const CHUNK = 64 * 1024;
  const TOTAL = 32 * 1024 * 1024;
  const start = 0x1000000n;
  let sentBytes = 0;
  const fake = await fakeWalSender((s) => {
    s.socket.write(COPY_BOTH);
    const pump = () => {
      while (sentBytes < TOTAL) {
        const more = s.socket.write(xlogData(start + BigInt(sentBytes), Buffer.alloc(CHUNK, sentBytes / CHUNK)));
        sentBytes += CHUNK;
        if (!more) return void s.socket.once('drain', pump);
      }
      s.socket.write(frame('c'));
      const waitCopyDone = () => (s.copyDoneFromClient ? s.socket.write(nextTimelineReply(2, formatLsn(start + BigInt(TOTAL)))) : setTimeout(waitCopyDone, 5));
      waitCopyDone();
    };
    pump();
  });
  t.after(() => fake.close());
  const bufferBytesMax = 1024 * 1024;
  const stream = await WalStream.open({ ...fakeOpts(fake.port), bufferBytesMax });
  t.after(() => stream.close());
  await new Promise((r) => setTimeout(r, 300)); // the consumer does not pull
  assert.ok(stream.bufferedBytes <= bufferBytesMax + 4 * CHUNK, `queued ${stream.bufferedBytes} bytes`);
  assert.ok(sentBytes < TOTAL, `the server is held back by TCP (${sentBytes} of ${TOTAL} bytes written)`);

  const it = stream[Symbol.asyncIterator]();
  const half = start + BigInt(TOTAL / 2);
  const first = await receive(it, start, half);
  stream.confirm(half);
  const flushed = (u: Buffer) => u.readBigUInt64BE(9);
  await waitFor('a status update with the confirmed position', () => (fake.sessions[0]!.copyData.some((u) => flushed(u) === half) ? true : undefined), 5_000);
  const rest = await receive(it, half, start + BigInt(TOTAL));
  assert.equal(first.bytes.length + rest.bytes.length, TOTAL);
  assert.ok(rest.bytes.subarray(0, CHUNK).equals(Buffer.alloc(CHUNK, TOTAL / 2 / CHUNK)), 'the bytes are those sent');
  const end = await it.next();
  assert.deepEqual(end.value, { kind: 'end-of-timeline', nextTimeline: 2, nextStartLsn: start + BigInt(TOTAL) });
  assert.equal((await it.next()).done, true);
  const updates = fake.sessions[0]!.copyData;
  assert.ok(updates.length > 0 && updates.every((u) => u.length === 34 && u[0] === 0x72), 'status updates are 34-byte r frames');
  assert.equal(fake.sessions[0]!.copyDoneFromClient, true);
});

test('fake walsender: an abort while connecting or starting, and a silent server, end the stream promptly', { timeout: 30_000 }, async (t) => {
  // A server that accepts and never answers: connect() waits; the abort ends it.
  const mute = net.createServer((socket) => socket.on('error', () => {}).resume()); // reads (so it sees the client close), never writes
  await new Promise<void>((resolve) => mute.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => mute.close(() => resolve())));
  const mutePort = (mute.address() as net.AddressInfo).port;
  for (const [port, what] of [
    [mutePort, 'connecting'],
    [0, 'waiting for START_REPLICATION'],
  ] as const) {
    const fake = port === 0 ? await fakeWalSender(() => {}) : undefined; // logs in, never answers the query
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('test abort')), 100);
    const t0 = performance.now();
    const e = await streamError({ ...fakeOpts(fake?.port ?? port), signal: ac.signal });
    assert.equal(e.reason, 'aborted', `${what}: ${e.message}`);
    assert.ok(performance.now() - t0 < 1000, `${what}: took ${Math.round(performance.now() - t0)} ms`);
    await fake?.close();
  }

  // Copy mode, then silence: a status update asks for a reply at half the timeout, then the stream fails.
  const silent = await fakeWalSender((s) => s.socket.write(COPY_BOTH));
  t.after(() => silent.close());
  const t0 = performance.now();
  const e = await streamError({ ...fakeOpts(silent.port), receiveTimeoutMs: 400 });
  assert.equal(e.reason, 'connection');
  assert.match(e.message, /no message from 127\.0\.0\.1:\d+ for \d+ ms/);
  assert.ok(performance.now() - t0 < 2000);
  assert.ok(
    silent.sessions[0]!.copyData.some((u) => u[33] === 1),
    'a status update requested a reply',
  );
});
