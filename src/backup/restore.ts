// Restores a backup from the object store into a plain data directory that
// Postgres starts on (crash recovery from backup_label, with the WAL the backup
// carries): the parts are fetched in order, each checked against its sha256,
// decompressed, checked again against the tar's sha256, and extracted as they
// stream. An incremental backup restores its chain into scratch directories
// beside the target and combines them (combine.ts); the scratch goes away.
// A part whose bytes do not match is named and the restore refuses it.
// Each extracted backup is then checked against its own backup_manifest, as
// pg_verifybackup checks each input of pg_combinebackup (pg-manifest-check.ts):
// the sha256s above prove the store gave back what was uploaded; this proves
// what was uploaded is what Postgres sent, file by file.

import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import type { ObjectStore } from '../object-store/index.js';
import { TarExtractor } from '../postgres/tar-extract.js';
import { isSocketFile } from '../postgres/basebackup.js';
import { combineBackups } from './combine.js';
import { BROTLI_CHUNK_BYTES } from './part-uploader.js';
import type { BackupManifest } from './manifest.js';
import { checkDataDir, describeProblems, parsePgManifest, PgManifestError } from './pg-manifest-check.js';

export class RestoreError extends Error {
  override name = 'RestoreError';
}

export interface RestoreOptions {
  owner?: { uid: number; gid: number } | undefined;
  fsync?: boolean | undefined;
  /** Bytes of parts fetched so far, of the total (progress display). */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
  /** Abandons the restore (it rejects with the signal's reason and leaves the target empty). */
  signal?: AbortSignal | undefined;
}

export interface RestoreStats {
  backups: number;
  storedBytes: number;
  tarBytes: number;
  durationMs: number;
  /** Where the time went (ms, summed over the chain): streaming parts into files, fsync, the backup_manifest check, combining a chain. */
  phasesMs: RestorePhases;
}

export interface RestorePhases {
  extract: number;
  fsync: number;
  check: number;
  combine: number;
}

/** Restores `chain` (oldest first; one full backup, then its incrementals) into `targetDir`, which must be missing or empty. */
export async function restoreChain(store: ObjectStore, chain: readonly BackupManifest[], targetDir: string, opts: RestoreOptions = {}): Promise<RestoreStats> {
  const t0 = performance.now();
  const target = path.resolve(targetDir);
  await prepareEmpty(target, opts.owner);
  const totalBytes = chain.reduce((s, m) => s + m.storedBytes, 0);
  let done = 0;
  const progress = (n: number) => {
    done += n;
    opts.onProgress?.(done, totalBytes);
  };
  const phases: RestorePhases = { extract: 0, fsync: 0, check: 0, combine: 0 };
  try {
    await restoreInto(store, chain, target, opts, progress, phases);
  } catch (e) {
    // The target was empty: leave it so, and a retry starts clean.
    for (const name of await fsp.readdir(target).catch(() => [] as string[])) await fsp.rm(path.join(target, name), { recursive: true, force: true });
    throw diskFull(e, target, chain) ?? e;
  }
  return {
    backups: chain.length,
    storedBytes: totalBytes,
    tarBytes: chain.reduce((s, m) => s + m.tarBytes, 0),
    durationMs: Math.round(performance.now() - t0),
    phasesMs: { extract: Math.round(phases.extract), fsync: Math.round(phases.fsync), check: Math.round(phases.check), combine: Math.round(phases.combine) },
  };
}

/** Adds the time `work` takes to phases[name]. */
async function timed<T>(phases: RestorePhases, name: keyof RestorePhases, work: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await work();
  } finally {
    phases[name] += performance.now() - t0;
  }
}

/**
 * A full disk (or quota) is the operator's to fix, not a bug: one line naming
 * the target and roughly how much room the restore needs. Node's own message
 * ("ENOSPC: no space left on device, write") names neither.
 */
function diskFull(e: unknown, target: string, chain: readonly BackupManifest[]): RestoreError | undefined {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code !== 'ENOSPC' && code !== 'EDQUOT') return undefined;
  const what = code === 'ENOSPC' ? 'no space left on device' : 'disk quota exceeded';
  const needMb = Math.ceil(chain.reduce((s, m) => s + m.tarBytes, 0) / 1e6);
  return new RestoreError(
    `restore into ${target} failed: ${what} (${code}); the backup needs about ${needMb} MB there. The target was emptied: free space or choose a directory on a bigger disk, and retry`,
    { cause: e },
  );
}

