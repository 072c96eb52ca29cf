// A streaming tar extractor for what PostgreSQL's BASE_BACKUP emits (ustar), plus
// the pax ('x', 'g') and GNU ('L', 'K') long-name extensions that other tars use.
//
// Why not a library: none is installed, and the backup path needs three things
// spelled out here: bounded memory (file data is written as it arrives, with a cap
// on bytes queued to the kernel and on open files), no trust in entry names (an
// entry may not escape the target directory, neither by '..', by an absolute path,
// nor through a symlink an earlier entry created), and durability (every file and
// directory is fsynced before end() resolves).
//
// Producer protocol (like a Writable, without its buffering of caller-owned chunks):
// write(chunk) parses what it can synchronously and copies whatever it keeps, so the
// caller may reuse its buffer at once (the pg protocol parser hands out views into a
// buffer it reuses). It returns false when the producer should pause; 'drain' says
// when to resume. end() finishes.

import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface TarExtractOptions {
  /** chown every created entry to this owner (lchown for symlinks). */
  owner?: { uid: number; gid: number } | undefined;
  /** fsync every file and directory before end() resolves. Default true. */
  fsync?: boolean | undefined;
  /** Upper bound on file data handed to fs but not yet written. Default 16 MiB. */
  inflightBytesMax?: number | undefined;
  /** Upper bound on files open at once. Default 64. */
  openFilesMax?: number | undefined;
  /** Entries (by normalised relative path) to consume without writing. */
  exclude?: ((relPath: string) => boolean) | undefined;
}

export interface TarStats {
  files: number;
  dirs: number;
  symlinks: number;
  /** Bytes of regular-file content written. */
  fileBytes: number;
  /** Bytes of tar input consumed (headers, padding, content). */
  tarBytes: number;
}

export class TarFormatError extends Error {
  override name = 'TarFormatError';
}

const BLOCK = 512;
/**
 * File data is gathered into buffers of up to this size before it goes to fs:
 * Postgres sends CopyData frames of a few KiB, and one threadpool round trip per
 * frame (tens of thousands per GB) costs more than the copying. Gathering is
 * also the copy the caller's reused buffer requires, so each byte is copied once.
 */
const STAGE_BYTES = 512 * 1024;
const META_BYTES_MAX = 1 << 20; // pax / GNU long-name payloads are tiny; refuse absurd ones
const O_NOFOLLOW = fs.constants.O_NOFOLLOW ?? 0;
const FILE_OPEN_FLAGS = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | O_NOFOLLOW;

type State =
  | { kind: 'header' }
  | { kind: 'file'; remaining: number; padding: number; stream: fs.WriteStream; stage: Buffer | undefined; fill: number }
  | { kind: 'meta'; remaining: number; padding: number; type: 'x' | 'g' | 'L' | 'K'; parts: Buffer[] }
  | { kind: 'skip'; remaining: number }
  | { kind: 'eof' };

interface PendingMeta {
  path?: string;
  linkpath?: string;
  size?: number;
}

export class TarExtractor extends EventEmitter {
  readonly targetDir: string;
  readonly stats: TarStats = { files: 0, dirs: 0, symlinks: 0, fileBytes: 0, tarBytes: 0 };

  private readonly owner: { uid: number; gid: number } | undefined;
  private readonly doFsync: boolean;
  private readonly inflightBytesMax: number;
  private readonly openFilesMax: number;
  private readonly exclude: ((relPath: string) => boolean) | undefined;

  private state: State = { kind: 'header' };
  private readonly header = Buffer.alloc(BLOCK);
  private headerFill = 0;
  private meta: PendingMeta = {};

  /** Copied input not yet parsed (only non-empty while waiting). */
  private readonly queue: Buffer[] = [];
  private queueOffset = 0;
  private needDrain = false;
  /** Set by step() when parsing must pause (no free file slot, or too many bytes in flight). */
  private waiting = false;

  private inflightBytes = 0;
  private openFiles = 0;
  /** Settles when every open file has been closed (and chmod/chown applied). */
  private readonly fileDone = new Set<Promise<void>>();
  private readonly filesWritten: string[] = [];
  /** Directories we created or entered, relative path → mode to apply at the end. */
  private readonly dirModes = new Map<string, number>();
  private readonly knownDirs = new Set<string>(['']);
  private readonly symlinks = new Set<string>();

