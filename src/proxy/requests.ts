// The client's requests (docs/proxy.md, Pooling): the messages waiting for a
// server, their forwarding to the linked one (prepared statements renamed in
// transaction mode, prepared.ts), and the response queue of what the server (or
// the proxy) still owes each of them (response-queue.ts), with what the server
// said of the transaction (its ReadyForQuery status, a batch in progress).
// The session (session.ts) owns the sockets; this side reaches them only
// through RequestsHost.

import {
  bindStatementSpan,
  cstringEnd,
  F_BIND,
  F_CLOSE,
  F_COPY_DATA,
  F_COPY_DONE,
  F_COPY_FAIL,
  F_DESCRIBE,
  F_EXECUTE,
  F_FLUSH,
  F_FUNCTION_CALL,
  F_PARSE,
  F_QUERY,
  F_SYNC,
  F_TARGET_STATEMENT,
  F_TERMINATE,
} from './protocol/frontend.js';
import { TX_IDLE } from './protocol/backend.js';
import { CLOSE_COMPLETE, closeStatement, errorResponse, PARSE_COMPLETE, parseRenamed, READY_IDLE, withNameReplaced, type ErrorSpec } from './protocol/write.js';
import { ClientStatements, CLIENT_STATEMENTS_MAX, touchServerStatement } from './prepared.js';
import {
  endsBatch,
  K_BIND,
  K_CLOSE,
  K_DESC_PORTAL,
  K_DESC_STMT,
  K_EXECUTE,
  K_FAKE_CLOSE,
  K_FAKE_ERROR,
  K_FAKE_PARSE,
  K_FUNC,
  K_PARSE,
  K_QUERY,
  K_SWALLOW_CLOSE,
  K_SWALLOW_PARSE,
  K_SYNC,
  ResponseQueue,
} from './response-queue.js';
import type { RetryWindow } from './retry-window.js';
import type { ServerConnection } from './server-conn.js';
import type { PoolMode, SessionContext } from './session-types.js';

/** What the requests need of the session. */
export interface RequestsHost {
  /** The linked server (forwarded messages go there), or null. */
  server(): ServerConnection | null;
  /** Writes (or holds back, in a retry window) an answer to the client. */
  writeClient(b: Buffer): void;
  flushClient(): void;
  resumeClient(): void;
  /** A rewritten message to the server (after the slice being collected). */
  writeServer(b: Buffer): void;
  /** Client bytes forwarded as they arrived (collected into one slice). */
  forwardRange(buf: Buffer, start: number, end: number): void;
  /** No retry for this transaction any more. */
  giveUpRetry(): void;
  close(): void;
  /** The session's pooling mode (known once it is admitted, before any request). */
  mode(): PoolMode;
}

