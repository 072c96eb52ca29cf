// Rebuilds one 16 MiB segment file from the archive: the whole copy when
// there is one, else its parts laid at their offsets over zeros (a segment
// the stream had not finished: Postgres reads the zeros as the end of WAL,
// exactly as it reads a partially filled segment of its own).
// Every object is checked against the sha256 it was stored with.

import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { isObjectStoreError, type ObjectStore } from '../object-store/index.js';
import { readObject } from '../backup/store-io.js';
import { addObject, segmentCoverage, type SegmentObjects, type WalCatalog } from './catalog.js';
import { segmentKeyPrefix } from './layout.js';
import { WAL_SEGMENT_BYTES } from './segments.js';

const brotliDecompress = promisify(zlib.brotliDecompress);

export class SegmentFetchError extends Error {
  override name = 'SegmentFetchError';
}

export interface FetchedSegment {
  data: Buffer;
  /** Bytes of real WAL (from offset 0): the rest is zeros. */
  coveredBytes: number;
  storedBytes: number;
}

/**
 * fetchSegment, and once more from a fresh listing when an object is gone: a
 * restore of a live cluster lists the archive, then the archiver completes the
 * segment (its parts are deleted for the whole copy) or merges its parts.
 */
export async function fetchSegmentFresh(store: ObjectStore, seg: SegmentObjects): Promise<FetchedSegment> {
  try {
    return await fetchSegment(store, seg);
  } catch (e) {
    if (!isObjectStoreError(e, 'not-found')) throw e;
    const any = seg.full?.key ?? seg.parts[0]?.key;
    if (any === undefined) throw e;
    // <cluster prefix>wal/<TLI>/<segment>...: the last 'wal/' in the key is the layout's.
    const clusterPrefix = any.slice(0, any.lastIndexOf('wal/'));
    const cat: WalCatalog = { timelines: new Map(), histories: new Map(), unrecognized: [] };
    for await (const o of store.list(segmentKeyPrefix(clusterPrefix, seg.timeline, seg.segno))) addObject(cat, clusterPrefix, o.key, o.bytes);
    const fresh = cat.timelines.get(seg.timeline)?.get(seg.segno);
    if (fresh === undefined) throw e;
    fresh.parts.sort((a, b) => a.startOffset - b.startOffset || b.endOffset - a.endOffset);
    return fetchSegment(store, fresh);
  }
}

export async function fetchSegment(store: ObjectStore, seg: SegmentObjects): Promise<FetchedSegment> {
  if (seg.full) {
    const stored = await readObject(store, { key: seg.full.key });
    const data = await inflate(stored, seg.full.key);
    if (data.length !== WAL_SEGMENT_BYTES)
      throw new SegmentFetchError(`${seg.full.key} holds ${data.length} bytes of WAL, expected a whole segment of ${WAL_SEGMENT_BYTES}`);
    return { data, coveredBytes: WAL_SEGMENT_BYTES, storedBytes: stored.length };
  }
  const cover = segmentCoverage(seg);
  if (cover.length === 0) throw new SegmentFetchError(`segment ${seg.name} of timeline ${seg.timeline} has no object in the archive`);
  const data = Buffer.alloc(WAL_SEGMENT_BYTES);
  let storedBytes = 0;
  // Only the parts that extend the covered bytes are read: a consolidated part makes the older ones redundant.
  let reach = 0;
  const parts = [...seg.parts].sort((a, b) => a.startOffset - b.startOffset || b.endOffset - a.endOffset);
  for (const p of parts) {
    if (p.endOffset <= reach) continue;
    const stored = await readObject(store, { key: p.key });
    storedBytes += stored.length;
    const raw = await inflate(stored, p.key);
    if (raw.length !== p.endOffset - p.startOffset) {
      throw new SegmentFetchError(`${p.key} holds ${raw.length} bytes of WAL, its name says ${p.endOffset - p.startOffset}`);
    }
    raw.copy(data, p.startOffset);
    reach = Math.max(reach, p.endOffset);
  }
  return { data, coveredBytes: cover[0]!.start === 0 ? cover[0]!.end : 0, storedBytes };
}

async function inflate(stored: Buffer, key: string): Promise<Buffer> {
  try {
    return await brotliDecompress(stored);
  } catch (e) {
    throw new SegmentFetchError(`${key} does not decompress as brotli: ${(e as Error).message}`);
  }
}
