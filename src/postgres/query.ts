// Connecting to a local Postgres over its unix socket, and the little SQL
// assembly ogel needs (identifiers and literals where parameters cannot go:
// ALTER SYSTEM, CREATE ROLE ... PASSWORD, replication commands).

import pg from 'pg';
import { join } from 'node:path';

/** The bootstrap superuser initdb creates (`initdb -U postgres`). */
export const SUPERUSER = 'postgres';
export const DEFAULT_DATABASE = 'postgres';
/** application_name of ogel's own maintenance sessions. */
export const AGENT_APPLICATION_NAME = 'ogel-agent';

export interface SocketTarget {
  /** unix_socket_directories; ogel uses the data directory. */
  socketDir: string;
  port: number;
  user?: string;
  database?: string;
  applicationName?: string;
}

/** The longest unix socket path Linux accepts (sun_path is 108 bytes with the NUL). */
export const SOCKET_PATH_MAX_BYTES = 107;

export function socketPath(socketDir: string, port: number): string {
  return join(socketDir, `.s.PGSQL.${port}`);
}

/** pg client options for a unix-socket connection (local trust: no password). */
export function socketClientConfig(t: SocketTarget): pg.ClientConfig {
  return {
    host: t.socketDir,
    port: t.port,
    user: t.user ?? SUPERUSER,
    database: t.database ?? DEFAULT_DATABASE,
    application_name: t.applicationName ?? AGENT_APPLICATION_NAME,
  };
}

/**
 * A connected client over the unix socket as the superuser. The connection
 * attempt is bounded by `timeoutMs`. An 'error' listener is attached, so a
 * server-side termination does not crash the process; the next query fails.
 */
export async function connectSocket(t: SocketTarget, opts: { timeoutMs?: number } = {}): Promise<pg.Client> {
  const client = new pg.Client({ ...socketClientConfig(t), connectionTimeoutMillis: opts.timeoutMs ?? 5000 });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (err) {
    client.end().catch(() => {});
    throw err;
  }
  return client;
}

/** An SQL identifier, always double-quoted: quoteIdent('n-1') = '"n-1"'. */
export function quoteIdent(name: string): string {
  if (name === '' || name.includes('\0')) throw new TypeError(`not an SQL identifier: ${JSON.stringify(name)}`);
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * An SQL string literal, as Postgres's quote_literal does it: quotes doubled,
 * and with backslashes doubled in an E'' literal (correct whatever
 * standard_conforming_strings is).
 */
export function quoteLiteral(value: string): string {
  if (value.includes('\0')) throw new TypeError('an SQL literal cannot contain a NUL character');
  const body = value.replace(/'/g, "''");
  return value.includes('\\') ? `E'${body.replace(/\\/g, '\\\\')}'` : `'${body}'`;
}

/** SQLSTATE of a pg error, if any. */
export function sqlState(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : undefined;
}
