import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BackupManifest } from '../backup/manifest.js';
import { addObject, segmentCoverage, timelineSpans, type WalCatalog } from './catalog.js';
import { fullSegmentKey, historyKey, parseWalKey, partKey } from './layout.js';
import { planRestore, type PitrTarget } from './pitr-plan.js';
import { parseTargetTime } from './pitr-target.js';
import { parseWalFileName, segmentStart, walFileName, WAL_SEGMENT_BYTES } from './segments.js';

const P = 'c1/';
const SEG = BigInt(WAL_SEGMENT_BYTES);

function catalog(keys: [string, number][]): WalCatalog {
  const cat: WalCatalog = { timelines: new Map(), histories: new Map(), unrecognized: [] };
  for (const [k, b] of keys) addObject(cat, P, k, b);
  return cat;
}

function backup(id: string, timeline: number, startSeg: number, endOffset: number, finishedAtMs: number): BackupManifest {
  const lsn = (v: bigint) => `${(v >> 32n).toString(16).toUpperCase()}/${(v & 0xffffffffn).toString(16).toUpperCase()}`;
  return {
    format: 1,
    id,
    cluster: 'c1',
    kind: 'full',
    parent: null,
    systemIdentifier: '1',
    timeline,
    startLsn: lsn(segmentStart(BigInt(startSeg)) + 40n),
    endLsn: lsn(segmentStart(BigInt(startSeg)) + BigInt(endOffset)),
    node: 'n1',
    sourceRole: 'standby',
    startedAtMs: finishedAtMs - 1000,
    finishedAtMs,
    compression: 'brotli',
    wal: true,
    tarBytes: 1,
    storedBytes: 1,
    parts: [{ key: 'x', bytes: 1, sha256: 'a'.repeat(64) }],
    pgManifest: { key: 'y', bytes: 1, sha256: 'b'.repeat(64) },
  } as unknown as BackupManifest;
}

describe('WAL archive layout', () => {
  it('names segments as Postgres does and parses them back', () => {
    assert.equal(walFileName(1, 0x1ffn), '0000000100000001000000FF');
    assert.equal(walFileName(2, 3n), '000000020000000000000003');
    assert.deepEqual(parseWalFileName('000000020000000100000004'), { timeline: 2, segno: 256n + 4n });
    assert.equal(parseWalFileName('000000020000000100000100'), null);
  });

  it('round-trips part, full and history keys, and ignores anything else', () => {
    const k = partKey(P, 3, 5n, 0x100, 0x2000, 1765000000123);
    assert.deepEqual(parseWalKey(P, k, 10), {
      kind: 'part',
      key: k,
      timeline: 3,
      segment: walFileName(3, 5n),
      startOffset: 0x100,
      endOffset: 0x2000,
      atMs: 1765000000123,
      bytes: 10,
    });
    const f = fullSegmentKey(P, 3, 5n, 1765000000999);
    assert.equal(parseWalKey(P, f, 1)?.kind, 'full');
    assert.equal(parseWalKey(P, historyKey(P, 4), 1)?.kind, 'history');
    assert.equal(parseWalKey(P, `${P}wal/00000003/junk`, 1), null);
    assert.throws(() => partKey(P, 1, 1n, 10, 10, 1), RangeError);
  });
});

describe('WAL catalog', () => {
  it('merges parts and whole segments into spans, with the instant of each end', () => {
    const cat = catalog([
      [partKey(P, 1, 2n, 0, 100, 1000), 1],
      [partKey(P, 1, 2n, 100, 300, 2000), 1],
      [partKey(P, 1, 2n, 0, 300, 2500), 1], // a consolidated part: same end, later instant
      [fullSegmentKey(P, 1, 3n, 3000), 1],
      [partKey(P, 1, 4n, 0, 50, 3500), 1],
      [partKey(P, 1, 6n, 0, 10, 9000), 1], // a gap: segment 5 is missing
    ]);
    const s2 = cat.timelines.get(1)!.get(2n)!;
    assert.deepEqual(segmentCoverage(s2), [{ start: 0, end: 300, endAtMs: 2500 }]);
    const spans = timelineSpans(cat, 1);
    assert.equal(spans.length, 3);
    // Segment 2 ends at 300 bytes, so segment 3 does not join it: a restore cannot read across a hole.
    assert.deepEqual(spans[0], { startLsn: 2n * SEG, endLsn: 2n * SEG + 300n, endAtMs: 2500 });
    assert.deepEqual(spans[1], { startLsn: 3n * SEG, endLsn: 4n * SEG + 50n, endAtMs: 3500 });
    assert.deepEqual(spans[2], { startLsn: 6n * SEG, endLsn: 6n * SEG + 10n, endAtMs: 9000 });
  });
});

