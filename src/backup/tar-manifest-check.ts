// Checks a base backup's tar stream against Postgres's backup_manifest as the
// bytes go by, writing nothing to disk: every regular file in the tar must be
// in the manifest with its size and checksum, and every file in the manifest
// in the tar (pg_verifybackup's rules and ignore list, pg-manifest-check.ts).
// The worker runs it after each backup on what it reads back from the store,
// so a backup whose files do not match Postgres's own checksums is marked
// failed verification when it is young, not found out at restore time.
//
// The tar is what BASE_BACKUP sends: ustar headers (Postgres writes names of
// up to 99 bytes in the name field). pax ('x') and GNU long-name ('L') headers
// are read too, for path and size, so a longer name is checked, not refused.

import {
  newChecksum,
  PG_VERIFYBACKUP_IGNORED,
  type ManifestCheckResult,
  type ManifestProblem,
  type ManifestProblemKind,
  type PgManifest,
} from './pg-manifest-check.js';

const BLOCK = 512;
/** Bound on a pax or GNU long-name record kept in memory. */
const MAX_META_BYTES = 1 << 20;

export class TarCheckFormatError extends Error {
  override name = 'TarCheckFormatError';
}

type State =
  | { kind: 'header' }
  /** File data (checked when `file` is set), then padding to the block. */
  | { kind: 'data'; remaining: number; padding: number; file: FileInCheck | undefined }
  /** A pax or long-name record applying to the next header. */
  | { kind: 'meta'; type: 'x' | 'L'; remaining: number; padding: number; parts: Buffer[] }
  | { kind: 'end' };

interface FileInCheck {
  path: string;
  size: number;
  sum: ReturnType<typeof newChecksum> | undefined;
  /** The first 8 bytes of global/pg_control: its system identifier. */
  head: Buffer | undefined;
}

export class TarManifestCheck {
  readonly problems: ManifestProblem[] = [];
  private readonly seen = new Set<string>();
  private state: State = { kind: 'header' };
  private header = Buffer.alloc(BLOCK);
  private headerFill = 0;
  private zeroBlocks = 0;
  private next: { path?: string; size?: number } = {};
  files = 0;
  checksummedBytes = 0;

  constructor(
    private readonly manifest: PgManifest,
    private readonly maxProblems = 10,
  ) {}

