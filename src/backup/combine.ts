// Combines a chain of extracted PG17 backups (a full one, then incrementals,
// each taken against the one before) into one data directory Postgres can
// start on: what pg_combinebackup does, which the embedded package does not
// ship. The rules follow src/bin/pg_combinebackup (pg_combinebackup.c and
// reconstruct.c):
//   - the chain is checked first: one system identifier (pg_control), each
//     incremental's INCREMENTAL FROM LSN/TLI equal to the START WAL
//     LOCATION/TIMELINE of the backup before it, only the first one full;
//   - the newest backup decides which files exist; INCREMENTAL.<name> files
//     under base/, global/ and pg_tblspc/ are rebuilt block by block (newest
//     copy of each block wins; an older incremental supplies blocks below the
//     newest truncation length; the walk stops at the first full file; blocks
//     found nowhere are zero pages); every other file is copied;
//   - backup_label is the newest one without its two INCREMENTAL FROM lines;
//     backup_manifest is not carried over (it describes the incremental).
// Async I/O throughout: the daemon runs this (restore tests) beside Raft.

import { createReadStream, createWriteStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { BLCKSZ, INCREMENTAL_PREFIX, parseIncrementalHeader, reconstructedBlockLength, RELSEG_SIZE, type IncrementalHeader } from './incremental-file.js';

export class CombineError extends Error {
  override name = 'CombineError';
}

export interface BackupLabel {
  startLsn: string;
  startTimeline: number;
  incrementalFromLsn?: string;
  incrementalFromTimeline?: number;
  /** The label's text, line by line. */
  lines: string[];
}

export function parseBackupLabel(text: string, where: string): BackupLabel {
  const lines = text.split('\n');
  const field = (name: string): string | undefined =>
    lines
      .find((l) => l.startsWith(`${name}: `))
      ?.slice(name.length + 2)
      .trim();
  const start = field('START WAL LOCATION');
  const tli = field('START TIMELINE');
  const m = start === undefined ? null : /^([0-9A-F]+\/[0-9A-F]+)\b/i.exec(start);
  if (m === null || tli === undefined || !/^\d+$/.test(tli))
    throw new CombineError(`${where}/backup_label has no START WAL LOCATION or START TIMELINE line; not a base backup`);
  const label: BackupLabel = { startLsn: m[1]!.toUpperCase(), startTimeline: Number(tli), lines };
  const fromLsn = field('INCREMENTAL FROM LSN');
  const fromTli = field('INCREMENTAL FROM TLI');
  if ((fromLsn === undefined) !== (fromTli === undefined))
    throw new CombineError(`${where}/backup_label has only one of INCREMENTAL FROM LSN and INCREMENTAL FROM TLI`);
  if (fromLsn !== undefined && fromTli !== undefined) {
    label.incrementalFromLsn = fromLsn.toUpperCase();
    label.incrementalFromTimeline = Number(fromTli);
  }
  return label;
}

/** The system identifier: the first 8 bytes of global/pg_control (ControlFileData.system_identifier). */
export async function systemIdentifier(dir: string): Promise<bigint> {
  const fh = await fsp.open(path.join(dir, 'global', 'pg_control'), 'r').catch((e: NodeJS.ErrnoException) => {
    throw new CombineError(`${dir} has no readable global/pg_control (${e.code ?? e.message}); not a base backup`);
  });
  try {
    const buf = Buffer.alloc(8);
    const { bytesRead } = await fh.read(buf, 0, 8, 0);
    if (bytesRead !== 8) throw new CombineError(`${dir}/global/pg_control is truncated`);
    return buf.readBigUInt64LE(0);
  } finally {
    await fh.close();
  }
}

/** Checks the chain (oldest first) and returns the labels. */
export async function checkChain(dirs: readonly string[]): Promise<BackupLabel[]> {
  if (dirs.length === 0) throw new CombineError('no backups to combine');
  const labels: BackupLabel[] = [];
  let sysid: bigint | undefined;
  for (const [i, dir] of dirs.entries()) {
    const text = await fsp.readFile(path.join(dir, 'backup_label'), 'utf8').catch(() => {
      throw new CombineError(`${dir} has no backup_label; not a base backup`);
    });
    const label = parseBackupLabel(text, dir);
    const id = await systemIdentifier(dir);
    if (sysid !== undefined && id !== sysid) throw new CombineError(`${dir} is from another cluster: system identifier ${id}, the chain's is ${sysid}`);
    sysid = id;
    if (i === 0 && label.incrementalFromLsn !== undefined) throw new CombineError(`${dir} is an incremental backup; the chain must start with a full one`);
    if (i > 0) {
      const prev = labels[i - 1]!;
      if (label.incrementalFromLsn === undefined) throw new CombineError(`${dir} is a full backup in the middle of the chain; start the chain at it instead`);
      if (label.incrementalFromLsn !== prev.startLsn || label.incrementalFromTimeline !== prev.startTimeline) {
        throw new CombineError(
          `${dir} was taken against the backup starting at ${label.incrementalFromLsn} on timeline ${label.incrementalFromTimeline}, but the backup before it in the chain (${dirs[i - 1]}) starts at ${prev.startLsn} on timeline ${prev.startTimeline}`,
        );
      }
    }
    labels.push(label);
  }
  return labels;
}

export interface CombineOptions {
  /** chown every file and directory written (the Postgres OS user when running as root). */
  owner?: { uid: number; gid: number } | undefined;
  /** fsync every file and directory before resolving (default true). */
  fsync?: boolean | undefined;
  /**
   * The chain's directories are scratch copies the caller deletes afterwards:
   * files are moved out of them (rename) rather than copied, and a rebuilt file
   * whose walk ends at a full copy is that copy, moved, with only the other
   * blocks written over it. A restore then writes what changed, not the whole
   * database again. Default false: the chain is left as it was.
   */
  consume?: boolean | undefined;
}

export interface CombineStats {
  filesCopied: number;
  filesReconstructed: number;
  bytesWritten: number;
}

const SKIPPED_TOP_FILES = new Set(['backup_label', 'backup_manifest']);

/** Combines `dirs` (oldest first: a full backup, then incrementals) into `targetDir`, which must be missing or empty. */
export async function combineBackups(dirs: readonly string[], targetDir: string, opts: CombineOptions = {}): Promise<CombineStats> {
  const labels = await checkChain(dirs);
  const target = path.resolve(targetDir);
  await fsp.mkdir(target, { recursive: true, mode: 0o700 });
  const existing = await fsp.readdir(target);
  if (existing.length > 0) throw new CombineError(`combine target ${target} is not empty (${existing.slice(0, 3).join(', ')})`);
  await fsp.chmod(target, 0o700);
  if (opts.owner) await fsp.chown(target, opts.owner.uid, opts.owner.gid);
  const c = new Combiner(
    dirs.map((d) => path.resolve(d)),
    target,
    opts,
  );
  await c.walk('');
  const newest = labels[labels.length - 1]!;
  const label = newest.lines.filter((l) => !l.startsWith('INCREMENTAL FROM LSN: ') && !l.startsWith('INCREMENTAL FROM TLI: ')).join('\n');
  await c.writeFile('backup_label', Buffer.from(label));
  await c.finish();
  return c.stats;
}

/** Where INCREMENTAL.* files are meaningful (pg_combinebackup: base/*, global, pg_tblspc/*). */
function reconstructs(relDir: string): boolean {
  return relDir === 'global' || relDir.startsWith(`base${path.sep}`) || relDir.startsWith(`pg_tblspc${path.sep}`);
}

interface Source {
  fh: fsp.FileHandle;
  name: string;
}

class Combiner {
  readonly stats: CombineStats = { filesCopied: 0, filesReconstructed: 0, bytesWritten: 0 };
  private readonly dirsWritten: string[] = [];
  private readonly fsync: boolean;

  constructor(
    private readonly chain: readonly string[],
    private readonly target: string,
    private readonly opts: CombineOptions,
  ) {
    this.fsync = opts.fsync ?? true;
  }

  private get newest(): string {
    return this.chain[this.chain.length - 1]!;
  }

  async walk(rel: string): Promise<void> {
    const entries = await fsp.readdir(path.join(this.newest, rel), { withFileTypes: true });
    for (const e of entries) {
      const r = path.join(rel, e.name);
      if (e.isDirectory()) {
        await fsp.mkdir(path.join(this.target, r), { mode: 0o700 });
        await this.own(path.join(this.target, r));
        this.dirsWritten.push(r);
        await this.walk(r);
      } else if (e.isFile()) {
        if (rel === '' && SKIPPED_TOP_FILES.has(e.name)) continue;
        if (e.name.startsWith(INCREMENTAL_PREFIX) && reconstructs(rel)) await this.reconstruct(rel, e.name.slice(INCREMENTAL_PREFIX.length));
        else await this.copy(r);
      } else {
        throw new CombineError(`${path.join(this.newest, r)} is neither a file nor a directory; a base backup holds only those`);
      }
    }
  }

  private async copy(rel: string): Promise<void> {
    const to = path.join(this.target, rel);
    if (this.opts.consume === true) await fsp.rename(path.join(this.newest, rel), to);
    else await fsp.copyFile(path.join(this.newest, rel), to);
    await fsp.chmod(to, 0o600);
    await this.own(to);
    await this.sync(to);
    this.stats.filesCopied++;
    this.stats.bytesWritten += (await fsp.stat(to)).size;
  }

  async writeFile(rel: string, data: Buffer): Promise<void> {
    const to = path.join(this.target, rel);
    await fsp.writeFile(to, data, { mode: 0o600 });
    await this.own(to);
    await this.sync(to);
  }

  private async reconstruct(relDir: string, bare: string): Promise<void> {
    const sources: Source[] = [];
    try {
      const latestName = path.join(this.newest, relDir, INCREMENTAL_PREFIX + bare);
      const latest = await openIncremental(latestName);
      sources.push(latest.source);
      const length = reconstructedBlockLength(latest.header);
      // For each output block: which source (index into `sources`, -1 none) and where in it.
      const from = new Int32Array(length).fill(-1);
      const offset = new Float64Array(length);
      latest.header.blocks.forEach((b, i) => {
        from[b] = 0;
        offset[b] = latest.header.headerBytes + i * BLCKSZ;
      });
      const trunc = latest.header.truncationBlockLength;
      let base: { idx: number; name: string } | undefined; // the full copy the walk ended at
      for (let k = this.chain.length - 2; k >= 0; k--) {
        const full = path.join(this.chain[k]!, relDir, bare);
        const fullFh = await fsp.open(full, 'r').catch((e: NodeJS.ErrnoException) => {
          if (e.code === 'ENOENT') return undefined;
          throw e;
        });
        if (fullFh !== undefined) {
          const idx = sources.push({ fh: fullFh, name: full }) - 1;
          base = { idx, name: full };
          const blocks = Math.floor((await fullFh.stat()).size / BLCKSZ);
          for (let b = 0; b < trunc && b < length; b++) {
            if (from[b] === -1 && b < blocks) {
              from[b] = idx;
              offset[b] = b * BLCKSZ;
            }
          }
          break; // a full file ends the walk
        }
        const incName = path.join(this.chain[k]!, relDir, INCREMENTAL_PREFIX + bare);
        const older = await openIncremental(incName).catch((e: NodeJS.ErrnoException) => {
          if (e.code === 'ENOENT')
            throw new CombineError(`${path.join(relDir, bare)}: neither a full nor an incremental copy in ${this.chain[k]}; the chain is broken`);
          throw e;
        });
        const idx = sources.push(older.source) - 1;
        older.header.blocks.forEach((b, i) => {
          if (b < trunc && b < length && from[b] === -1) {
            from[b] = idx;
            offset[b] = older.header.headerBytes + i * BLCKSZ;
          }
        });
      }
      if (base !== undefined && this.opts.consume === true) await this.patchInPlace(path.join(relDir, bare), base, length, from, offset, sources);
      else await this.writeReconstructed(path.join(relDir, bare), length, from, offset, sources);
      this.stats.filesReconstructed++;
    } finally {
      for (const s of sources) await s.fh.close().catch(() => {});
    }
  }

  /** Writes the rebuilt file as a new file, every block in order. */
  private async writeReconstructed(rel: string, length: number, from: Int32Array, offset: Float64Array, sources: Source[]): Promise<void> {
    const out = await fsp.open(path.join(this.target, rel), 'wx', 0o600);
    try {
      const written = await writeBlocks(out, length, from, offset, sources, null);
      if (this.opts.owner) await out.chown(this.opts.owner.uid, this.opts.owner.gid);
      if (this.fsync) await out.sync();
      this.stats.bytesWritten += written;
    } finally {
      await out.close();
    }
  }

  /**
   * consume: moves the full copy to the target and writes over it only the
   * blocks that come from elsewhere (newer copies, or zero pages), then cuts it
   * to `length` blocks. The result equals writeReconstructed's: every block
   * whose source is the full copy sits at the same offset in it.
   */
  private async patchInPlace(
    rel: string,
    base: { idx: number; name: string },
    length: number,
    from: Int32Array,
    offset: Float64Array,
    sources: Source[],
  ): Promise<void> {
    const to = path.join(this.target, rel);
    await fsp.rename(base.name, to);
    const out = await fsp.open(to, 'r+');
    try {
      this.stats.bytesWritten += await writeBlocks(out, length, from, offset, sources, base.idx);
      await out.truncate(length * BLCKSZ);
      await out.chmod(0o600);
      if (this.opts.owner) await out.chown(this.opts.owner.uid, this.opts.owner.gid);
      if (this.fsync) await out.sync();
    } finally {
      await out.close();
    }
  }

  private async own(p: string): Promise<void> {
    if (this.opts.owner) await fsp.chown(p, this.opts.owner.uid, this.opts.owner.gid);
  }

  private async sync(file: string): Promise<void> {
    if (!this.fsync) return;
    const fh = await fsp.open(file, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  /** fsyncs every directory written, deepest first, then the target. */
  async finish(): Promise<void> {
    if (!this.fsync) return;
    for (const rel of [...this.dirsWritten].reverse()) await syncDir(path.join(this.target, rel));
    await syncDir(this.target);
  }
}

/**
 * Writes blocks [0, length) of a rebuilt file into `out` at their offsets,
 * reading runs of consecutive blocks from one source in one read (1 MiB at
 * most); block b comes from sources[from[b]] at offset[b], or is a zero page
 * (-1). Blocks whose source is `inPlace` are already there and are skipped.
 * Returns the bytes written.
 */
async function writeBlocks(
  out: fsp.FileHandle,
  length: number,
  from: Int32Array,
  offset: Float64Array,
  sources: readonly Source[],
  inPlace: number | null,
): Promise<number> {
  const maxRunBlocks = 128;
  const buf = Buffer.alloc(maxRunBlocks * BLCKSZ);
  let written = 0;
  for (let b = 0; b < length; ) {
    const src = from[b]!;
    let n = 1;
    while (b + n < length && n < maxRunBlocks && from[b + n] === src && (src === -1 || offset[b + n] === offset[b]! + n * BLCKSZ)) n++;
    const bytes = n * BLCKSZ;
    if (src !== inPlace) {
      if (src === -1) buf.fill(0, 0, bytes);
      else {
        const s = sources[src]!;
        const { bytesRead } = await s.fh.read(buf, 0, bytes, offset[b]!);
        if (bytesRead !== bytes) throw new CombineError(`${s.name}: read ${bytesRead} of ${bytes} bytes at offset ${offset[b]}; the file is truncated`);
      }
      await out.write(buf, 0, bytes, b * BLCKSZ);
      written += bytes;
    }
    b += n;
  }
  return written;
}

async function syncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function openIncremental(name: string): Promise<{ source: Source; header: IncrementalHeader }> {
  const fh = await fsp.open(name, 'r');
  try {
    const size = (await fh.stat()).size;
    const first = Buffer.alloc(12);
    await fh.read(first, 0, 12, 0);
    const numBlocks = size >= 12 ? first.readUInt32LE(4) : 0;
    const headLen = 12 + 4 * Math.min(numBlocks, RELSEG_SIZE);
    const head = Buffer.alloc(Math.min(headLen, size));
    await fh.read(head, 0, head.length, 0);
    return { source: { fh, name }, header: parseIncrementalHeader(head, size, name) };
  } catch (e) {
    await fh.close();
    throw e;
  }
}

/** Copies a whole stream to a file (used by callers that restore single files). */
export async function writeStreamToFile(src: NodeJS.ReadableStream, file: string): Promise<void> {
  await pipeline(src, createWriteStream(file, { mode: 0o600 }));
}

export { createReadStream };
