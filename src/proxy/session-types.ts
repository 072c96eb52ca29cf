// What a session (session.ts) is given, and the link state its parts share
// (docs/proxy.md, Session states).

import type tls from 'node:tls';
import type { ScramVerifier } from '../auth/scram.js';
import type { StatementNames } from './prepared.js';
import type { PoolManager } from './pool-manager.js';
import type { RouteTarget, Router } from './router.js';
import type { Session } from './session.js';
import type { ClaimedIdentity, PoolMode, ProxyRefusal, ResolveIdentity, ScramServerExchange } from './types.js';

export type { PoolMode } from './types.js';

/** What every session shares: the ProxyServer provides it. */
export interface SessionContext {
  mode: PoolMode;
  holdTimeoutMs: number;
  maxMessageBytes: number;
  /** Startup and authentication must finish within this. */
  authTimeoutMs: number;
  maxPreparedPerServer: number;
  tlsMode: 'off' | 'on' | 'required';
  tls: tls.SecureContext | null;
  /** Client sockets arrive paused (pauseOnConnect) and read into the shared buffer (shared-read.ts). */
  sharedReads: boolean;
  resolveIdentity: ResolveIdentity;
  scram: (verifier: ScramVerifier, identity: ClaimedIdentity) => ScramServerExchange;
  /** See ProxyServerOptions.doomedScram. */
  doomedScram: ((user: string) => ScramServerExchange) | null;
  pools: PoolManager;
  router: Router;
  names: StatementNames;
  /** Admission (client limits); returns a refusal, or null and counts the client in. */
  admit(identity: ClaimedIdentity): ProxyRefusal | null;
  /** The client leaves (undoes admit). */
  leave(identity: ClaimedIdentity): void;
  /** A BackendKeyData for this session (cancel map). */
  register(session: Session): { processId: number; secretKey: number };
  unregister(session: Session): void;
  /** A CancelRequest arrived (the key as the client sent it). */
  cancel(processId: number, secretKey: number): void;
  /** Sends a CancelRequest to a server backend. */
  cancelServer(target: RouteTarget, processId: number, secretKey: number): void;
  counters: SessionCounters;
  log(e: { level: 'debug' | 'info' | 'warn' | 'error'; msg: string; [k: string]: unknown }): void;
}

export interface SessionCounters {
  protocolErrors: number;
  authFailures: number;
  held: number;
  holdTimeouts: number;
  retried: number;
  failedInFlight: number;
}

/**
 * Where the session stands with a server (docs/proxy.md, Session states). Every
 * change goes through Session.to(). In every state but idle and linked, the
 * client's messages wait in `pending` (requests.ts).
 */
export type LinkState =
  | 'idle' // no server: the next client message looks for one
  | 'acquiring' // waiting for a server (pool queue, parameter sync, failover hold)
  | 'linked' // a server runs the client's messages
  | 'prelude' // a rerun's opening runs alone; its answers are swallowed
  | 'prelude-answered' // the prelude's ReadyForQuery came: endPrelude decides after the chunk
  | 'fence-check' // the server is asked whether its 25006 was a fence (askFence)
  | 'termination-check'; // a terminated backend: the cluster's doing or someone's? (termination-check.ts)

// Session.tryLinkNow's answers.
export const NOT_NOW = 0;
export const LINKED = 1;
export const SYNCING = 2;

/** After the proxy ends a client connection, how long the peer has to close its side. */
export const CLOSE_LINGER_MS = 5_000;
/** Client bytes read and kept while waiting for a server before reading pauses (then at most one more chunk or message). */
export const WAIT_READ_BYTES_MAX = 256 * 1024;
