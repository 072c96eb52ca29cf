// The archive checker on hand-made store listings: one that holds a gap, one
// that is behind, one that is fine; across a failover (a timeline path from a
// history file); the start of the archive against the run's start and
// retention; and its place in check().

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { addObject, type WalCatalog } from '../../src/archive/catalog.js';
import { fullSegmentKey, historyKey, partKey } from '../../src/archive/layout.js';
import { checkArchive, type ArchiveGapAnomaly, type ArchiveBehindAnomaly, type ArchiveObservation } from '../checkers/archive.js';
import { check } from '../checkers/check.js';

const PREFIX = 'test/';
const SEG = 16n * 1024n * 1024n;
const at = (segno: bigint, offset: number): bigint => segno * SEG + BigInt(offset);

type Obj = { tli: number; segno: bigint; full: true } | { tli: number; segno: bigint; from: number; to: number };

function catalog(objects: readonly Obj[], historyTimelines: readonly number[] = []): WalCatalog {
  const cat: WalCatalog = { timelines: new Map(), histories: new Map(), unrecognized: [] };
  let atMs = 1_700_000_000_000;
  for (const o of objects) {
    atMs += 200;
    const key = 'full' in o ? fullSegmentKey(PREFIX, o.tli, o.segno, atMs) : partKey(PREFIX, o.tli, o.segno, o.from, o.to, atMs);
    addObject(cat, PREFIX, key, 100);
  }
  for (const t of historyTimelines) addObject(cat, PREFIX, historyKey(PREFIX, t), 40);
  for (const segs of cat.timelines.values()) for (const s of segs.values()) s.parts.sort((a, b) => a.startOffset - b.startOffset || b.endOffset - a.endOffset);
  assert.deepEqual(cat.unrecognized, []);
  return cat;
}

function observation(cat: WalCatalog, o: Partial<ArchiveObservation> = {}): ArchiveObservation {
  return {
    store: 'fs',
    catalog: cat,
    histories: new Map(),
    node: 'n1',
    timeline: 1,
    flushLsn: at(2n, 0x20_0000),
    startLsn: at(1n, 0),
    retentionFloorLsn: null,
    waitedMs: 812.4,
    boundMs: 30_000,
    ...o,
  };
}

/** Segment 1 whole, segment 2 in parts up to 0x200000. */
const CAUGHT_UP: Obj[] = [
  { tli: 1, segno: 1n, full: true },
  { tli: 1, segno: 2n, from: 0, to: 0x10_0000 },
  { tli: 1, segno: 2n, from: 0x10_0000, to: 0x20_0000 },
];