  /** Feeds tar bytes; throws TarCheckFormatError when the stream is not a tar. */
  write(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      const s = this.state;
      if (s.kind === 'end') return; // what follows the end blocks (tar's own padding) is not checked
      if (s.kind === 'header') {
        const n = Math.min(BLOCK - this.headerFill, chunk.length - off);
        chunk.copy(this.header, this.headerFill, off, off + n);
        this.headerFill += n;
        off += n;
        if (this.headerFill === BLOCK) {
          this.headerFill = 0;
          this.onHeader();
        }
        continue;
      }
      if (s.remaining > 0) {
        const n = Math.min(s.remaining, chunk.length - off);
        const piece = chunk.subarray(off, off + n);
        if (s.kind === 'meta') s.parts.push(Buffer.from(piece));
        else if (s.file !== undefined) this.feedFile(s.file, piece);
        s.remaining -= n;
        off += n;
        if (s.remaining === 0 && s.kind === 'data' && s.file !== undefined) this.endFile(s.file);
        if (s.remaining === 0 && s.kind === 'meta') this.endMeta(s.type, Buffer.concat(s.parts));
        continue;
      }
      const n = Math.min(s.padding, chunk.length - off);
      s.padding -= n;
      off += n;
      if (s.padding === 0) this.state = { kind: 'header' };
    }
  }

  /** After the last byte: the files of the manifest the tar did not have, and the verdict. */
  finish(): ManifestCheckResult {
    // As tar-extract.ts: the end-of-archive blocks are optional (the tar's sha256 in backup.json covers truncation).
    if (this.state.kind !== 'end' && !(this.state.kind === 'header' && this.headerFill === 0))
      throw new TarCheckFormatError('the tar stream ended inside an entry; the backup is truncated');
    for (const rel of this.manifest.files.keys()) {
      if (!this.seen.has(rel) && !ignored(rel)) this.report('missing', rel, `"${rel}" is in the manifest but not in the backup's archive`);
    }
    return { ok: this.problems.length === 0, files: this.files, checksummedBytes: this.checksummedBytes, problems: this.problems };
  }

  private onHeader(): void {
    const h = this.header;
    if (h.every((b) => b === 0)) {
      if (++this.zeroBlocks === 2) this.state = { kind: 'end' };
      return;
    }
    this.zeroBlocks = 0;
    if (!checksumOk(h)) throw new TarCheckFormatError('a tar header has a wrong checksum; the archive is damaged');
    const type = String.fromCharCode(h[156]!);
    const size = this.next.size ?? numberField(h, 124, 12);
    const padding = (BLOCK - (size % BLOCK)) % BLOCK;
    if (type === 'x' || type === 'L') {
      if (size > MAX_META_BYTES) throw new TarCheckFormatError(`a tar ${type === 'x' ? 'pax' : 'long-name'} record of ${size} bytes; the archive is damaged`);
      this.state = { kind: 'meta', type, remaining: size, padding, parts: [] };
      if (size === 0) this.endMeta(type, Buffer.alloc(0));
      return;
    }
    const rel = normalize(this.next.path ?? nameField(h));
    this.next = {};
    let file: FileInCheck | undefined;
    if ((type === '0' || type === '\0' || type === '7') && !ignored(rel)) file = this.beginFile(rel, size);
    else if (type === 'g') file = undefined; // a pax global header: nothing of ours
    this.state = { kind: 'data', remaining: size, padding, file };
    if (size === 0) {
      if (file !== undefined) this.endFile(file);
      if (padding === 0) this.state = { kind: 'header' };
    }
  }

  private endMeta(type: 'x' | 'L', data: Buffer): void {
    if (type === 'L') this.next.path = data.toString('utf8').replace(/\0.*$/s, '');
    else {
      for (const [k, v] of paxRecords(data)) {
        if (k === 'path') this.next.path = v;
        if (k === 'size') this.next.size = Number(v);
      }
    }
    const s = this.state as { padding: number };
    this.state = { kind: 'data', remaining: 0, padding: s.padding, file: undefined };
    if (s.padding === 0) this.state = { kind: 'header' };
  }

  private beginFile(rel: string, size: number): FileInCheck | undefined {
    const m = this.manifest.files.get(rel);
    this.files++;
    if (m === undefined) {
      this.report('extra', rel, `"${rel}" is in the backup's archive but not in the manifest`);
      return undefined;
    }
    this.seen.add(rel);
    if (size !== m.size) {
      this.report('size', rel, `"${rel}" has ${size} bytes in the archive, the manifest says ${m.size}`);
      return undefined;
    }
    const wantId = rel === 'global/pg_control' && this.manifest.systemIdentifier !== undefined;
    return { path: rel, size, sum: m.algorithm === 'NONE' ? undefined : newChecksum(m.algorithm), head: wantId ? Buffer.alloc(0) : undefined };
  }

  private feedFile(f: FileInCheck, piece: Buffer): void {
    f.sum?.update(piece);
    this.checksummedBytes += piece.length;
    if (f.head !== undefined && f.head.length < 8) f.head = Buffer.concat([f.head, piece.subarray(0, 8 - f.head.length)]);
  }

  private endFile(f: FileInCheck): void {
    const m = this.manifest.files.get(f.path)!;
    if (f.sum !== undefined) {
      const got = f.sum.hex();
      if (got !== m.checksum) this.report('checksum', f.path, `"${f.path}" has ${m.algorithm} checksum ${got}, the manifest says ${m.checksum}`);
    }
    if (f.head !== undefined) {
      const want = this.manifest.systemIdentifier!;
      const got = f.head.length === 8 ? f.head.readBigUInt64LE(0) : undefined; // ControlFileData.system_identifier
      if (got !== want)
        this.report('system-identifier', f.path, `"${f.path}" has system identifier ${got ?? 'none'}, the manifest says ${want}: another cluster's file`);
    }
  }

  private report(kind: ManifestProblemKind, rel: string, detail: string): void {
    if (this.problems.length < this.maxProblems) this.problems.push({ kind, path: rel, detail });
  }
}

function ignored(rel: string): boolean {
  return PG_VERIFYBACKUP_IGNORED.some((i) => rel === i || rel.startsWith(`${i}/`));
}

function normalize(name: string): string {
  return name.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
}

function nameField(h: Buffer): string {
  const name = cString(h, 0, 100);
  const ustar = h.toString('latin1', 257, 262) === 'ustar';
  const prefix = ustar ? cString(h, 345, 155) : '';
  return prefix === '' ? name : `${prefix}/${name}`;
}

function cString(h: Buffer, at: number, len: number): string {
  const end = h.indexOf(0, at);
  return h.toString('utf8', at, end < 0 || end > at + len ? at + len : end);
}

/** An octal field, or GNU base-256 when the high bit of its first byte is set. */
function numberField(h: Buffer, at: number, len: number): number {
  if (h[at]! & 0x80) {
    let n = 0;
    for (let i = at + 1; i < at + len; i++) n = n * 256 + h[i]!;
    return n;
  }
  const text = h
    .toString('latin1', at, at + len)
    .replace(/[\0 ]+$/, '')
    .trim();
  if (!/^[0-7]*$/.test(text)) throw new TarCheckFormatError(`a tar header has size field ${JSON.stringify(text)}, not an octal number; the archive is damaged`);
  return text === '' ? 0 : Number.parseInt(text, 8);
}

function checksumOk(h: Buffer): boolean {
  const want = numberField(h, 148, 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  return sum === want;
}

function* paxRecords(data: Buffer): Generator<[string, string]> {
  let off = 0;
  while (off < data.length) {
    const space = data.indexOf(0x20, off);
    if (space < 0) return;
    const len = Number(data.toString('latin1', off, space));
    if (!(len > 0) || off + len > data.length) return;
    const rec = data.toString('utf8', space + 1, off + len - 1);
    const eq = rec.indexOf('=');
    if (eq > 0) yield [rec.slice(0, eq), rec.slice(eq + 1)];
    off += len;
  }
}