async function restoreInto(
  store: ObjectStore,
  chain: readonly BackupManifest[],
  target: string,
  opts: RestoreOptions,
  progress: (n: number) => void,
  phases: RestorePhases,
): Promise<void> {
  if (chain.length === 1) {
    await extractBackup(store, chain[0]!, target, opts, progress, phases);
  } else {
    const scratch = chain.map((m) => `${target}.restore-${m.id}`);
    try {
      for (const [i, m] of chain.entries()) {
        await prepareEmpty(scratch[i]!, opts.owner);
        await extractBackup(store, m, scratch[i]!, { ...opts, fsync: false }, progress, phases);
      }
      opts.signal?.throwIfAborted();
      await timed(phases, 'combine', () => combineBackups(scratch, target, { owner: opts.owner, fsync: opts.fsync, consume: true }));
    } finally {
      for (const d of scratch) await fsp.rm(d, { recursive: true, force: true });
    }
  }
}

async function prepareEmpty(dir: string, owner: { uid: number; gid: number } | undefined): Promise<void> {
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  const entries = await fsp.readdir(dir);
  if (entries.length > 0) throw new RestoreError(`restore target ${dir} is not empty (${entries.slice(0, 3).join(', ')}); choose an empty or new directory`);
  await fsp.chmod(dir, 0o700);
  if (owner) await fsp.chown(dir, owner.uid, owner.gid);
}

/** Streams one backup's parts through their checks and the decompressor into a TarExtractor at `dir`. */
async function extractBackup(
  store: ObjectStore,
  m: BackupManifest,
  dir: string,
  opts: RestoreOptions,
  progress: (n: number) => void,
  phases: RestorePhases,
): Promise<void> {
  const extractor = new TarExtractor(dir, { owner: opts.owner, fsync: opts.fsync ?? true, exclude: isSocketFile });
  const tarHash = createHash('sha256');
  let tarBytes = 0;
  const sink = new Writable({
    highWaterMark: 1 << 20,
    write(chunk: Buffer, _enc, cb) {
      tarHash.update(chunk);
      tarBytes += chunk.length;
      let more: boolean;
      try {
        more = extractor.write(chunk);
      } catch (e) {
        cb(e as Error);
        return;
      }
      if (more) cb();
      else extractor.once('drain', () => cb());
    },
  });
  let extractorError: Error | undefined;
  extractor.on('error', (e: Error) => {
    extractorError = e;
    sink.destroy(e);
  });
  try {
    opts.signal?.throwIfAborted();
    const parts = partsStream(store, m, progress);
    const signal = opts.signal === undefined ? {} : { signal: opts.signal };
    await timed(phases, 'extract', async () => {
      if (m.compression === 'brotli') await pipeline(parts, zlib.createBrotliDecompress({ chunkSize: BROTLI_CHUNK_BYTES }), sink, signal);
      else await pipeline(parts, sink, signal);
    });
    await timed(phases, 'fsync', () => extractor.end());
  } catch (e) {
    extractor.destroy(e as Error);
    await extractor.settle().catch(() => {});
    throw extractorError ?? e;
  }
  if (tarBytes !== m.tarBytes || tarHash.digest('hex') !== m.tarSha256) {
    throw new RestoreError(
      `backup ${m.id}: the decompressed archive (${tarBytes} bytes) does not match its manifest (${m.tarBytes} bytes, sha256 ${m.tarSha256.slice(0, 12)}...); the backup is damaged`,
    );
  }
  // Postgres's manifest, kept beside the data for a later incremental or a check.
  const pgm = await store.get(m.pgManifest.key);
  const chunks: Buffer[] = [];
  for await (const c of pgm.body) chunks.push(c as Buffer);
  const manifest = Buffer.concat(chunks);
  if (createHash('sha256').update(manifest).digest('hex') !== m.pgManifest.sha256)
    throw new RestoreError(`${m.pgManifest.key}: sha256 mismatch; the object is damaged`);
  await fsp.writeFile(path.join(dir, 'backup_manifest'), manifest, { mode: 0o600 });
  if (opts.owner) await fsp.chown(path.join(dir, 'backup_manifest'), opts.owner.uid, opts.owner.gid);
  await timed(phases, 'check', () => checkExtracted(m, dir, manifest, opts.signal));
}

