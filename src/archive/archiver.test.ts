import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Backup, ClusterState, WalRange } from '../../fsm/index.js';
import { FsObjectStore } from '../object-store/index.js';
import { ArchiveConflictError, INSTANT_MARGIN_MS, TimelineArchiver, type ArchiveEvent, type Archived } from './archiver.js';
import { readCatalog, timelineSpans } from './catalog.js';
import { fullSegmentKey } from './layout.js';
import { beforeCut, walCut } from './retention.js';
import { fetchSegment } from './segment-fetch.js';
import { segmentStart, WAL_SEGMENT_BYTES } from './segments.js';

const P = 'c/';
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function store(): FsObjectStore {
  const d = mkdtempSync(join(tmpdir(), 'ogel-archiver-'));
  dirs.push(d);
  return new FsObjectStore({ dir: d });
}

/** WAL-like bytes: position-dependent, so a misplaced byte shows. */
function wal(start: bigint, n: number, salt = 0): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Number((start + BigInt(i) + BigInt(salt)) % 251n);
  return b;
}

/** A stream of `chunks` data messages (bytes each) from `start`, each caught up (walEnd = its end) at instant t0 + i, then quiet. */
async function* events(start: bigint, chunks: number[], t0 = 1_000, salt = 0, pauseMs = 0): AsyncGenerator<ArchiveEvent> {
  let at = start;
  for (const [i, n] of chunks.entries()) {
    yield { kind: 'data', startLsn: at, data: wal(at, n, salt), serverWalEnd: at + BigInt(n), serverTimeMs: t0 + i };
    at += BigInt(n);
    if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
  }
}

