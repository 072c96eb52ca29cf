// What the server (or the proxy itself) still owes one client, in order: an
// entry per request forwarded or answered by the proxy, matched against the
// server's messages as they come (session.ts). Entries carry the client's
// statement name and an auxiliary value (a server statement name to undo on
// failure, or a made-up answer) so that a failed request's bookkeeping can be
// undone. Parallel arrays with a moving head: no object per entry on the hot
// path, and nothing allocated until a session first uses it.

// Entry kinds: what answers the request.
export const K_QUERY = 1; // Query: until ReadyForQuery
export const K_SYNC = 2; // Sync: ReadyForQuery
export const K_FUNC = 3; // FunctionCall: until ReadyForQuery
export const K_PARSE = 4; // ParseComplete (name: client's statement, aux: server name, to undo on failure)
export const K_BIND = 5; // BindComplete
export const K_CLOSE = 6; // CloseComplete
export const K_DESC_STMT = 7; // ParameterDescription then RowDescription or NoData
export const K_DESC_PORTAL = 8; // RowDescription or NoData
export const K_EXECUTE = 9; // CommandComplete, EmptyQueryResponse, PortalSuspended
export const K_FAKE_PARSE = 10; // the proxy answers ParseComplete (statement already on the server)
export const K_FAKE_CLOSE = 11; // the proxy answers CloseComplete (statements stay on servers)
export const K_FAKE_ERROR = 12; // the proxy answers with an error (aux: the message)
export const K_SWALLOW_PARSE = 13; // a Parse the proxy inserted: its ParseComplete is not forwarded
export const K_SWALLOW_CLOSE = 14; // a Close the proxy inserted (LRU eviction)

/** Entries the proxy answers itself. */
export function isFakeKind(kind: number): boolean {
  return kind === K_FAKE_PARSE || kind === K_FAKE_CLOSE || kind === K_FAKE_ERROR;
}

/** Entries answered by a ReadyForQuery: the end of a batch. */
export function endsBatch(kind: number): boolean {
  return kind === K_SYNC || kind === K_QUERY || kind === K_FUNC;
}

/** Requests one client may have in flight (pipelined) at once. */
export const IN_FLIGHT_MAX = 100_000;
/** A queue that never empties (a client that always pipelines) is compacted past this many entries. */
const COMPACT_AT = 4096;

const EMPTY_KINDS: number[] = [];
const EMPTY_NAMES: (string | null)[] = [];
const EMPTY_AUX: (string | Buffer | null)[] = [];

export class ResponseQueue {
  private kinds: number[] = EMPTY_KINDS;
  private names: (string | null)[] = EMPTY_NAMES;
  private aux: (string | Buffer | null)[] = EMPTY_AUX;
  private head = 0;
  private tail = 0;

  get empty(): boolean {
    return this.head === this.tail;
  }

  /** The head entry's kind; 0 when the queue is empty. */
  headKind(): number {
    return this.head < this.tail ? this.kinds[this.head]! : 0;
  }

  headName(): string | null {
    return this.head < this.tail ? this.names[this.head]! : null;
  }

  headAux(): string | Buffer | null {
    return this.head < this.tail ? this.aux[this.head]! : null;
  }

  /** Throws past IN_FLIGHT_MAX (the session turns it into an error for the client). */
  push(kind: number, name: string | null, aux: string | Buffer | null): void {
    if (this.kinds === EMPTY_KINDS) {
      this.kinds = [];
      this.names = [];
      this.aux = [];
    }
    if (this.tail - this.head >= IN_FLIGHT_MAX) throw new Error(`more than ${IN_FLIGHT_MAX} requests in flight`);
    if (this.tail >= COMPACT_AT && this.head > 0) {
      this.kinds.copyWithin(0, this.head, this.tail);
      this.names.copyWithin(0, this.head, this.tail);
      this.aux.copyWithin(0, this.head, this.tail);
      this.tail -= this.head;
      this.head = 0;
      this.kinds.length = this.names.length = this.aux.length = this.tail;
    }
    const i = this.tail++;
    this.kinds[i] = kind;
    this.names[i] = name;
    this.aux[i] = aux;
  }

  /** Removes the head entry (its references dropped at once). */
  shift(): void {
    const i = this.head;
    if (i >= this.tail) return;
    this.names[i] = null;
    this.aux[i] = null;
    this.head++;
    if (this.head === this.tail) this.head = this.tail = 0;
  }
}