  private failure: Error | undefined;
  private ended = false;

  constructor(targetDir: string, opts: TarExtractOptions = {}) {
    super();
    this.targetDir = path.resolve(targetDir);
    this.owner = opts.owner;
    this.doFsync = opts.fsync ?? true;
    this.inflightBytesMax = opts.inflightBytesMax ?? 16 << 20;
    this.openFilesMax = opts.openFilesMax ?? 64;
    this.exclude = opts.exclude;
    if (!(this.inflightBytesMax > 0) || !(this.openFilesMax > 0)) throw new Error('tar-extract: limits must be positive');
    fs.mkdirSync(this.targetDir, { recursive: true, mode: 0o700 });
  }

  /**
   * Feed tar bytes. The chunk is copied, so the caller may reuse its buffer at once.
   * Returns false when the caller should wait for 'drain' before writing more.
   * Throws (and stays failed) on malformed or unsafe input.
   */
  write(chunk: Uint8Array): boolean {
    if (this.failure) throw this.failure;
    if (this.ended) throw new Error('tar-extract: write after end');
    if (chunk.byteLength === 0) return !this.blocked();
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.queue.length > 0) {
      // Already waiting: keep a copy (the caller may reuse its buffer).
      this.queue.push(Buffer.from(buf));
    } else {
      // Parse straight from the caller's buffer: step() copies whatever it keeps
      // (header bytes, extension records, file data into the stage buffer).
      this.waiting = false;
      let off = 0;
      try {
        while (off < buf.length && !this.failure && !this.waiting) off = this.step(buf, off);
      } catch (e) {
        this.fail(e instanceof Error ? e : new Error(String(e)));
      }
      if (this.failure) throw this.failure;
      if (off < buf.length) {
        this.queue.push(Buffer.from(buf.subarray(off)));
        this.queueOffset = 0;
      }
    }
    if (this.failure) throw this.failure;
    if (this.blocked()) {
      this.needDrain = true;
      return false;
    }
    return true;
  }

  /** Finish: checks the archive is complete, waits for every write, fsyncs, applies modes. */
  async end(): Promise<TarStats> {
    if (this.failure) throw this.failure;
    this.ended = true;
    if (this.hasPending()) {
      this.needDrain = true;
      await new Promise<void>((resolve, reject) => {
        const onDrain = () => {
          this.off('error', onError);
          resolve();
        };
        const onError = (e: Error) => {
          this.off('drain', onDrain);
          reject(e);
        };
        this.once('drain', onDrain);
        this.once('error', onError);
        this.pump();
      });
    }
    if (this.failure) throw this.failure;
    const s = this.state;
    if (s.kind !== 'eof' && !(s.kind === 'header' && this.headerFill === 0)) {
      this.fail(new TarFormatError(`truncated tar: input ended inside ${s.kind === 'header' ? 'a header' : `a ${s.kind} entry`}`));
      throw this.failure;
    }
    await Promise.all([...this.fileDone]);
    if (this.failure) throw this.failure;
    if (this.doFsync) await this.fsyncAll();
    // Directory modes last: a read-only directory must not stop us creating its entries.
    for (const [rel, mode] of this.dirModes) fs.chmodSync(this.abs(rel), mode);
    if (this.doFsync) await fsyncPath(this.targetDir, true);
    return this.stats;
  }

  /** Abort: close open files, drop queued input. Idempotent. */
  destroy(err?: Error): void {
    this.fail(err ?? new Error('tar-extract: destroyed'), false);
  }

  /** Resolves once every file this extractor opened is closed (after end(), or after a failure). */
  async settle(): Promise<void> {
    await Promise.all([...this.fileDone]);
  }

  /** The first error, if any (also emitted as 'error' when someone listens). */
  get error(): Error | undefined {
    return this.failure;
  }

  // ---------------------------------------------------------------- parsing

  /** Input held back: queued bytes, or a complete header waiting for a file slot. */
  private hasPending(): boolean {
    return this.queue.length > 0 || (this.state.kind === 'header' && this.headerFill === BLOCK);
  }

  private blocked(): boolean {
    return this.inflightBytes > this.inflightBytesMax || this.hasPending();
  }

  private pump(): void {
    this.waiting = false;
    try {
      if (this.state.kind === 'header' && this.headerFill === BLOCK) {
        if (!this.onHeader()) {
          this.waiting = true;
          return;
        }
        this.headerFill = 0;
      }
      while (this.queue.length > 0 && !this.failure) {
        const chunk = this.queue[0]!;
        const off = this.step(chunk, this.queueOffset);
        if (off >= chunk.length) {
          this.queue.shift();
          this.queueOffset = 0;
        } else {
          this.queueOffset = off;
        }
        if (this.waiting) return; // resumed by a file closing or by in-flight bytes draining
      }
    } catch (e) {
      this.fail(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    this.maybeDrain();
  }

  private maybeDrain(): void {
    if (this.needDrain && !this.hasPending() && this.inflightBytes <= this.inflightBytesMax / 2 && !this.failure) {
      this.needDrain = false;
      this.emit('drain');
    }
  }

  /** Consumes bytes of chunk from off and returns the new offset; sets `waiting` to pause. */
  private step(chunk: Buffer, off: number): number {
    const avail = chunk.length - off;
    const s = this.state;
    switch (s.kind) {
      case 'header': {
        const n = Math.min(BLOCK - this.headerFill, avail);
        chunk.copy(this.header, this.headerFill, off, off + n);
        this.headerFill += n;
        this.stats.tarBytes += n;
        if (this.headerFill === BLOCK) {
          // Opening a file may have to wait for a free slot: keep the full header
          // (headerFill stays BLOCK) and handle it again when pumped.
          if (!this.onHeader()) {
            this.waiting = true;
            return off + n;
          }
          this.headerFill = 0;
        }
        return off + n;
      }
      case 'file': {
        if (this.inflightBytes > this.inflightBytesMax) {
          this.waiting = true;
          return off;
        }
        s.stage ??= Buffer.allocUnsafe(Math.min(STAGE_BYTES, s.remaining));
        const n = Math.min(s.remaining, avail, s.stage.length - s.fill);
        chunk.copy(s.stage, s.fill, off, off + n);
        s.fill += n;
        s.remaining -= n;
        this.stats.fileBytes += n;
        this.stats.tarBytes += n;
        if (s.fill === s.stage.length) {
          // The stage now belongs to the stream; the next bytes go to a new one.
          const data = s.stage;
          s.stage = undefined;
          s.fill = 0;
          this.inflightBytes += data.length;
          s.stream.write(data, (err) => {
            this.inflightBytes -= data.length;
            if (err) this.fail(err);
            else if (this.inflightBytes <= this.inflightBytesMax / 2) {
              if (this.waiting) this.pump();
              else this.maybeDrain();
            }
          });
        }
        if (s.remaining === 0) {
          this.closeFile(s.stream);
          this.state = s.padding > 0 ? { kind: 'skip', remaining: s.padding } : { kind: 'header' };
        }
        return off + n;
      }
      case 'meta': {
        const n = Math.min(s.remaining, avail);
        s.parts.push(Buffer.from(chunk.subarray(off, off + n))); // copy: chunk may be the caller's
        s.remaining -= n;
        this.stats.tarBytes += n;
        if (s.remaining === 0) {
          this.onMeta(s.type, Buffer.concat(s.parts));
          this.state = s.padding > 0 ? { kind: 'skip', remaining: s.padding } : { kind: 'header' };
        }
        return off + n;
      }
      case 'skip': {
        const n = Math.min(s.remaining, avail);
        s.remaining -= n;
        this.stats.tarBytes += n;
        if (s.remaining === 0) this.state = { kind: 'header' };
        return off + n;
      }
      case 'eof':
        // Trailing zero blocks and record padding after the end-of-archive marker.
        this.stats.tarBytes += avail;
        return chunk.length;
    }
  }

  /** Handles a complete header block. Returns false if it must be retried later (no file slot). */
  private onHeader(): boolean {
    const h = this.header;
    if (isZeroBlock(h)) {
      this.state = { kind: 'eof' };
      return true;
    }
    verifyChecksum(h);
    const type = h[156] === 0 ? '0' : String.fromCharCode(h[156]!);
    const magic = h.toString('latin1', 257, 263);
    const posix = magic === 'ustar\0'; // GNU writes 'ustar ' + ' \0' and keeps other data in the prefix field
    let name = cString(h, 0, 100);
    if (posix) {
      const prefix = cString(h, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    let size = parseNumber(h, 124, 12, 'size');
    const mode = parseNumber(h, 100, 8, 'mode') & 0o7777;
    let linkname = cString(h, 157, 100);

    if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
      if (size > META_BYTES_MAX) throw new TarFormatError(`tar ${type} extension of ${size} bytes exceeds ${META_BYTES_MAX}`);
      this.state = { kind: 'meta', type, remaining: size, padding: pad(size), parts: [] };
      if (size === 0) {
        this.onMeta(type, Buffer.alloc(0));
        this.state = { kind: 'header' };
      }
      return true;
    }

    if (this.meta.path !== undefined) name = this.meta.path;
    if (this.meta.linkpath !== undefined) linkname = this.meta.linkpath;
    if (this.meta.size !== undefined) size = this.meta.size;

    if (type === '0' || type === '7') {
      if (this.openFiles >= this.openFilesMax) return false; // retried when a file closes
      this.meta = {};
      const rel = this.safeRel(name, false);
      if (this.exclude?.(rel)) this.state = size > 0 ? { kind: 'skip', remaining: size + pad(size) } : { kind: 'header' };
      else this.openFile(rel, mode, size);
      return true;
    }
    this.meta = {};
    const skipData = () => (this.state = size > 0 ? { kind: 'skip', remaining: size + pad(size) } : { kind: 'header' });
    if ((type === '5' || type === '2') && this.exclude?.(this.safeRel(name, type === '5'))) {
      skipData();
      return true;
    }
    switch (type) {
      case '5': {
        const rel = this.safeRel(name, true);
        this.makeDir(rel, mode || 0o700);
        break;
      }
      case '2': {
        const rel = this.safeRel(name, false);
        if (linkname === '') throw new TarFormatError(`symlink ${JSON.stringify(name)} has an empty target`);
        this.makeSymlink(rel, linkname);
        break;
      }
      case '1':
        throw new TarFormatError(`hard link ${JSON.stringify(name)} -> ${JSON.stringify(linkname)}: hard links are not supported`);
      default:
        throw new TarFormatError(`tar entry ${JSON.stringify(name)} has unsupported type '${type}'`);
    }
    skipData();
    return true;
  }

  private onMeta(type: 'x' | 'g' | 'L' | 'K', data: Buffer): void {
    switch (type) {
      case 'L':
        this.meta.path = cString(data, 0, data.length);
        break;
      case 'K':
        this.meta.linkpath = cString(data, 0, data.length);
        break;
      case 'g':
        break; // global pax defaults: nothing we use (no global path/linkpath is meaningful)
      case 'x':
        for (const [k, v] of parsePax(data)) {
          if (k === 'path') this.meta.path = v;
          else if (k === 'linkpath') this.meta.linkpath = v;
          else if (k === 'size') {
            if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) throw new TarFormatError(`bad pax size ${JSON.stringify(v)}`);
            this.meta.size = Number(v);
          }
        }
        break;
    }
  }

  // ------------------------------------------------------------ filesystem

  /** Normalises an entry name to a safe relative path ('' is the target itself). */
  private safeRel(name: string, isDir: boolean): string {
    if (name.includes('\0')) throw new TarFormatError(`tar entry name contains NUL`);
    if (name.startsWith('/')) throw new TarFormatError(`tar entry ${JSON.stringify(name)} has an absolute path`);
    const parts = name.split('/').filter((p) => p !== '' && p !== '.');
    if (parts.includes('..')) throw new TarFormatError(`tar entry ${JSON.stringify(name)} escapes the target directory ('..')`);
    if (parts.length === 0 && !isDir) throw new TarFormatError(`tar entry ${JSON.stringify(name)} has no file name`);
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join('/');
      if (this.symlinks.has(prefix)) {
        throw new TarFormatError(`tar entry ${JSON.stringify(name)} goes through the symlink ${JSON.stringify(prefix)} created by this archive`);
      }
    }
    return parts.join('/');
  }

  private abs(rel: string): string {
    return rel === '' ? this.targetDir : path.join(this.targetDir, rel);
  }

  private ensureParent(rel: string): void {
    const parent = path.posix.dirname(rel);
    const p = parent === '.' ? '' : parent;
    if (this.knownDirs.has(p)) return;
    // Archives without explicit directory entries: create the chain (0700, like Postgres).
    const parts = p.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const sub = parts.slice(0, i).join('/');
      if (!this.knownDirs.has(sub)) this.makeDir(sub, 0o700, false);
    }
  }

  private makeDir(rel: string, mode: number, explicit = true): void {
    if (rel !== '') {
      this.ensureParent(rel);
      const abs = this.abs(rel);
      try {
        fs.mkdirSync(abs, { mode: 0o700 });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || !fs.lstatSync(abs).isDirectory()) throw e;
      }
      if (this.owner) fs.chownSync(abs, this.owner.uid, this.owner.gid);
      this.knownDirs.add(rel);
      this.symlinks.delete(rel);
      this.stats.dirs++;
    }
    if (explicit || !this.dirModes.has(rel)) this.dirModes.set(rel, mode & 0o7777);
  }

  private makeSymlink(rel: string, target: string): void {
    this.ensureParent(rel);
    const abs = this.abs(rel);
    try {
      fs.symlinkSync(target, abs);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      if (fs.lstatSync(abs).isDirectory()) throw new TarFormatError(`symlink ${JSON.stringify(rel)} would replace a directory`);
      fs.unlinkSync(abs);
      fs.symlinkSync(target, abs);
    }
    if (this.owner) fs.lchownSync(abs, this.owner.uid, this.owner.gid);
    this.symlinks.add(rel);
    this.stats.symlinks++;
  }

  private openFile(rel: string, mode: number, size: number): void {
    this.ensureParent(rel);
    const abs = this.abs(rel);
    if (this.symlinks.delete(rel)) fs.unlinkSync(abs); // a later entry replaces an earlier symlink
    // flags is typed as a string but fs.open takes the numeric form: we need O_NOFOLLOW.
    const stream = fs.createWriteStream(abs, {
      flags: FILE_OPEN_FLAGS as unknown as string,
      mode: mode || 0o600,
      highWaterMark: 1 << 20,
    });
    this.openFiles++;
    this.stats.files++;
    this.filesWritten.push(rel);
    const done = new Promise<void>((resolve) => {
      stream.once('error', (err) => {
        this.fail(err);
        resolve();
      });
      stream.once('close', () => {
        this.openFiles--;
        const finishMeta = async () => {
          if (this.failure) return;
          await fs.promises.chmod(abs, mode || 0o600);
          if (this.owner) await fs.promises.chown(abs, this.owner.uid, this.owner.gid);
        };
        finishMeta()
          .catch((err: Error) => this.fail(err))
          .finally(() => {
            this.fileDone.delete(done);
            resolve();
            if (this.waiting && !this.failure) this.pump();
          });
      });
    });
    this.fileDone.add(done);
    if (size > 0) {
      this.state = { kind: 'file', remaining: size, padding: pad(size), stream, stage: undefined, fill: 0 };
    } else {
      this.closeFile(stream);
      this.state = { kind: 'header' };
    }
  }

  private closeFile(stream: fs.WriteStream): void {
    stream.end();
  }

  private async fsyncAll(): Promise<void> {
    // Files first, then directories deepest first, the target last (by the caller).
    const files = this.filesWritten;
    const dirs = [...this.knownDirs].filter((d) => d !== '').sort((a, b) => b.length - a.length);
    await runBounded(files, 16, (rel) => fsyncPath(this.abs(rel), false));
    await runBounded(dirs, 16, (rel) => fsyncPath(this.abs(rel), true));
  }

  private fail(err: Error, emit = true): void {
    if (this.failure) return;
    this.failure = err;
    this.queue.length = 0;
    this.queueOffset = 0;
    const s = this.state;
    if (s.kind === 'file') {
      s.stage = undefined;
      s.stream.destroy();
    }
    // Streams already ending finish on their own; their 'close' handlers see the failure.
    if (emit && this.listenerCount('error') > 0) this.emit('error', err);
  }
}

