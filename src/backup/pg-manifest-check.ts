// What pg_verifybackup does to a plain-format backup, for the ones ogel
// restores (the embedded PostgreSQL package ships no pg_verifybackup): parse
// Postgres's backup_manifest, check its Manifest-Checksum, then check an
// extracted directory against it. The rules follow
// src/bin/pg_verifybackup/pg_verifybackup.c and src/common/parse_manifest.c:
//   - the manifest's SHA-256 covers its text up to and including the newline
//     before the Manifest-Checksum line; the manifest must end in a newline;
//   - every file on disk must be in the manifest with the listed size, and
//     every file in the manifest on disk; then the checksums of the files that
//     passed those checks (cheap problems are reported before a long read);
//   - pg_verifybackup's ignore list is left out both ways: backup_manifest,
//     pg_wal (its WAL is checked by replay, not listed), postgresql.auto.conf,
//     recovery.signal and standby.signal (a restore may write those);
//   - with a version 2 manifest, global/pg_control must carry its system
//     identifier.
// Not done: pg_verifybackup's parse of the WAL-Ranges with pg_waldump (starting
// Postgres on the copy replays that WAL, which is the stronger check).
// Files are read in 128 KiB chunks into one buffer: memory stays bounded
// whatever the size of the backup.

import { createHash } from 'node:crypto';
import { promises as fsp, type Stats } from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { systemIdentifier } from './combine.js';
import { Crc32c } from './crc32c.js';

export class PgManifestError extends Error {
  override name = 'PgManifestError';
}

export const CHECKSUM_ALGORITHMS = ['NONE', 'CRC32C', 'SHA224', 'SHA256', 'SHA384', 'SHA512'] as const;
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];
const CHECKSUM_HEX_DIGITS: Readonly<Record<ChecksumAlgorithm, number>> = { NONE: 0, CRC32C: 8, SHA224: 56, SHA256: 64, SHA384: 96, SHA512: 128 };

/** pg_verifybackup's default ignore list: relative paths (and everything under them) left out of the check. */
export const PG_VERIFYBACKUP_IGNORED: readonly string[] = ['backup_manifest', 'pg_wal', 'postgresql.auto.conf', 'recovery.signal', 'standby.signal'];

const Hex = z.string().regex(/^(?:[0-9a-fA-F]{2})*$/, 'must be hex digits, two per byte');
const LSN = z.string().regex(/^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/i, 'must be an LSN like 0/3000028');

const FileSchema = z
  .object({
    Path: z.string().min(1).optional(),
    'Encoded-Path': Hex.min(2).optional(),
    Size: z.number().int().nonnegative(),
    'Last-Modified': z.string(),
    'Checksum-Algorithm': z.enum(CHECKSUM_ALGORITHMS).optional(),
    Checksum: Hex.optional(),
  })
  .superRefine((f, ctx) => {
    if ((f.Path === undefined) === (f['Encoded-Path'] === undefined))
      ctx.addIssue({ code: 'custom', path: ['Path'], message: 'exactly one of Path and Encoded-Path is required' });
    const alg = f['Checksum-Algorithm'] ?? 'NONE';
    if (alg === 'NONE' && f.Checksum !== undefined) ctx.addIssue({ code: 'custom', path: ['Checksum'], message: 'is present without a Checksum-Algorithm' });
    if (alg !== 'NONE' && f.Checksum === undefined) ctx.addIssue({ code: 'custom', path: ['Checksum'], message: `is missing (Checksum-Algorithm is ${alg})` });
    if (alg !== 'NONE' && f.Checksum !== undefined && f.Checksum.length !== CHECKSUM_HEX_DIGITS[alg])
      ctx.addIssue({ code: 'custom', path: ['Checksum'], message: `has ${f.Checksum.length} hex digits; a ${alg} checksum has ${CHECKSUM_HEX_DIGITS[alg]}` });
  });

const WalRangeSchema = z.object({ Timeline: z.number().int().positive(), 'Start-LSN': LSN, 'End-LSN': LSN });