describe('planRestore', () => {
  // Timeline 1: segments 2..5 archived whole (instants 10s..13s), segment 6 in parts up to 4096.
  const keys: [string, number][] = [2, 3, 4, 5].map((s) => [fullSegmentKey(P, 1, BigInt(s), 10_000 + (s - 2) * 1000), 1]);
  keys.push([partKey(P, 1, 6n, 0, 4096, 14_000), 1]);
  const b1 = backup('b1', 1, 2, 1000, 9_000);
  const b2 = backup('b2', 1, 4, 1000, 12_500);
  const now = 100_000;
  const plan = (target: PitrTarget, backups = [b1, b2], cat = catalog(keys)) =>
    planRestore({ backups, catalog: cat, histories: new Map(), target, nowMs: now });

  it('picks the newest backup before a time and plans every segment from its start', () => {
    const r = plan({ kind: 'time', atMs: 13_000, pgText: 'x' });
    assert.ok(r.ok, !r.ok ? r.reason : '');
    assert.equal(r.plan.window.backup, 'b2');
    assert.deepEqual(
      r.plan.segments.map((s) => s.segno),
      [4n, 5n, 6n],
    );
    const older = plan({ kind: 'time', atMs: 11_000, pgText: 'x' });
    assert.ok(older.ok);
    assert.equal(older.plan.window.backup, 'b1');
  });

  it('refuses a time before the oldest backup, in the future, or past the archive, naming the restorable window', () => {
    for (const [atMs, why] of [
      [5_000, 'before the end of the oldest backup'],
      [now + 60_000, 'in the future'],
      [20_000, 'past the end of the archive'],
    ] as const) {
      const r = plan({ kind: 'time', atMs, pgText: 'x' });
      assert.equal(r.ok, false);
      assert.match(!r.ok ? r.reason : '', new RegExp(why));
      assert.match(!r.ok ? r.reason : '', /Restorable: from .* \(LSN 0\/2/);
    }
  });

  it('refuses an LSN in a gap of the archive', () => {
    const gappy = keys.filter(([k]) => !k.includes(walFileName(1, 5n)));
    const r = plan({ kind: 'lsn', lsn: 6n * SEG + 10n }, [b1], catalog(gappy));
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.reason : '', /past the end of the archive|gap/);
  });

  it('follows a timeline switch: the switch segment comes from the new timeline, older ones from the old', () => {
    const switchLsn = 5n * SEG + 500n;
    const k2: [string, number][] = [
      ...keys.filter(([k]) => !k.includes('00000006')),
      [fullSegmentKey(P, 2, 5n, 13_500), 1],
      [partKey(P, 2, 6n, 0, 100, 15_000), 1],
      [historyKey(P, 2), 1],
    ];
    const cat = catalog(k2);
    const histories = new Map([[2, `1\t0/${(switchLsn & 0xffffffffn).toString(16).toUpperCase()}\tno recovery target specified\n`]]);
    const r = planRestore({ backups: [b1, b2], catalog: cat, histories, target: { kind: 'latest' }, nowMs: now });
    assert.ok(r.ok, !r.ok ? r.reason : '');
    assert.equal(r.plan.timeline, 2);
    assert.deepEqual(
      r.plan.segments.map((s) => s.name),
      [walFileName(1, 4n), walFileName(2, 5n), walFileName(2, 6n)],
    );
    assert.deepEqual(r.plan.histories, [2]);
    assert.equal(r.plan.window.toLsn, 6n * SEG + 100n);
  });

  it("zeroes the old timeline's switch segment past the switch point when it stands in for the new one's", () => {
    const switchLsn = 5n * SEG + 500n;
    // Timeline 2 has segment 6 but not its own copy of the switch segment 5.
    const k2: [string, number][] = [...keys.filter(([k]) => !k.includes('00000006')), [partKey(P, 2, 6n, 0, 100, 15_000), 1], [historyKey(P, 2), 1]];
    const histories = new Map([[2, `1\t0/${(switchLsn & 0xffffffffn).toString(16).toUpperCase()}\tno recovery target specified\n`]]);
    const r = planRestore({ backups: [b1, b2], catalog: catalog(k2), histories, target: { kind: 'latest' }, nowMs: now });
    assert.ok(r.ok, !r.ok ? r.reason : '');
    const seg5 = r.plan.segments.find((x) => x.segno === 5n)!;
    assert.equal(seg5.timeline, 1);
    assert.equal(seg5.cutOffset, 500, 'bytes past the switch point were never part of timeline 2');
    assert.equal(r.plan.segments.find((x) => x.segno === 4n)!.cutOffset, undefined);
  });

  it('refuses a timeline whose history is not archived', () => {
    const r = planRestore({ backups: [b1], catalog: catalog(keys), histories: new Map(), target: { kind: 'latest' }, timeline: 3, nowMs: now });
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.reason : '', /history file of timeline 3 is not in the archive/);
  });
});

describe('parseTargetTime', () => {
  it('takes any offset and gives Postgres a form it accepts', () => {
    assert.deepEqual(parseTargetTime('2026-12-08T14:02:00Z'), { atMs: Date.UTC(2026, 11, 8, 14, 2, 0), pgText: '2026-12-08 14:02:00.000000+00' });
    assert.deepEqual(parseTargetTime('2026-12-08 15:02:00.25+01:00'), { atMs: Date.UTC(2026, 11, 8, 14, 2, 0, 250), pgText: '2026-12-08 14:02:00.250000+00' });
    assert.deepEqual(parseTargetTime('2026-12-08T09:02:00.123456-05'), { atMs: Date.UTC(2026, 11, 8, 14, 2, 0, 123), pgText: '2026-12-08 14:02:00.123456+00' });
  });
  it('refuses a time without an offset or an impossible date', () => {
    assert.match((parseTargetTime('2026-12-08T14:02:00') as { error: string }).error, /with an offset/);
    assert.match((parseTargetTime('2026-02-30T14:02:00Z') as { error: string }).error, /not a valid date/);
  });
});
