// CRC-32C (Castagnoli), the checksum Postgres puts in backup_manifest by
// default: the reflected polynomial 0x82F63B78, initial value 0xFFFFFFFF,
// final XOR 0xFFFFFFFF, as src/include/port/pg_crc32c.h. Table-driven,
// slicing-by-8 like Postgres's portable fallback (pg_crc32c_sb8.c): eight
// 256-entry tables, one 8-byte step per iteration. Node has no CRC-32C of its
// own (zlib.crc32 is the IEEE polynomial), and a restore checks every byte of
// the backup with it, so the speed matters.
//
// In the manifest, Postgres writes the final value's bytes as they lie in
// memory (pg_checksum_final memcpy's the uint32, then hex-encodes it): on the
// little-endian machines it runs on, crc32c("123456789") = 0xe3069283 is
// written "839206e3". crc32cHex does the same.

const POLY = 0x82f63b78;

/** T[k][b]: the CRC of byte b followed by k zero bytes. */
const T: Uint32Array[] = (() => {
  const t = Array.from({ length: 8 }, () => new Uint32Array(256));
  for (let b = 0; b < 256; b++) {
    let c = b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[0]![b] = c >>> 0;
  }
  for (let k = 1; k < 8; k++) for (let b = 0; b < 256; b++) t[k]![b] = (t[k - 1]![b]! >>> 8) ^ t[0]![t[k - 1]![b]! & 0xff]!;
  return t;
})();
const [T0, T1, T2, T3, T4, T5, T6, T7] = T as [Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array];

/** Feeds `data` into a running CRC (the raw register, not finalized); start from CRC32C_INIT. */
export function crc32cUpdate(crc: number, data: Uint8Array): number {
  let c = crc >>> 0;
  let i = 0;
  const n = data.length;
  // Whole 8-byte steps, then the tail a byte at a time.
  for (const end = n - (n % 8); i < end; i += 8) {
    const a = (c ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24))) >>> 0;
    const b = data[i + 4]! | (data[i + 5]! << 8) | (data[i + 6]! << 16) | (data[i + 7]! << 24);
    c =
      T7[a & 0xff]! ^
      T6[(a >>> 8) & 0xff]! ^
      T5[(a >>> 16) & 0xff]! ^
      T4[a >>> 24]! ^
      T3[b & 0xff]! ^
      T2[(b >>> 8) & 0xff]! ^
      T1[(b >>> 16) & 0xff]! ^
      T0[b >>> 24]!;
  }
  for (; i < n; i++) c = T0[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return c >>> 0;
}

export const CRC32C_INIT = 0xffffffff;

/** The finished CRC-32C of `data` (what Postgres's FIN_CRC32C leaves). */
export function crc32c(data: Uint8Array): number {
  return (crc32cUpdate(CRC32C_INIT, data) ^ 0xffffffff) >>> 0;
}

/** A finished CRC as backup_manifest spells it: its 4 bytes in little-endian order, lowercase hex. */
export function crc32cHex(finished: number): string {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(finished >>> 0, 0);
  return b.toString('hex');
}

/** An incremental CRC-32C with the shape of node:crypto's Hash (update, then digest once). */
export class Crc32c {
  private crc = CRC32C_INIT;

  update(data: Uint8Array): this {
    this.crc = crc32cUpdate(this.crc, data);
    return this;
  }

  /** The finished value. */
  value(): number {
    return (this.crc ^ 0xffffffff) >>> 0;
  }

  /** The manifest's spelling of the finished value. */
  hex(): string {
    return crc32cHex(this.value());
  }
}