const ManifestSchema = z
  .object({
    'PostgreSQL-Backup-Manifest-Version': z.union([z.literal(1), z.literal(2)]),
    // Not .int(): zod's int stops at 2^53, a system identifier does not (its digits are read from the text).
    'System-Identifier': z.number().nonnegative().optional(),
    Files: z.array(FileSchema),
    'WAL-Ranges': z.array(WalRangeSchema),
    'Manifest-Checksum': z.string().regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex digits (a SHA-256)'),
  })
  .superRefine((m, ctx) => {
    if (m['PostgreSQL-Backup-Manifest-Version'] === 2 && m['System-Identifier'] === undefined)
      ctx.addIssue({ code: 'custom', path: ['System-Identifier'], message: 'is required in a version 2 manifest' });
  });

export interface PgManifestFile {
  /** Relative to the backup's root, '/'-separated. */
  path: string;
  size: number;
  algorithm: ChecksumAlgorithm;
  /** Lowercase hex; undefined when the algorithm is NONE. */
  checksum: string | undefined;
}

export interface PgManifest {
  version: 1 | 2;
  /** Exact (the JSON number can exceed 2^53); undefined in a version 1 manifest. */
  systemIdentifier: bigint | undefined;
  /** By path, in the manifest's order. */
  files: Map<string, PgManifestFile>;
  walRanges: { timeline: number; startLsn: string; endLsn: string }[];
}

/** Parses a backup_manifest and checks its Manifest-Checksum; throws PgManifestError naming `where` and the first bad field. */
export function parsePgManifest(bytes: Buffer, where: string): PgManifest {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new PgManifestError(`${where} is not JSON (${(e as Error).message})`);
  }
  const r = ManifestSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new PgManifestError(`${where}: field '${issue.path.join('.') || '(root)'}' ${issue.message}`);
  }
  const want = r.data['Manifest-Checksum'].toLowerCase();
  const got = createHash('sha256').update(checksummedPart(bytes, where)).digest('hex');
  if (got !== want) throw new PgManifestError(`${where}: the manifest's SHA-256 is ${got}, its Manifest-Checksum says ${want}; the manifest is damaged`);
  const files = new Map<string, PgManifestFile>();
  for (const f of r.data.Files) {
    const p = f.Path ?? Buffer.from(f['Encoded-Path']!, 'hex').toString('utf8');
    if (files.has(p)) throw new PgManifestError(`${where}: duplicate path name in the manifest: ${p}`);
    const algorithm = f['Checksum-Algorithm'] ?? 'NONE';
    files.set(p, { path: p, size: f.Size, algorithm, checksum: f.Checksum?.toLowerCase() });
  }
  return {
    version: r.data['PostgreSQL-Backup-Manifest-Version'],
    systemIdentifier: r.data['System-Identifier'] === undefined ? undefined : exactSystemIdentifier(bytes, where),
    files,
    walRanges: r.data['WAL-Ranges'].map((w) => ({ timeline: w.Timeline, startLsn: w['Start-LSN'], endLsn: w['End-LSN'] })),
  };
}

/** The bytes the Manifest-Checksum covers: up to and including the second-to-last newline (parse_manifest.c verify_manifest_checksum). */
function checksummedPart(bytes: Buffer, where: string): Buffer {
  const last = bytes.lastIndexOf(0x0a);
  if (last !== bytes.length - 1) throw new PgManifestError(`${where}: the last line is not newline-terminated; the manifest is truncated`);
  const penultimate = bytes.lastIndexOf(0x0a, last - 1);
  if (penultimate < 0) throw new PgManifestError(`${where}: expected at least 2 lines`);
  return bytes.subarray(0, penultimate + 1);
}

/** JSON.parse rounds a 64-bit identifier; the digits are read from the text instead. */
function exactSystemIdentifier(bytes: Buffer, where: string): bigint {
  const m = /"System-Identifier"\s*:\s*(\d+)\s*[,}]/.exec(bytes.toString('utf8'));
  if (m === null) throw new PgManifestError(`${where}: field 'System-Identifier' is not a plain integer`);
  return BigInt(m[1]!);
}