/** Reads a whole stream (or any async iterable of chunks) into targetDir, honouring backpressure. */
export async function extractTar(
  source: AsyncIterable<Uint8Array> | NodeJS.ReadableStream,
  targetDir: string,
  opts: TarExtractOptions = {},
): Promise<TarStats> {
  const x = new TarExtractor(targetDir, opts);
  let asyncError: Error | undefined;
  x.on('error', (e: Error) => {
    asyncError = e;
  });
  try {
    for await (const chunk of source as AsyncIterable<Uint8Array>) {
      if (asyncError) throw asyncError;
      if (!x.write(chunk)) {
        await new Promise<void>((resolve, reject) => {
          const onDrain = () => {
            x.off('error', onError);
            resolve();
          };
          const onError = (e: Error) => {
            x.off('drain', onDrain);
            reject(e);
          };
          x.once('drain', onDrain);
          x.once('error', onError);
        });
      }
    }
    return await x.end();
  } catch (e) {
    x.destroy(e instanceof Error ? e : new Error(String(e)));
    throw e;
  }
}

// ------------------------------------------------------------------ helpers

function pad(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

function isZeroBlock(b: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (b[i] !== 0) return false;
  return true;
}

function cString(b: Buffer, off: number, len: number): string {
  const end = Math.min(off + len, b.length);
  let z = b.indexOf(0, off);
  if (z < 0 || z > end) z = end;
  return b.toString('utf8', off, z);
}

/** Octal (NUL/space padded) or GNU base-256 (high bit of the first byte set). */
function parseNumber(b: Buffer, off: number, len: number, what: string): number {
  const first = b[off]!;
  if (first & 0x80) {
    if (first === 0xff) throw new TarFormatError(`negative base-256 ${what} in tar header`);
    let v = first & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + b[off + i]!;
    if (!Number.isSafeInteger(v)) throw new TarFormatError(`tar ${what} too large`);
    return v;
  }
  const s = b
    .toString('latin1', off, off + len)
    .replace(/[\0 ]+$/, '')
    .replace(/^[ ]+/, '');
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarFormatError(`bad octal ${what} ${JSON.stringify(s)} in tar header`);
  const v = parseInt(s, 8);
  if (!Number.isSafeInteger(v)) throw new TarFormatError(`tar ${what} too large`);
  return v;
}

function verifyChecksum(h: Buffer): void {
  const stored = parseNumber(h, 148, 8, 'checksum');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  if (sum !== stored) throw new TarFormatError(`tar header checksum mismatch (stored ${stored}, computed ${sum}): not a tar stream, or corrupted`);
}

/** pax records: "<len> <key>=<value>\n", len counting the whole record. */
function parsePax(data: Buffer): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let off = 0;
  while (off < data.length) {
    if (data[off] === 0) break;
    const sp = data.indexOf(0x20, off);
    if (sp < 0) throw new TarFormatError('malformed pax record (no length)');
    const len = Number(data.toString('latin1', off, sp));
    if (!Number.isSafeInteger(len) || len <= sp - off + 1 || off + len > data.length) throw new TarFormatError('malformed pax record length');
    const rec = data.toString('utf8', sp + 1, off + len - 1); // drop the trailing newline
    const eq = rec.indexOf('=');
    if (eq < 0) throw new TarFormatError('malformed pax record (no "=")');
    out.push([rec.slice(0, eq), rec.slice(eq + 1)]);
    off += len;
  }
  return out;
}

async function fsyncPath(p: string, isDir: boolean): Promise<void> {
  const fh = await fs.promises.open(p, isDir ? fs.constants.O_RDONLY | fs.constants.O_DIRECTORY : fs.constants.O_RDONLY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function runBounded<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}
