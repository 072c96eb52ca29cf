// SCRAM-SHA-256 verifiers (RFC 5802, RFC 7677), as PostgreSQL stores them. The
// cluster keeps only verifiers, never passwords: the proxy authenticates clients
// against them exactly as Postgres would.

import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';

export const SCRAM_ITERATIONS_DEFAULT = 4096;

export interface ScramVerifier {
  iterations: number;
  /** base64 */
  salt: string;
  /** base64 of H(ClientKey) */
  storedKey: string;
  /** base64 of HMAC(SaltedPassword, "Server Key") */
  serverKey: string;
}

/**
 * Prepares a password for hashing. Full SASLprep (RFC 4013) maps and prohibits a
 * few code point classes; NFKC normalization is its main effect and what matters
 * for passwords people type. Postgres also falls back to the raw bytes when the
 * password is not valid SASLprep input, so this agrees for ordinary passwords.
 */
function saslPrep(password: string): string {
  return password.normalize('NFKC');
}

export function makeScramVerifier(password: string, iterations = SCRAM_ITERATIONS_DEFAULT, salt: Buffer = randomBytes(16)): ScramVerifier {
  const salted = pbkdf2Sync(saslPrep(password), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  return {
    iterations,
    salt: salt.toString('base64'),
    storedKey: createHash('sha256').update(clientKey).digest('base64'),
    serverKey: createHmac('sha256', salted).update('Server Key').digest('base64'),
  };
}

/** PostgreSQL's pg_authid format: SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>. */
export function formatPostgresVerifier(v: ScramVerifier): string {
  return `SCRAM-SHA-256$${v.iterations}:${v.salt}$${v.storedKey}:${v.serverKey}`;
}

/** A random password that is safe in a URL without escaping. */
export function generatePassword(bytes = 18): string {
  return randomBytes(bytes).toString('base64url');
}