export type ManifestProblemKind = 'missing' | 'extra' | 'size' | 'checksum' | 'not-a-file' | 'unreadable' | 'system-identifier';

export interface ManifestProblem {
  kind: ManifestProblemKind;
  /** Relative to the checked directory, '/'-separated. */
  path: string;
  /** One line, naming the path and what differs. */
  detail: string;
}

export interface ManifestCheckOptions {
  /** Paths left out both ways besides pg_verifybackup's list (e.g. files the extractor skips on purpose). */
  ignore?: ((relPath: string) => boolean) | undefined;
  /** Stop once this many problems are found (default 10): a damaged backup is damaged, and the first ones name it. */
  maxProblems?: number | undefined;
  /** Presence and sizes only, as pg_verifybackup --skip-checksums. */
  skipChecksums?: boolean | undefined;
  /** Bytes checksummed so far, of the total to checksum. */
  onProgress?: ((doneBytes: number, totalBytes: number) => void) | undefined;
  signal?: AbortSignal | undefined;
}

export interface ManifestCheckResult {
  ok: boolean;
  /** Files found and matched against the manifest. */
  files: number;
  /** Bytes read for checksums. */
  checksummedBytes: number;
  problems: ManifestProblem[];
}

const READ_CHUNK_BYTES = 128 * 1024;

/** Checks `dir` (an extracted backup) against `manifest`. Problems are results; only an abort or a programmer error throws. */
export async function checkDataDir(dir: string, manifest: PgManifest, opts: ManifestCheckOptions = {}): Promise<ManifestCheckResult> {
  const c = new DirCheck(path.resolve(dir), manifest, opts);
  await c.walk('');
  if (!c.full()) c.reportMissing();
  if (!c.full() && opts.skipChecksums !== true) await c.checksums();
  return { ok: c.problems.length === 0, files: c.matched.size, checksummedBytes: c.checksummedBytes, problems: c.problems };
}

/** The problems as one line for an error message: the first few, and how many more. */
export function describeProblems(problems: readonly ManifestProblem[], shown = 3): string {
  const head = problems
    .slice(0, shown)
    .map((p) => p.detail)
    .join('; ');
  return problems.length > shown ? `${head}; and ${problems.length - shown} more` : head;
}

class DirCheck {
  readonly problems: ManifestProblem[] = [];
  /** Paths found on disk with the listed size (candidates for the checksum pass). */
  readonly matched = new Set<string>();
  private readonly seen = new Set<string>();
  private readonly maxProblems: number;
  checksummedBytes = 0;

  constructor(
    private readonly root: string,
    private readonly manifest: PgManifest,
    private readonly opts: ManifestCheckOptions,
  ) {
    this.maxProblems = opts.maxProblems ?? 10;
    if (!(this.maxProblems >= 1)) throw new RangeError(`maxProblems must be at least 1, got ${this.maxProblems}`);
  }

  full(): boolean {
    return this.problems.length >= this.maxProblems;
  }

  private report(kind: ManifestProblemKind, rel: string, detail: string): void {
    if (!this.full()) this.problems.push({ kind, path: rel, detail });
  }

  private ignored(rel: string): boolean {
    return PG_VERIFYBACKUP_IGNORED.some((i) => rel === i || rel.startsWith(`${i}/`)) || this.opts.ignore?.(rel) === true;
  }

  /** Presence, type and size of everything on disk (pg_verifybackup's verify_plain_backup_directory). */
  async walk(rel: string): Promise<void> {
    let names: string[];
    try {
      names = (await fsp.readdir(path.join(this.root, rel))).sort();
    } catch (e) {
      this.report('unreadable', rel || '.', `could not read directory "${rel || '.'}": ${(e as Error).message}`);
      return;
    }
    for (const name of names) {
      if (this.full()) return;
      this.opts.signal?.throwIfAborted();
      const r = rel === '' ? name : `${rel}/${name}`;
      if (this.ignored(r)) continue;
      await this.visit(r);
    }
  }