/** Statements that may change a session setting: SET/RESET/DISCARD at a statement's start, or set_config(...). */
const SESSION_SETTING_RE = /(?:^|;)\s*(?:set|reset|discard)\b|set_config\s*\(/i;

function mentionsSessionSetting(buf: Buffer, start: number, end: number): boolean {
  return SESSION_SETTING_RE.test(buf.toString('latin1', start, end));
}

export class Requests {
  /** Client messages waiting for a server (or for a check to finish). */
  pending: Buffer[] | null = null;
  /** The server's last ReadyForQuery status (TX_*). */
  txStatus = TX_IDLE;
  /** Extended-protocol messages forwarded since the last Sync (the server is mid-batch). */
  midBatch = false;
  /** After an error the proxy made up (or a lost server), client messages are dropped until Sync, as Postgres does. */
  discardUntilSync = false;
  /**
   * A statement of this client may have changed a session setting (SET, RESET,
   * DISCARD, set_config): in transaction mode its server connection is read back
   * before anyone else gets it (session.ts), so the settings follow this client
   * and reach no other. A guess from the text: a false alarm costs one read.
   */
  maySetSession = false;
  private statements: ClientStatements | null = null;
  private readonly q = new ResponseQueue();

  constructor(
    private readonly ctx: SessionContext,
    private readonly window: RetryWindow,
    private readonly host: RequestsHost,
  ) {}

  /** Nothing owed and no batch open: the server has answered everything. */
  get quiet(): boolean {
    return this.q.empty && !this.midBatch;
  }

  get empty(): boolean {
    return this.q.empty;
  }

  headKind(): number {
    return this.q.headKind();
  }

  /**
   * A message while no server is linked: undefined when it needs one (the first
   * of a transaction), else the answer (null: none). As Postgres: a Sync with
   * nothing open gets ReadyForQuery; Flush, and COPY messages outside COPY, are
   * ignored; after a failed batch everything up to its Sync is dropped.
   */
  withoutServer(type: number): Buffer | null | undefined {
    if (this.discardUntilSync) {
      if (type !== F_SYNC) return null;
      this.discardUntilSync = false;
      return READY_IDLE;
    }
    if (type === F_SYNC) return READY_IDLE;
    if (type === F_FLUSH || type === F_COPY_DATA || type === F_COPY_DONE || type === F_COPY_FAIL) return null;
    return undefined;
  }

  // -------------------------------------------------------------------------
  // Forwarding

  /** Forwards one client message to the linked server, rewriting prepared statements in transaction mode. */
  forward(type: number, buf: Buffer, start: number, end: number): void {
    if (this.window.isOpen && !this.window.record(buf.subarray(start, end))) this.host.giveUpRetry();
    if (this.discardUntilSync) {
      if (type !== F_SYNC) return;
      this.discardUntilSync = false;
    }
    const rewrite = this.host.mode() === 'transaction';
    switch (type) {
      case F_QUERY:
        if (rewrite && !this.maySetSession) this.maySetSession = mentionsSessionSetting(buf, start + 5, end);
        this.push(K_QUERY);
        break;
      case F_SYNC:
        this.midBatch = false;
        this.push(K_SYNC);
        break;
      case F_FUNCTION_CALL:
        this.push(K_FUNC);
        break;
      case F_TERMINATE: // the client is leaving; the server stays (or goes) as close() decides
        return this.host.close();
      case F_PARSE:
        this.midBatch = true;
        if (rewrite && !this.maySetSession) this.maySetSession = mentionsSessionSetting(buf, start + 5, end);
        if (rewrite && buf[start + 5] !== 0) return this.rewriteParse(buf, start, end);
        this.push(K_PARSE);
        break;
      case F_BIND:
        this.midBatch = true;
        if (rewrite) {
          const span = bindStatementSpan(buf, start, end);
          if (span.to > span.from) {
            const name = this.renameFor(buf.toString('utf8', span.from, span.to));
            if (name !== null) {
              this.push(K_BIND);
              return this.host.writeServer(withNameReplaced(buf, start, end, span.from, span.to, name));
            }
          }
        }
        this.push(K_BIND);
        break;
      case F_DESCRIBE:
      case F_CLOSE: {
        this.midBatch = true;
        const statement = buf[start + 5] === F_TARGET_STATEMENT;
        const named = buf[start + 6] !== 0;
        if (rewrite && statement && named) {
          const clientName = buf.toString('utf8', start + 6, end - 1);
          if (type === F_CLOSE) {
            // Statements stay on the server (shared, evicted by LRU): only the client forgets it.
            this.window.note(clientName, this.statements);
            this.statements?.delete(clientName);
            return this.pushFake(K_FAKE_CLOSE, null, null);
          }
          const name = this.renameFor(clientName);
          if (name !== null) {
            this.push(K_DESC_STMT);
            return this.host.writeServer(withNameReplaced(buf, start, end, start + 6, end - 1, name));
          }
        }
        this.push(type === F_CLOSE ? K_CLOSE : statement ? K_DESC_STMT : K_DESC_PORTAL);
        break;
      }
      case F_EXECUTE:
        this.midBatch = true;
        this.push(K_EXECUTE);
        break;
      case F_FLUSH: // the client waits for answers before its Sync, so none may be held back
        if (this.window.isOpen) this.host.giveUpRetry();
        break;
      default:
        // CopyData, CopyDone, CopyFail: no entry of their own.
        break;
    }
    this.host.forwardRange(buf, start, end);
  }

  /** A named Parse in transaction mode. */
  private rewriteParse(buf: Buffer, start: number, end: number): void {
    const nameEnd = cstringEnd(buf, start + 5, end);
    const clientName = buf.toString('utf8', start + 5, nameEnd);
    this.statements ??= new ClientStatements();
    const statements = this.statements;
    if (statements.has(clientName)) {
      return this.fakeError({ code: '42P05', message: `prepared statement "${clientName}" already exists` });
    }
    if (statements.size >= CLIENT_STATEMENTS_MAX) {
      return this.fakeError({
        code: '53400',
        message: `too many prepared statements on this connection (${CLIENT_STATEMENTS_MAX}); close some (DEALLOCATE/Close)`,
      });
    }
    const rest = Buffer.from(buf.subarray(nameEnd + 1, end));
    const serverName = this.ctx.names.nameFor(rest);
    this.window.note(clientName, this.statements);
    statements.add(clientName, { serverName, rest });
    const server = this.host.server()!;
    if (server.prepared.has(serverName)) {
      // Shared by text, the server's statement may have been planned before a schema
      // change (ALTER TABLE ... ADD COLUMN): executed now it fails with 0A000 "cached
      // plan must not change result type", where this client's own Parse would have
      // planned afresh on Postgres. So a client's Parse always plans on the server:
      // the shared statement is closed (its CloseComplete swallowed) and parsed again
      // under the same name. A retry on 0A000 instead could not help inside a
      // transaction block, which the error aborts. Bind/Describe of a statement
      // the connection lacks still re-prepares silently (renameFor).
      touchServerStatement(server.prepared, serverName, this.ctx.maxPreparedPerServer);
      this.push(K_SWALLOW_CLOSE, null, serverName);
      this.host.writeServer(closeStatement(serverName));
      this.push(K_PARSE, clientName, serverName);
      return this.host.writeServer(parseRenamed(serverName, rest, 0, rest.length));
    }
    this.evictFor(server, serverName);
    this.push(K_PARSE, clientName, serverName);
    this.host.writeServer(parseRenamed(serverName, rest, 0, rest.length));
  }

  /** The server name for a client's statement, prepared on the linked server first if needed; null: unknown (forward as is: the server says it does not exist). */
  private renameFor(clientName: string): string | null {
    const s = this.statements?.get(clientName);
    if (!s) return null;
    const server = this.host.server()!;
    if (server.prepared.has(s.serverName)) {
      touchServerStatement(server.prepared, s.serverName, this.ctx.maxPreparedPerServer);
      return s.serverName;
    }
    this.evictFor(server, s.serverName);
    this.push(K_SWALLOW_PARSE, null, s.serverName);
    this.host.writeServer(parseRenamed(s.serverName, s.rest, 0, s.rest.length));
    return s.serverName;
  }

  /** Adds serverName to the connection's set, closing the least recently used statement when over the bound. */
  private evictFor(server: ServerConnection, serverName: string): void {
    const evicted = touchServerStatement(server.prepared, serverName, this.ctx.maxPreparedPerServer);
    if (evicted !== null) {
      this.push(K_SWALLOW_CLOSE, null, evicted);
      this.host.writeServer(closeStatement(evicted));
    }
  }

  /** An error the proxy answers in order; the client's messages up to Sync are then dropped, as Postgres does. */
  private fakeError(e: ErrorSpec): void {
    this.pushFake(K_FAKE_ERROR, null, errorResponse(e));
    this.discardUntilSync = true;
  }

  /** DISCARD ALL / DEALLOCATE ALL (a CommandComplete in buf[start, end)) remove every prepared statement from the server. */
  noteDiscard(conn: ServerConnection, buf: Buffer, start: number, end: number): void {
    const tag = buf.toString('latin1', start + 5, end - 1);
    if (tag === 'DISCARD ALL' || tag === 'DEALLOCATE ALL') conn.prepared.clear();
    if (tag === 'DISCARD ALL') {
      // RESET ALL too: what the proxy had set is gone.
      conn.setByProxy.clear();
      conn.paramsSig = null;
    }
  }

  // -------------------------------------------------------------------------
  // Response queue

  private push(kind: number, name: string | null = null, aux: string | Buffer | null = null): void {
    this.q.push(kind, name, aux);
  }

  /** A synthetic answer: written now if nothing is ahead of it, else when its turn comes. */
  private pushFake(kind: number, name: string | null, aux: Buffer | null): void {
    const wasEmpty = this.q.empty;
    this.q.push(kind, name, aux);
    if (wasEmpty) this.emitFakes();
  }

  /**
   * Removes the head; `failed`: its request did not take effect (undo its
   * bookkeeping). `emit`: answer the made-up entries now at the head; the
   * server's reader passes false and emits them after forwarding the answer
   * that popped this entry, so they keep their place.
   */
  pop(failed = false, emit = true): void {
    if (failed) this.undoHead();
    this.q.shift();
    if (!this.q.empty && emit) this.emitFakes();
  }

  /** The head request did not take effect: the statement tables forget what it added. */
  private undoHead(): void {
    const k = this.q.headKind();
    const name = this.q.headName();
    const aux = this.q.headAux();
    if ((k === K_PARSE || k === K_FAKE_PARSE) && name) this.statements?.delete(name);
    if ((k === K_PARSE || k === K_SWALLOW_PARSE) && typeof aux === 'string') this.host.server()?.prepared.delete(aux);
  }

  /** Answers the made-up entries at the head, in order. */
  emitFakes(): void {
    for (;;) {
      const k = this.q.headKind();
      if (k === K_FAKE_PARSE) this.host.writeClient(PARSE_COMPLETE);
      else if (k === K_FAKE_CLOSE) this.host.writeClient(CLOSE_COMPLETE);
      else if (k === K_FAKE_ERROR) {
        this.host.writeClient(this.q.headAux() as Buffer);
        this.q.shift();
        this.dropUntilSync();
        continue;
      } else return;
      this.q.shift();
    }
  }

  /** After an error in a batch the server skips to Sync: so do the entries (undoing what they did). */
  dropUntilSync(): void {
    while (!this.q.empty && this.q.headKind() !== K_SYNC) {
      this.undoHead();
      this.q.shift();
    }
  }

  private resetQueue(): void {
    while (!this.q.empty) {
      this.undoHead();
      this.q.shift();
    }
  }

  /** The server's part is over (lost, or its run dropped): nothing owed, no batch, no transaction. */
  clear(): void {
    this.resetQueue();
    this.midBatch = false;
    this.txStatus = TX_IDLE;
  }

  /**
   * The retry window runs again: nothing owed, and the client's statement table
   * and message checking as they were when the window began.
   */
  rewind(): void {
    this.resetQueue();
    this.window.undoStatements(() => (this.statements ??= new ClientStatements()));
    this.midBatch = false;
    this.discardUntilSync = false; // as when the window began: its messages are checked again
    this.txStatus = TX_IDLE;
  }

  // -------------------------------------------------------------------------
  // Answering what no server will

  /** Answers the pending requests with one error per batch (and ReadyForQuery per Sync/Query), as the server would. */
  failPending(e: ErrorSpec): void {
    const pending = this.pending ?? [];
    this.pending = null;
    const err = errorResponse(e);
    let sentError = false;
    let open = false;
    for (const m of pending) {
      const t = m[0]!;
      if (t === F_TERMINATE) return this.host.close();
      if (t === F_SYNC || t === F_QUERY || t === F_FUNCTION_CALL) {
        if (!sentError && !this.discardUntilSync) this.host.writeClient(err);
        this.host.writeClient(READY_IDLE);
        sentError = false;
        open = false;
        this.discardUntilSync = false;
      } else if (t !== F_FLUSH && t !== F_COPY_DATA && t !== F_COPY_DONE && t !== F_COPY_FAIL) {
        if (!sentError && !this.discardUntilSync) {
          this.host.writeClient(err);
          sentError = true;
        }
        open = true;
      }
    }
    if (open) this.discardUntilSync = true;
    this.host.flushClient();
    this.host.resumeClient();
  }

  /** Answers every request the lost server would have answered: an error and ReadyForQuery per batch. */
  failOutstanding(e: ErrorSpec): void {
    const err = errorResponse(e);
    let sentError = false;
    while (!this.q.empty) {
      const k = this.q.headKind();
      this.pop(true);
      if (!sentError) {
        this.host.writeClient(err);
        sentError = true;
      }
      if (endsBatch(k)) {
        this.host.writeClient(READY_IDLE);
        sentError = false;
      }
    }
    this.resetQueue();
    if (this.midBatch) {
      if (!sentError) this.host.writeClient(err);
      this.discardUntilSync = true;
    }
    this.midBatch = false;
    this.txStatus = TX_IDLE;
    this.window.reset(); // given up already (failLost): nothing is held
    this.host.flushClient();
  }
}
