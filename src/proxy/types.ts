// The seams between the proxy's modules (docs/proxy.md). The session
// (session.ts) drives the wire; identity.ts and scram-server.ts decide who a
// client is; credentials.ts says how the proxy logs in to Postgres; router.ts
// says where a session may go.

import type { ScramVerifier } from '../auth/scram.js';

/** Session: a server connection for the client's whole session; transaction: one per transaction (PgBouncer's pool_mode). */
export type PoolMode = 'session' | 'transaction';

/** Startup parameters as the client sent them (names as sent; values UTF-8). */
export type StartupParams = ReadonlyMap<string, string>;

/** A refusal sent to the client as an ErrorResponse (then the connection closes). */
export interface ProxyRefusal {
  /** SQLSTATE, e.g. 28000 (invalid authorization), 28P01 (bad password), 3D000, 08P01, 57P03. */
  code: string;
  message: string;
  hint?: string | undefined;
}

/** Who the client claims to be, before the password check. */
export interface ClaimedIdentity {
  kind: 'tenant' | 'admin';
  /** The tenant's id (null for admin). */
  tenantId: string | null;
  /** Postgres role and database the session will use on the server. */
  role: string;
  database: string;
  /** The stored verifier the client's SCRAM proof is checked against. */
  verifier: ScramVerifier;
  /** Read-only session (target_session_attrs=read-only or prefer-standby): may use a standby, else the primary. */
  readOnly: boolean;
  /** This session's pooling mode (options pool_mode, else the tenant's); null: the proxy's poolMode. */
  poolMode: PoolMode | null;
  /** Startup parameters to send to the server (the allowlist only; options/target_session_attrs consumed). */
  serverParams: ReadonlyMap<string, string>;
  /** The tenant's client limit (maxConnections); null for admin. */
  maxClientConnections: number | null;
  /** Server connections per pool for this tenant (its limits.poolSize); null: the proxy's defaultPoolSize (always for admin). */
  poolSize: number | null;
}

/** identity.ts: the client's claim from its startup packet and TLS SNI; pure. */
export type ResolveIdentity = (params: StartupParams, sni: string | undefined) => ClaimedIdentity | ProxyRefusal;

/** The SCRAM-SHA-256 server exchange for one client (scram-server.ts). */
/** What the proxy offered and the client chose, for channel binding. */
export interface ScramNegotiation {
  /** The mechanism the client selected: SCRAM-SHA-256, or SCRAM-SHA-256-PLUS. */
  mechanism: string;
  /** tls-server-end-point data of this TLS connection when SCRAM-SHA-256-PLUS was offered, else null. */
  serverEndPoint: Buffer | null;
}

export interface ScramServerExchange {
  /** client-first-message (from SASLInitialResponse) -> server-first-message, or a refusal. Without a negotiation: SCRAM-SHA-256, nothing offered. */
  start(clientFirst: string, negotiation?: ScramNegotiation): string | ProxyRefusal;
  /** client-final-message (from SASLResponse) -> server-final-message when the proof is right, else a refusal (28P01). */
  finish(clientFinal: string): string | ProxyRefusal;
}

/** The proxy's own login towards Postgres for a role (credentials.ts). */
export interface ServerCredentials {
  user: string;
  password: string;
}

export function isRefusal(x: unknown): x is ProxyRefusal {
  return (
    typeof x === 'object' && x !== null && typeof (x as ProxyRefusal).code === 'string' && typeof (x as ProxyRefusal).message === 'string' && !('kind' in x)
  );
}