/** Checks one extracted backup against its own backup_manifest; throws a RestoreError naming the backup, the file and what differs. */
async function checkExtracted(m: BackupManifest, dir: string, manifest: Buffer, signal: AbortSignal | undefined): Promise<void> {
  let pgm: ReturnType<typeof parsePgManifest>;
  try {
    pgm = parsePgManifest(manifest, `backup ${m.id}: ${m.pgManifest.key}`);
  } catch (e) {
    if (e instanceof PgManifestError) throw new RestoreError(`${e.message}; the backup cannot be checked, and the restore refuses it`);
    throw e;
  }
  // The socket lock files are listed but never extracted (basebackup.ts isSocketFile).
  const r = await checkDataDir(dir, pgm, { ignore: isSocketFile, maxProblems: 5, signal });
  if (!r.ok)
    throw new RestoreError(`backup ${m.id}: the restored files do not match its backup_manifest: ${describeProblems(r.problems)}; the backup is damaged`);
}

/**
 * The parts of a backup as one stream. Each part (at most the part size, 16 MiB
 * by default) is read whole and checked against its sha256 before any of its
 * bytes go on: nothing unverified reaches the data directory.
 */
export function partsStream(store: ObjectStore, m: BackupManifest, progress: (n: number) => void, refuser = 'the restore'): Readable {
  async function* gen(): AsyncGenerator<Buffer> {
    for (const part of m.parts) {
      const got = await store.get(part.key);
      const chunks: Buffer[] = [];
      let n = 0;
      for await (const c of got.body) {
        const b = c as Buffer;
        n += b.length;
        if (n > part.bytes) break;
        chunks.push(b);
      }
      got.body.destroy();
      const data = Buffer.concat(chunks);
      const sha = createHash('sha256').update(data).digest('hex');
      if (n !== part.bytes || sha !== part.sha256) {
        throw new RestoreError(
          `${part.key}: ${n}${n > part.bytes ? '+' : ''} bytes with sha256 ${sha.slice(0, 12)}..., the manifest says ${part.bytes} bytes with sha256 ${part.sha256.slice(0, 12)}...; the object is damaged and ${refuser} refuses it`,
        );
      }
      progress(n);
      yield data;
    }
  }
  return Readable.from(gen(), { objectMode: false });
}

/**
 * Makes a restored directory a standalone server: the backup carries its
 * source's settings (ogel.conf, postgresql.auto.conf), which would have it wait
 * for synchronous standbys that are not there, try to stream from the old
 * primary, or listen on the cluster's addresses. postgresql.auto.conf is read
 * last, so these lines win. The port stays the source's; pass -p to change it.
 * The socket goes into the restored directory, as ogel does for its nodes.
 */
const STANDALONE_START = "# Written by 'ogel restore': a standalone copy, not a member of the cluster it came from.";
const STANDALONE_END = "# End of the lines written by 'ogel restore'.";

/** Takes makeStandalone's lines out again: the copy becomes a cluster's first primary (disaster recovery), whose settings ogel writes. */
export async function undoStandalone(dir: string): Promise<void> {
  const file = path.join(dir, 'postgresql.auto.conf');
  const text = await fsp.readFile(file, 'utf8');
  const start = text.indexOf(STANDALONE_START);
  if (start < 0) return;
  const end = text.indexOf(STANDALONE_END, start);
  if (end < 0) throw new RestoreError(`${file}: the restore's standalone settings have no end line; it was edited`);
  await fsp.writeFile(file, text.slice(0, start) + text.slice(end + STANDALONE_END.length + 1));
}

export async function makeStandalone(dir: string, owner: { uid: number; gid: number } | undefined): Promise<void> {
  const file = path.join(dir, 'postgresql.auto.conf');
  const lines = [
    '',
    STANDALONE_START,
    "synchronous_standby_names = ''",
    "primary_conninfo = ''",
    "primary_slot_name = ''",
    "listen_addresses = 'localhost'",
    // The source's socket directory was its own data directory; this one's is.
    `unix_socket_directories = '${path.resolve(dir).replace(/'/g, "''")}'`,
    STANDALONE_END,
    '',
  ].join('\n');
  await fsp.appendFile(file, lines, { mode: 0o600 });
  if (owner) await fsp.chown(file, owner.uid, owner.gid);
  // A backup of a standby carries its standby.signal: left in place, the copy would
  // start in recovery with no upstream and never accept a write.
  for (const signal of ['standby.signal', 'recovery.signal']) await fsp.rm(path.join(dir, signal), { force: true });
}