describe('archive checker', () => {
  it('passes an archive that reaches the final flush position in one span', () => {
    const r = checkArchive(observation(catalog(CAUGHT_UP)));
    assert.equal(r.valid, true);
    assert.deepEqual(r.anomalies, []);
    assert.equal(r.stats.caughtUp, true);
    assert.deepEqual(r.stats.spans, [{ startLsn: '0/1000000', endLsn: '0/2200000' }]);
    assert.equal(r.stats.archivedToLsn, '0/2200000');
    assert.equal(r.stats.flushLsn, '0/2200000');
    assert.equal(r.stats.waitedMs, 812);
    // Overlapping parts (a new primary storing again from a segment start) are no gap.
    const overlap = checkArchive(observation(catalog([...CAUGHT_UP, { tli: 1, segno: 2n, from: 0, to: 0x18_0000 }])));
    assert.equal(overlap.valid, true);
  });

  it('a hole between two archived spans is an archive-gap naming the LSNs on either side', () => {
    const cat = catalog([
      { tli: 1, segno: 1n, full: true },
      { tli: 1, segno: 2n, from: 0, to: 0x10_0000 },
      { tli: 1, segno: 2n, from: 0x18_0000, to: 0x20_0000 },
    ]);
    const r = checkArchive(observation(cat));
    assert.equal(r.valid, false);
    assert.equal(r.anomalies.length, 1, JSON.stringify(r.anomalies));
    const g = r.anomalies[0] as ArchiveGapAnomaly;
    assert.equal(g.type, 'archive-gap');
    assert.equal(g.fromLsn, '0/2100000');
    assert.equal(g.toLsn, '0/2180000');
    assert.equal(g.bytes, 0x8_0000);
    assert.equal(g.timeline, 1);
    assert.equal(g.atStart, false);
    assert.match(g.message, /from 0\/2100000 to 0\/2180000 \(524288 bytes\) on timeline 1 is not archived/);
    assert.equal(r.stats.spans.length, 2);
    assert.equal(r.stats.caughtUp, true, 'the end is reached: only the gap is wrong');
  });

  it('an archive short of the flush position is archive-behind, saying by how much', () => {
    const r = checkArchive(observation(catalog(CAUGHT_UP), { flushLsn: at(2n, 0x28_0000), waitedMs: 30_004 }));
    assert.equal(r.valid, false);
    assert.equal(r.anomalies.length, 1);
    const b = r.anomalies[0] as ArchiveBehindAnomaly;
    assert.equal(b.type, 'archive-behind');
    assert.equal(b.archivedToLsn, '0/2200000');
    assert.equal(b.flushLsn, '0/2280000');
    assert.equal(b.bytesBehind, 0x8_0000);
    assert.equal(b.node, 'n1');
    assert.equal(b.waitedMs, 30_004);
    assert.match(b.message, /did not catch up within 30000 ms .*archived to 0\/2200000, 524288 bytes short/);
    assert.equal(r.stats.caughtUp, false);

    const empty = checkArchive(observation(catalog([])));
    assert.equal(empty.valid, false);
    assert.deepEqual(
      empty.anomalies.map((a) => a.type),
      ['archive-behind'],
    );
    assert.equal((empty.anomalies[0] as ArchiveBehindAnomaly).archivedToLsn, null);
  });

  it('follows the final timeline through its history file: a failover is no gap, WAL past the fork does not count', () => {
    const cat = catalog(
      [
        { tli: 1, segno: 1n, full: true },
        { tli: 1, segno: 2n, from: 0, to: 0x8_0000 },
        // The old primary's WAL past the switch point, on the old timeline.
        { tli: 1, segno: 2n, from: 0x8_0000, to: 0x9_0000 },
        // The new primary goes on from the start of the switch point's segment.
        { tli: 2, segno: 2n, from: 0, to: 0x20_0000 },
      ],
      [2],
    );
    const histories = new Map([[2, '1\t0/2080000\tno recovery target specified\n']]);
    const r = checkArchive(observation(cat, { timeline: 2, histories }));
    assert.equal(r.valid, true, JSON.stringify(r.anomalies));
    assert.deepEqual(r.stats.path, [
      { timeline: 1, beginLsn: '0/0', endLsn: '0/2080000' },
      { timeline: 2, beginLsn: '0/2080000', endLsn: null },
    ]);
    assert.deepEqual(r.stats.spans, [{ startLsn: '0/1000000', endLsn: '0/2200000' }]);

    // The old timeline short of the switch point: a gap on timeline 1.
    const short = catalog(
      [
        { tli: 1, segno: 1n, full: true },
        { tli: 1, segno: 2n, from: 0, to: 0x4_0000 },
        { tli: 2, segno: 2n, from: 0x8_0000, to: 0x20_0000 },
      ],
      [2],
    );
    const g = checkArchive(observation(short, { timeline: 2, histories }));
    assert.deepEqual(
      g.anomalies.map((a) => [a.type, (a as ArchiveGapAnomaly).fromLsn, (a as ArchiveGapAnomaly).toLsn, (a as ArchiveGapAnomaly).timeline]),
      [['archive-gap', '0/2040000', '0/2080000', 1]],
    );

    // The final timeline's history file is not in the store: the archive cannot follow it.
    const lost = checkArchive(observation(cat, { timeline: 3, histories }));
    assert.equal(lost.valid, false);
    assert.equal(lost.anomalies[0]?.type, 'archive-behind');
    assert.match(lost.anomalies[0]!.message, /cannot follow timeline 3.*history file of timeline 3 is not in the archive/);
  });

  it('the archive must still begin where it began when the run started, unless retention deleted that WAL', () => {
    const later: Obj[] = [
      { tli: 1, segno: 2n, from: 0, to: 0x10_0000 },
      { tli: 1, segno: 2n, from: 0x10_0000, to: 0x20_0000 },
    ];
    const r = checkArchive(observation(catalog(later)));
    assert.equal(r.valid, false);
    const g = r.anomalies[0] as ArchiveGapAnomaly;
    assert.deepEqual([g.type, g.fromLsn, g.toLsn, g.atStart], ['archive-gap', '0/1000000', '0/2000000', true]);
    // A backup starting in segment 2 lets retention delete segment 1.
    assert.equal(checkArchive(observation(catalog(later), { retentionFloorLsn: at(2n, 0) })).valid, true);
    // Leftovers before the floor that retention has not deleted yet do not count, holes among them neither.
    const leftovers = catalog([{ tli: 1, segno: 1n, from: 0, to: 0x1000 }, ...later]);
    const ok = checkArchive(observation(leftovers, { retentionFloorLsn: at(2n, 0) }));
    assert.equal(ok.valid, true, JSON.stringify(ok.anomalies));
    assert.deepEqual(ok.stats.spans, [{ startLsn: '0/2000000', endLsn: '0/2200000' }]);
    // Nothing archived when the run started: no claim about the start.
    assert.equal(checkArchive(observation(catalog(later), { startLsn: null })).valid, true);
  });

  it('check() judges the archive with the history and merges the verdicts', () => {
    const gappy = catalog([
      { tli: 1, segno: 1n, full: true },
      { tli: 1, segno: 2n, from: 0x1000, to: 0x20_0000 },
    ]);
    const r = check('set', [], { archive: observation(gappy) });
    assert.equal(r.valid, false);
    assert.deepEqual(
      r.anomalies.map((a) => a.type),
      ['archive-gap'],
    );
    assert.equal(r.stats.archive?.spans.length, 2);
    assert.deepEqual(JSON.parse(JSON.stringify(r)), r, 'plain JSON: no bigint, Map or undefined');
    const fine = check('set', [], { archive: observation(catalog(CAUGHT_UP)) });
    assert.equal(fine.valid, true);
    assert.equal(fine.stats.archive?.caughtUp, true);
    assert.equal(check('set', []).stats.archive, undefined, 'no observation, no archive verdict');
    // A malformed history is 'unknown', but a proven archive gap still makes it false.
    const malformed = check('set', [{ process: 0, type: 'ok', f: 'add', timeMs: 0 }], { archive: observation(gappy) });
    assert.equal(malformed.valid, false);
    assert.deepEqual(
      malformed.anomalies.map((a) => a.type),
      ['malformed-history', 'archive-gap'],
    );
  });
});