  private async visit(rel: string): Promise<void> {
    let st: Stats;
    try {
      st = await fsp.stat(path.join(this.root, rel)); // follows symlinks, as pg_verifybackup's stat()
    } catch (e) {
      this.report('unreadable', rel, `could not stat "${rel}": ${(e as Error).message}`);
      return;
    }
    if (st.isDirectory()) return this.walk(rel);
    if (!st.isFile()) return this.report('not-a-file', rel, `"${rel}" is not a regular file or directory`);
    const m = this.manifest.files.get(rel);
    if (m === undefined) return this.report('extra', rel, `"${rel}" is on disk but not in the manifest`);
    this.seen.add(rel);
    if (st.size !== m.size) return this.report('size', rel, `"${rel}" has ${st.size} bytes on disk, the manifest says ${m.size}`);
    this.matched.add(rel);
    if (rel === 'global/pg_control' && this.manifest.systemIdentifier !== undefined) await this.checkSystemIdentifier(rel, this.manifest.systemIdentifier);
  }

  private async checkSystemIdentifier(rel: string, want: bigint): Promise<void> {
    try {
      const got = await systemIdentifier(this.root);
      if (got !== want) this.report('system-identifier', rel, `"${rel}" has system identifier ${got}, the manifest says ${want}: another cluster's file`);
    } catch (e) {
      this.report('unreadable', rel, (e as Error).message);
    }
  }

  /** Files in the manifest not found on disk (pg_verifybackup's report_extra_backup_files, despite its name). */
  reportMissing(): void {
    for (const rel of this.manifest.files.keys()) {
      if (!this.seen.has(rel) && !this.ignored(rel)) this.report('missing', rel, `"${rel}" is in the manifest but not on disk`);
    }
  }

  async checksums(): Promise<void> {
    const todo = [...this.manifest.files.values()].filter((f) => f.algorithm !== 'NONE' && this.matched.has(f.path));
    const totalBytes = todo.reduce((s, f) => s + f.size, 0);
    const buf = Buffer.allocUnsafe(READ_CHUNK_BYTES);
    for (const f of todo) {
      if (this.full()) return;
      await this.checksumOne(f, buf, totalBytes);
    }
  }

  private async checksumOne(f: PgManifestFile, buf: Buffer, totalBytes: number): Promise<void> {
    const h = newChecksum(f.algorithm);
    let n = 0;
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(path.join(this.root, f.path), 'r');
    } catch (e) {
      return this.report('unreadable', f.path, `could not open "${f.path}": ${(e as Error).message}`);
    }
    try {
      for (;;) {
        this.opts.signal?.throwIfAborted();
        const { bytesRead } = await fh.read(buf, 0, buf.length, n);
        if (bytesRead === 0) break;
        h.update(buf.subarray(0, bytesRead));
        n += bytesRead;
        this.checksummedBytes += bytesRead;
        this.opts.onProgress?.(this.checksummedBytes, totalBytes);
      }
    } catch (e) {
      if (this.opts.signal?.aborted) throw e;
      return this.report('unreadable', f.path, `could not read "${f.path}": ${(e as Error).message}`);
    } finally {
      await fh.close();
    }
    if (n !== f.size) return this.report('size', f.path, `"${f.path}" has ${n} bytes when read, the manifest says ${f.size}`);
    const got = h.hex();
    if (got !== f.checksum) this.report('checksum', f.path, `"${f.path}" has ${f.algorithm} checksum ${got}, the manifest says ${f.checksum}`);
  }
}

/** A running checksum in the manifest's spelling. */
export function newChecksum(alg: ChecksumAlgorithm): { update(b: Uint8Array): void; hex(): string } {
  if (alg === 'CRC32C') return new Crc32c();
  if (alg === 'NONE') throw new TypeError('no checksum to compute for algorithm NONE');
  const h = createHash(alg.toLowerCase());
  return { update: (b) => void h.update(b), hex: () => h.digest('hex') };
}