describe('TimelineArchiver', () => {
  it('stores parts as WAL arrives and a whole segment once it fills, confirming only what is stored', async () => {
    const s = store();
    const start = segmentStart(3n);
    const confirmed: bigint[] = [];
    const reports: Archived[] = [];
    const a = new TimelineArchiver({ store: s, clusterPrefix: P, timeline: 1, startLsn: start, flushIntervalMs: 5, onArchived: (r) => reports.push(r) });
    // 1.5 segments in 64 KiB messages, slowly enough that parts go up between them.
    const chunks = Array.from({ length: (WAL_SEGMENT_BYTES * 1.5) / 65536 }, () => 65536);
    const out = await a.run(events(start, chunks, 1000, 0, 1), (l) => confirmed.push(l));
    assert.deepEqual(out, { kind: 'closed' });
    const cat = await readCatalog(s, P);
    const seg3 = cat.timelines.get(1)!.get(3n)!;
    assert.ok(seg3.full, 'the filled segment is stored whole');
    assert.equal(seg3.parts.length, 0, 'and its parts are gone');
    const seg4 = cat.timelines.get(1)!.get(4n)!;
    assert.ok(seg4.parts.length > 0 && seg4.full === null, 'the segment being filled is in parts');
    assert.deepEqual(timelineSpans(cat, 1), [
      { startLsn: start, endLsn: start + BigInt(WAL_SEGMENT_BYTES * 1.5), endAtMs: 1000 + chunks.length - 1 - INSTANT_MARGIN_MS },
    ]);
    // What comes back is what went in.
    assert.ok((await fetchSegment(s, seg3)).data.equals(wal(start, WAL_SEGMENT_BYTES)));
    const half = await fetchSegment(s, seg4);
    assert.equal(half.coveredBytes, WAL_SEGMENT_BYTES / 2);
    assert.ok(half.data.subarray(0, WAL_SEGMENT_BYTES / 2).equals(wal(segmentStart(4n), WAL_SEGMENT_BYTES / 2)));
    assert.ok(
      half.data.subarray(WAL_SEGMENT_BYTES / 2).every((x) => x === 0),
      'zeros past the end: Postgres reads the end of WAL there',
    );
    // Confirmations only grow, and end at everything received.
    assert.ok(confirmed.every((l, i) => i === 0 || l >= confirmed[i - 1]!));
    assert.equal(confirmed.at(-1), start + BigInt(WAL_SEGMENT_BYTES * 1.5));
    assert.equal(reports.at(-1)!.endLsn, confirmed.at(-1));
    assert.equal(a.lagMs(), 0);
  });

  it('bounds the parts of a slowly filling segment by replacing them with one', async () => {
    const s = store();
    const start = segmentStart(7n);
    const a = new TimelineArchiver({ store: s, clusterPrefix: P, timeline: 1, startLsn: start, flushIntervalMs: 1, maxPartsPerSegment: 4 });
    await a.run(events(start, Array(20).fill(100), 1000, 0, 5), () => {});
    const seg = (await readCatalog(s, P)).timelines.get(1)!.get(7n)!;
    assert.ok(seg.parts.length <= 5, `${seg.parts.length} parts`);
    assert.ok((await fetchSegment(s, seg)).data.subarray(0, 2000).equals(wal(start, 2000)));
  });

  it('never overwrites an archived segment with other bytes: a conflict stops it (I6)', async () => {
    const s = store();
    const start = segmentStart(5n);
    const first = new TimelineArchiver({ store: s, clusterPrefix: P, timeline: 2, startLsn: start });
    await first.run(events(start, Array(16).fill(WAL_SEGMENT_BYTES / 16)), () => {});
    // The same bytes again (a restart after the upload): fine.
    const again = new TimelineArchiver({ store: s, clusterPrefix: P, timeline: 2, startLsn: start });
    assert.deepEqual(await again.run(events(start, Array(16).fill(WAL_SEGMENT_BYTES / 16)), () => {}), { kind: 'closed' });
    // Other bytes under the same timeline and segment: refused, and the archived copy stays.
    const other = new TimelineArchiver({ store: s, clusterPrefix: P, timeline: 2, startLsn: start });
    await assert.rejects(
      other.run(events(start, Array(16).fill(WAL_SEGMENT_BYTES / 16), 1000, 7), () => {}),
      (e: Error) =>
        e instanceof ArchiveConflictError && /already archived .* with different content: two servers wrote different WAL on timeline 2/.test(e.message),
    );
    const seg = (await readCatalog(s, P)).timelines.get(2)!.get(5n)!;
    assert.ok((await fetchSegment(s, seg)).data.equals(wal(start, WAL_SEGMENT_BYTES)));
  });

  it('refuses a stream that skips bytes', async () => {
    const s = store();
    const a = new TimelineArchiver({ store: s, clusterPrefix: P, timeline: 1, startLsn: segmentStart(1n) });
    async function* skipping(): AsyncGenerator<ArchiveEvent> {
      yield { kind: 'data', startLsn: segmentStart(1n) + 8n, data: Buffer.alloc(8), serverWalEnd: 0n, serverTimeMs: 0 };
    }
    await assert.rejects(
      a.run(skipping(), () => {}),
      /sent WAL at 0\/1000008 while the archive expected 0\/1000000/,
    );
  });
});

describe('WAL retention', () => {
  const b = (id: string, timeline: number, startLsn: string, state: Backup['state'] = 'complete') => [id, { id, timeline, startLsn, state }] as const;
  const st = (backups: (readonly [string, unknown])[], ranges: WalRange[] = []) =>
    ({ backups: new Map(backups), walArchive: { ranges, historyTimelines: [] } }) as unknown as ClusterState;

  it('keeps everything from the segment of the oldest complete backup, on its timeline', () => {
    assert.equal(walCut(st([])), null, 'no backup: keep everything');
    assert.equal(walCut(st([b('r', 1, '0/5000000', 'running')])), null);
    const cut = walCut(st([b('new', 2, '0/9000028'), b('old', 1, '0/5000028')]))!;
    assert.deepEqual(cut, { timeline: 1, lsn: 0x5000000n });
    assert.equal(beforeCut(P, fullSegmentKey(P, 1, 4n, 1), cut), true);
    assert.equal(beforeCut(P, fullSegmentKey(P, 1, 5n, 1), cut), false, "the backup's own segment stays");
    assert.equal(beforeCut(P, fullSegmentKey(P, 2, 4n, 1), cut), false, 'a later timeline is kept whole');
    assert.equal(beforeCut(P, `${P}wal/00000002.history`, cut), false, 'history files are kept');
    assert.equal(beforeCut(P, `${P}wal/00000001/junk`, cut), false, 'keys it did not write are not touched');
  });
});
