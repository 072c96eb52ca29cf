// The INCREMENTAL.<relfilenode>[.<segno>] file of a PG17 incremental backup,
// read the way pg_combinebackup reads it (make_incremental_rfile in
// src/bin/pg_combinebackup/reconstruct.c; the writer is sendFile() in
// src/backend/backup/basebackup.c). Native byte order; every server this
// project runs is little-endian (x86_64, arm64), and the magic number would
// not match on a big-endian file, so a mismatch is caught, not misread.
//
//   0   uint32 magic 0xd3ae1f0d
//   4   uint32 num_blocks              (<= RELSEG_SIZE)
//   8   uint32 truncation_block_length (<= RELSEG_SIZE)
//   12  uint32 relative block numbers[num_blocks]
//   ..  zero padding to a multiple of BLCKSZ, only when num_blocks > 0
//   ..  num_blocks pages of BLCKSZ bytes, in the order of the array

export const INCREMENTAL_MAGIC = 0xd3ae1f0d;
export const BLCKSZ = 8192;
/** Blocks per relation segment file (1 GB / 8 kB). */
export const RELSEG_SIZE = 131072;
export const INCREMENTAL_PREFIX = 'INCREMENTAL.';

export interface IncrementalHeader {
  numBlocks: number;
  truncationBlockLength: number;
  /** Block numbers relative to the segment, in the order their pages follow the header. */
  blocks: Uint32Array;
  /** Byte offset of the first page. */
  headerBytes: number;
}

export class IncrementalFormatError extends Error {
  override name = 'IncrementalFormatError';
}

/** The header's length in bytes for a count of blocks (GetIncrementalHeaderSize). */
export function incrementalHeaderBytes(numBlocks: number): number {
  const raw = 12 + 4 * numBlocks;
  return numBlocks > 0 && raw % BLCKSZ !== 0 ? raw + (BLCKSZ - (raw % BLCKSZ)) : raw;
}

/**
 * Parses and checks a header. `head` holds at least the first 12 + 4*num_blocks
 * bytes (12 + 4 * RELSEG_SIZE suffices for any file); `fileBytes` is the
 * file's size, which must be exactly the header plus the pages.
 */
export function parseIncrementalHeader(head: Buffer, fileBytes: number, name: string): IncrementalHeader {
  if (head.length < 12) throw new IncrementalFormatError(`${name}: ${head.length} bytes, shorter than an incremental file's 12-byte header`);
  const magic = head.readUInt32LE(0);
  if (magic !== INCREMENTAL_MAGIC)
    throw new IncrementalFormatError(`${name}: bad incremental magic number 0x${magic.toString(16)} (expected 0x${INCREMENTAL_MAGIC.toString(16)})`);
  const numBlocks = head.readUInt32LE(4);
  const truncationBlockLength = head.readUInt32LE(8);
  if (numBlocks > RELSEG_SIZE) throw new IncrementalFormatError(`${name}: block count ${numBlocks} exceeds the segment size ${RELSEG_SIZE}`);
  if (truncationBlockLength > RELSEG_SIZE)
    throw new IncrementalFormatError(`${name}: truncation block length ${truncationBlockLength} exceeds the segment size ${RELSEG_SIZE}`);
  if (head.length < 12 + 4 * numBlocks)
    throw new IncrementalFormatError(`${name}: header cut short (${numBlocks} block numbers need ${12 + 4 * numBlocks} bytes, have ${head.length})`);
  const blocks = new Uint32Array(numBlocks);
  for (let i = 0; i < numBlocks; i++) {
    const b = head.readUInt32LE(12 + 4 * i);
    if (b >= RELSEG_SIZE) throw new IncrementalFormatError(`${name}: block number ${b} exceeds the segment size`);
    if (i > 0 && b <= blocks[i - 1]!) throw new IncrementalFormatError(`${name}: block numbers not strictly ascending at index ${i}`);
    blocks[i] = b;
  }
  const headerBytes = incrementalHeaderBytes(numBlocks);
  const expected = headerBytes + numBlocks * BLCKSZ;
  if (fileBytes !== expected)
    throw new IncrementalFormatError(`${name}: ${fileBytes} bytes, expected ${expected} (header ${headerBytes} + ${numBlocks} pages)`);
  return { numBlocks, truncationBlockLength, blocks, headerBytes };
}

/** The reconstructed file's length in blocks: the truncation length, or past the highest block sent (find_reconstructed_block_length). */
export function reconstructedBlockLength(h: IncrementalHeader): number {
  let n = h.truncationBlockLength;
  for (const b of h.blocks) if (b >= n) n = b + 1;
  return n;
}

/** Builds an incremental file (for tests of the combine step, and as the format's executable description). */
export function encodeIncrementalFile(truncationBlockLength: number, pages: ReadonlyMap<number, Buffer>): Buffer {
  const blocks = [...pages.keys()].sort((a, b) => a - b);
  const headerBytes = incrementalHeaderBytes(blocks.length);
  const out = Buffer.alloc(headerBytes + blocks.length * BLCKSZ);
  out.writeUInt32LE(INCREMENTAL_MAGIC, 0);
  out.writeUInt32LE(blocks.length, 4);
  out.writeUInt32LE(truncationBlockLength, 8);
  blocks.forEach((b, i) => {
    out.writeUInt32LE(b, 12 + 4 * i);
    const page = pages.get(b)!;
    if (page.length !== BLCKSZ) throw new RangeError(`page ${b} has ${page.length} bytes, not ${BLCKSZ}`);
    page.copy(out, headerBytes + i * BLCKSZ);
  });
  return out;
}
