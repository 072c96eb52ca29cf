// SCRAM channel binding of type tls-server-end-point (RFC 5929 §4.1): the hash of
// the server's certificate, which the client computes from the certificate it
// received. A man in the middle terminating TLS with another certificate gives a
// different hash, so the SCRAM proof fails. The hash function is the one of the
// certificate's signature algorithm, with MD5 and SHA-1 replaced by SHA-256, as
// Postgres does (be_tls_get_certificate_hash). A signature algorithm without a
// hash of its own (Ed25519) has no tls-server-end-point: then SCRAM-SHA-256-PLUS
// is not offered, as Postgres cannot offer it either.

import { createHash } from 'node:crypto';

/** Signature algorithm OIDs (DER content bytes, hex) and their hash for tls-server-end-point. */
const HASH_BY_SIGNATURE_OID: ReadonlyMap<string, string> = new Map([
  ['2a864886f70d010104', 'sha256'], // md5WithRSAEncryption -> SHA-256
  ['2a864886f70d010105', 'sha256'], // sha1WithRSAEncryption -> SHA-256
  ['2a864886f70d01010b', 'sha256'], // sha256WithRSAEncryption
  ['2a864886f70d01010c', 'sha384'], // sha384WithRSAEncryption
  ['2a864886f70d01010d', 'sha512'], // sha512WithRSAEncryption
  ['2a8648ce3d0401', 'sha256'], // ecdsa-with-SHA1 -> SHA-256
  ['2a8648ce3d040302', 'sha256'], // ecdsa-with-SHA256
  ['2a8648ce3d040303', 'sha384'], // ecdsa-with-SHA384
  ['2a8648ce3d040304', 'sha512'], // ecdsa-with-SHA512
]);

/** The tls-server-end-point binding data of a DER certificate, or null when it has none (or the DER does not parse). */
export function tlsServerEndPoint(certDer: Buffer): Buffer | null {
  const oid = signatureAlgorithmOid(certDer);
  const hash = oid === null ? undefined : HASH_BY_SIGNATURE_OID.get(oid);
  return hash === undefined ? null : createHash(hash).update(certDer).digest();
}

/**
 * Certificate ::= SEQUENCE { tbsCertificate SEQUENCE, signatureAlgorithm
 * SEQUENCE { algorithm OID, ... }, signatureValue BIT STRING }: the OID's bytes.
 */
function signatureAlgorithmOid(der: Buffer): string | null {
  const outer = tlv(der, 0);
  if (outer === null || outer.tag !== 0x30) return null;
  const tbs = tlv(der, outer.contentStart);
  if (tbs === null || tbs.tag !== 0x30) return null;
  const alg = tlv(der, tbs.end);
  if (alg === null || alg.tag !== 0x30) return null;
  const oid = tlv(der, alg.contentStart);
  if (oid === null || oid.tag !== 0x06) return null;
  return der.toString('hex', oid.contentStart, oid.end);
}

/** One DER tag-length-value at `at`: null past the buffer or on a length form DER forbids. */
function tlv(b: Buffer, at: number): { tag: number; contentStart: number; end: number } | null {
  if (at + 2 > b.length) return null;
  const tag = b[at]!;
  let len = b[at + 1]!;
  let p = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || p + n > b.length) return null;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[p + i]!;
    p += n;
  }
  return p + len > b.length ? null : { tag, contentStart: p, end: p + len };
}
