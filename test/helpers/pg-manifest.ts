// Postgres backup_manifest files made by hand for tests, in Postgres's layout
// (one file per line) and with a valid Manifest-Checksum.

import { createHash } from 'node:crypto';
import { crc32c, crc32cHex } from '../../src/backup/crc32c.js';
import type { ChecksumAlgorithm } from '../../src/backup/pg-manifest-check.js';

export function checksumOf(alg: ChecksumAlgorithm, data: Buffer): string | undefined {
  if (alg === 'NONE') return undefined;
  if (alg === 'CRC32C') return crc32cHex(crc32c(data));
  return createHash(alg.toLowerCase()).update(data).digest('hex');
}

/** Replaces the last line's Manifest-Checksum with the SHA-256 of everything above it, as Postgres writes it. */
export function seal(body: string): Buffer {
  const sha = createHash('sha256').update(body).digest('hex');
  return Buffer.from(`${body}"Manifest-Checksum": "${sha}"}\n`);
}

export function reseal(manifest: Buffer): Buffer {
  const text = manifest.toString('utf8');
  const cut = text.lastIndexOf('\n', text.length - 2);
  return seal(text.slice(0, cut + 1));
}

/** A manifest in Postgres's layout (one file per line) for `files`, with a valid Manifest-Checksum. */
export function manifestFor(files: Record<string, Buffer>, alg: ChecksumAlgorithm = 'CRC32C', sysid?: bigint): Buffer {
  const lines = Object.entries(files).map(([p, data], i) => {
    const sum = checksumOf(alg, data);
    const tail = sum === undefined ? '' : `, "Checksum-Algorithm": "${alg}", "Checksum": "${sum}"`;
    return `${i === 0 ? '' : ','}{ "Path": "${p}", "Size": ${data.length}, "Last-Modified": "2025-01-01 00:00:00 GMT"${tail} }`;
  });
  const head =
    sysid === undefined ? '{ "PostgreSQL-Backup-Manifest-Version": 1,\n' : `{ "PostgreSQL-Backup-Manifest-Version": 2,\n"System-Identifier": ${sysid},\n`;
  return seal(`${head}"Files": [\n${lines.join('\n')}\n],\n"WAL-Ranges": [\n{ "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000100" }\n],\n`);
}
