// Incremental framing of a Postgres protocol byte stream into whole messages.
//
// The hot path must not allocate: a chunk from the socket usually holds whole
// messages, and each is then reported as a view (buf, start, end) into that very
// chunk, which the caller may forward as a slice. Only a message split across
// chunks is collected, piece by piece (memory grows with what actually arrived,
// never with the length a peer merely declared), and joined once complete.
//
// Usage (pull style, so no closure or object per message):
//   framer.feed(chunk);
//   while (framer.next()) handle(framer.type, framer.buf, framer.start, framer.end);
//   if (framer.error) ... // a refused length: the stream cannot be resynchronized

/** Typed messages: 1 type byte + int32 length (which counts itself, not the type). */
export const TYPED_HEADER_BYTES = 5;
/** The startup packet family: int32 length (counting itself) and no type byte. */
export const UNTYPED_HEADER_BYTES = 4;

const EMPTY = Buffer.alloc(0);

export class Framer {
  /** The current message: type byte (0 for untyped), and its whole bytes (header included) in buf[start, end). */
  type = 0;
  buf: Buffer = EMPTY;
  start = 0;
  end = 0;
  /** Set when a header declared a length outside the limits; the stream is then dead. */
  error: string | null = null;

  private chunk: Buffer = EMPTY;
  private pos = 0;
  /** Pieces of a message split across chunks (null: none pending). */
  private pieces: Buffer[] | null = null;
  private have = 0;
  /** Total bytes of the pending message (header included), once its header is known; else 0. */
  private total = 0;

  constructor(
    /** Largest message accepted, header included. */
    private maxMessageBytes: number,
    private typed = true,
    /** Smallest value of the length field (4 counts only itself). */
    private minLength = 4,
  ) {
    if (!(maxMessageBytes >= 5)) throw new RangeError(`Framer: maxMessageBytes ${maxMessageBytes} is below 5`);
  }

  /** Switches between the startup phase (untyped) and typed messages, and sets the limit for what follows. */
  configure(typed: boolean, maxMessageBytes: number, minLength = 4): void {
    if (this.pieces !== null) throw new Error('Framer.configure: a partial message is pending');
    this.typed = typed;
    this.maxMessageBytes = maxMessageBytes;
    this.minLength = minLength;
  }

  /** Bytes of the current chunk not consumed yet (plus any partial message). */
  get pendingBytes(): number {
    return this.chunk.length - this.pos + this.have;
  }

  /** The unconsumed rest of the current chunk (e.g. bytes that follow an SSLRequest). */
  takeRest(): Buffer {
    const rest = this.chunk.subarray(this.pos);
    this.chunk = EMPTY;
    this.pos = 0;
    return rest;
  }

  /**
   * `volatile`: the chunk's memory is reused once the caller returns (a socket's
   * `onread` buffer), so a message split across chunks is kept as copies of its
   * pieces; whole messages are still reported as views, valid until the caller
   * returns.
   */
  feed(chunk: Buffer, volatile = false): void {
    if (this.pos < this.chunk.length) throw new Error('Framer.feed: the previous chunk was not consumed');
    this.chunk = chunk;
    this.pos = 0;
    this.volatile = volatile;
  }

  private volatile = false;

  /** A piece of the current chunk to keep across chunks. */
  private keep(from: number, to: number): Buffer {
    const v = this.chunk.subarray(from, to);
    return this.volatile ? Buffer.from(v) : v;
  }

  /** True when a whole message is available in (type, buf, start, end); false: needs more data, or error is set. */
  next(): boolean {
    if (this.step()) return true;
    // The chunk is used up: neither it nor its last message is kept (an idle
    // connection holds no read's memory, e.g. a slice of a shared allocation pool).
    if (this.pos >= this.chunk.length && this.chunk !== EMPTY) {
      this.chunk = EMPTY;
      this.pos = 0;
      this.buf = EMPTY;
      this.start = this.end = 0;
    }
    return false;
  }

  private step(): boolean {
    if (this.error !== null) return false;
    const hdr = this.typed ? TYPED_HEADER_BYTES : UNTYPED_HEADER_BYTES;
    if (this.pieces === null) {
      const chunk = this.chunk;
      const pos = this.pos;
      const avail = chunk.length - pos;
      if (avail === 0) return false;
      if (avail >= hdr) {
        const total = this.checkHeader(chunk, pos);
        if (total < 0) return false;
        if (avail >= total) {
          this.type = this.typed ? chunk[pos]! : 0;
          this.buf = chunk;
          this.start = pos;
          this.end = pos + total;
          this.pos = pos + total;
          return true;
        }
        this.total = total;
      }
      // A message split across chunks: keep what arrived (a view; the chunk is ours to keep).
      this.pieces = [this.keep(pos, chunk.length)];
      this.have = avail;
      this.pos = chunk.length;
      return false;
    }
    // Continue a split message.
    if (this.total === 0) {
      const want = hdr - this.have;
      const take = Math.min(want, this.chunk.length - this.pos);
      if (take === 0) return false;
      this.pieces.push(this.keep(this.pos, this.pos + take));
      this.pos += take;
      this.have += take;
      if (this.have < hdr) return false;
      const head = Buffer.concat(this.pieces, hdr);
      this.pieces = [head];
      const total = this.checkHeader(head, 0);
      if (total < 0) return false;
      this.total = total;
    }
    const take = Math.min(this.total - this.have, this.chunk.length - this.pos);
    if (take > 0) {
      this.pieces.push(this.keep(this.pos, this.pos + take));
      this.pos += take;
      this.have += take;
    }
    if (this.have < this.total) return false;
    const msg = this.pieces.length === 1 ? this.pieces[0]! : Buffer.concat(this.pieces, this.total);
    this.type = this.typed ? msg[0]! : 0;
    this.buf = msg;
    this.start = 0;
    this.end = this.total;
    this.pieces = null;
    this.have = 0;
    this.total = 0;
    return true;
  }

  /** Total message bytes from the header at buf[at], or -1 with error set. */
  private checkHeader(buf: Buffer, at: number): number {
    const len = this.typed ? buf.readInt32BE(at + 1) : buf.readInt32BE(at);
    const total = this.typed ? len + 1 : len;
    if (len < this.minLength || total > this.maxMessageBytes) {
      const what = this.typed ? `message type ${describeType(buf[at]!)}` : 'startup packet';
      this.error =
        len < this.minLength
          ? `invalid length ${len} of ${what} (at least ${this.minLength})`
          : `${what} of ${total} bytes exceeds the limit of ${this.maxMessageBytes} bytes`;
      return -1;
    }
    return total;
  }
}

/** 'Q' (0x51) for a printable type byte, else its hex value. */
export function describeType(type: number): string {
  return type >= 0x20 && type < 0x7f ? `'${String.fromCharCode(type)}'` : `0x${type.toString(16).padStart(2, '0')}`;
}
