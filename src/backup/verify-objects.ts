// Reads a backup back from the store and checks everything it says, writing
// nothing to disk: every part against the sha256 its backup.json recorded,
// Postgres's backup_manifest against its own, the decompressed archive against
// the tar's size and sha256, and every file in it against the backup_manifest's
// sizes and checksums (tar-manifest-check.ts, pg_verifybackup's rules). Run by
// the worker after each backup, and by `ogel backup verify`: a store that
// accepted bytes it does not give back, or a backup whose files do not match
// Postgres's own checksums, is caught while the backup is young, not at
// restore time.

import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { isObjectStoreError, type ObjectStore } from '../object-store/index.js';
import type { BackupManifest } from './manifest.js';
import { BROTLI_CHUNK_BYTES } from './part-uploader.js';
import { describeProblems, parsePgManifest, PgManifestError } from './pg-manifest-check.js';
import { partsStream, RestoreError } from './restore.js';
import { DamagedObjectError, readObject } from './store-io.js';
import { TarCheckFormatError, TarManifestCheck } from './tar-manifest-check.js';

export type ObjectsVerdict = { ok: true; objects: number; bytes: number; files: number } | { ok: false; detail: string };

/** The verdict's detail as the index records it. */
export function describeObjectsVerdict(v: ObjectsVerdict): string {
  return v.ok ? `${v.objects} objects (${v.bytes} bytes) read back and matched their sha256; ${v.files} files matched Postgres's backup_manifest` : v.detail;
}

export async function verifyBackupObjects(store: ObjectStore, m: BackupManifest, signal?: AbortSignal): Promise<ObjectsVerdict> {
  try {
    const manifestBytes = await readObject(store, m.pgManifest);
    const pgm = parsePgManifest(manifestBytes, m.pgManifest.key);
    const check = new TarManifestCheck(pgm, 5);
    const tarHash = createHash('sha256');
    let tarBytes = 0;
    let storedBytes = 0;
    const sink = new Writable({
      highWaterMark: 1 << 20,
      write(chunk: Buffer, _enc, cb) {
        try {
          tarHash.update(chunk);
          tarBytes += chunk.length;
          check.write(chunk);
          cb();
        } catch (e) {
          cb(e as Error);
        }
      },
    });
    const parts = partsStream(
      store,
      m,
      (n) => {
        storedBytes += n;
      },
      'verification',
    );
    const opts = signal === undefined ? {} : { signal };
    if (m.compression === 'brotli') await pipeline(parts, zlib.createBrotliDecompress({ chunkSize: BROTLI_CHUNK_BYTES }), sink, opts);
    else await pipeline(parts, sink, opts);
    const sha = tarHash.digest('hex');
    if (tarBytes !== m.tarBytes || sha !== m.tarSha256)
      return {
        ok: false,
        detail: `the decompressed archive has ${tarBytes} bytes with sha256 ${sha.slice(0, 12)}..., backup.json says ${m.tarBytes} bytes with sha256 ${m.tarSha256.slice(0, 12)}...`,
      };
    const r = check.finish();
    if (!r.ok) return { ok: false, detail: `the archive does not match its backup_manifest: ${describeProblems(r.problems)}` };
    return { ok: true, objects: m.parts.length + 1, bytes: storedBytes + manifestBytes.length, files: r.files };
  } catch (e) {
    if (isObjectStoreError(e) && (e.code === 'corrupt' || e.code === 'not-found')) return { ok: false, detail: (e as Error).message };
    if (e instanceof DamagedObjectError || e instanceof RestoreError || e instanceof PgManifestError || e instanceof TarCheckFormatError)
      return { ok: false, detail: e.message };
    if (isZlibDataError(e)) return { ok: false, detail: `the parts do not decompress (${(e as Error).message}); the backup is damaged` };
    throw e; // the store is unreachable (or the check was abandoned): no verdict on the backup
  }
}

function isZlibDataError(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && (code.startsWith('ERR_BROTLI') || code === 'Z_DATA_ERROR' || code === 'Z_BUF_ERROR');
}
