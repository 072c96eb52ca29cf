// Wire format of the peer transport: authenticated, length-prefixed frames of
// msgpack-encoded Raft message batches.
//
//   offset  size  field
//   0       4     length L of everything after this field (u32, big-endian)
//   4       1     version (FRAME_VERSION)
//   5       1     c = byte length of the cluster id, then c bytes of UTF-8
//           1     s = byte length of the sender node id, then s bytes of UTF-8
//           1     r = byte length of the receiver node id, then r bytes of UTF-8
//           n     body: one msgpack array of Message maps
//   4+L-32  32    HMAC-SHA256(cluster secret, bytes [0, 4+L-32))
//
// The MAC covers the length prefix and the header, so a frame cannot be replayed to
// another node or cluster, truncated, or re-routed without detection. There is no
// replay protection across connections: Raft itself tolerates duplicated and
// reordered messages (terms and indexes make every message idempotent).
//
// The body is built as an array header followed by messages encoded one by one:
// the transport encodes each message when send() is called (so the caller may
// reuse its objects and the queue knows exact byte sizes) and a frame is then just
// a concatenation. That is byte-for-byte a msgpack array of maps.

import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { Packr, Unpackr } from 'msgpackr';
import type { Message, NodeId } from '../core/types.js';
import { isValidNodeId, validateMessage } from './validate.js';

export const FRAME_VERSION = 1;
export const MAC_BYTES = 32;
export const LENGTH_PREFIX_BYTES = 4;
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024;
export const SECRET_BYTES_MIN = 16;
/** Version byte, three 1-byte-length-prefixed non-empty ids, a 1-byte body (empty array), the MAC. */
export const FRAME_LENGTH_MIN = 1 + 3 * 2 + 1 + MAC_BYTES;
/** The length prefix is a u32. */
const FRAME_LENGTH_LIMIT = 0xffff_ffff;
const ID_BYTES_MAX = 255;

// useRecords:false keeps the body plain msgpack (maps with string keys) that any peer
// version or tool can read; msgpackr encodes Uint8Array/Buffer as `bin` and decodes
// `bin` as a Buffer view into the frame, which validateMessage turns into a Uint8Array view.
const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

export type FrameDropReason = 'badMac' | 'unknownNode' | 'wrongReceiver' | 'wrongCluster' | 'oversized' | 'malformed';

export interface FrameError {
  reason: 'oversized' | 'malformed';
  detail: string;
}

export interface DecodeResult {
  /** Complete frames, each including its length prefix and MAC, each owning its memory. */
  frames: Buffer[];
  /** Set once, on the push that found the stream broken; the connection must be closed. */
  error?: FrameError;
}

/**
 * Splits a TCP byte stream into frames. Handles frames split across chunks and many
 * frames in one chunk. Buffering is bounded: a length prefix above maxFrameBytes (or
 * below the minimum) fails the stream as soon as its 4 bytes arrive, before any of
 * the body is buffered, and nothing is allocated for a frame until all of it has
 * arrived (so a peer cannot make us reserve memory it never sends).
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  /** Bytes of chunks[0] already consumed. */
  private headOffset = 0;
  private buffered = 0;
  /** Total bytes (prefix included) of the frame being assembled; -1 until its prefix is read. */
  private need = -1;
  private failure: FrameError | undefined;

  constructor(readonly maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES) {
    if (!Number.isSafeInteger(maxFrameBytes) || maxFrameBytes < FRAME_LENGTH_MIN || maxFrameBytes > FRAME_LENGTH_LIMIT) {
      throw new RangeError(`maxFrameBytes must be an integer in [${FRAME_LENGTH_MIN}, ${FRAME_LENGTH_LIMIT}], got ${maxFrameBytes}`);
    }
  }

  /** Bytes held waiting for the rest of a frame. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  get failed(): boolean {
    return this.failure !== undefined;
  }

  push(chunk: Uint8Array): DecodeResult {
    const frames: Buffer[] = [];
    if (this.failure !== undefined || chunk.length === 0) return { frames };
    this.chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.buffered += chunk.length;
    for (;;) {
      if (this.need < 0) {
        if (this.buffered < LENGTH_PREFIX_BYTES) break;
        const length = this.peekU32();
        if (length > this.maxFrameBytes) {
          return this.fail(frames, 'oversized', `frame length ${length} exceeds the maximum ${this.maxFrameBytes}`);
        }
        if (length < FRAME_LENGTH_MIN) {
          return this.fail(frames, 'malformed', `frame length ${length} is below the minimum ${FRAME_LENGTH_MIN}`);
        }
        this.need = LENGTH_PREFIX_BYTES + length;
      }
      if (this.buffered < this.need) break;
      frames.push(this.take(this.need));
      this.need = -1;
    }
    return { frames };
  }

  private fail(frames: Buffer[], reason: FrameError['reason'], detail: string): DecodeResult {
    this.failure = { reason, detail };
    this.chunks = [];
    this.buffered = 0;
    this.headOffset = 0;
    return { frames, error: this.failure };
  }

  private peekU32(): number {
    const first = this.chunks[0]!;
    if (first.length - this.headOffset >= 4) return first.readUInt32BE(this.headOffset);
    let v = 0;
    let got = 0;
    for (let i = 0; got < 4; i++) {
      const c = this.chunks[i]!;
      for (let j = i === 0 ? this.headOffset : 0; j < c.length && got < 4; j++, got++) v = v * 256 + c[j]!;
    }
    return v;
  }

  /** Removes n buffered bytes into a new buffer (always a copy: frames outlive socket chunks). */
  private take(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let copied = 0;
    while (copied < n) {
      const c = this.chunks[0]!;
      const available = c.length - this.headOffset;
      const want = n - copied;
      if (available > want) {
        c.copy(out, copied, this.headOffset, this.headOffset + want);
        this.headOffset += want;
        copied += want;
      } else {
        c.copy(out, copied, this.headOffset, c.length);
        copied += available;
        this.chunks.shift();
        this.headOffset = 0;
      }
    }
    this.buffered -= n;
    return out;
  }
}

export interface FrameHeader {
  version: number;
  clusterId: Uint8Array;
  sender: Uint8Array;
  receiver: Uint8Array;
  /** Offset of the msgpack body within the frame. */
  bodyOffset: number;
}

/** Parses the header of a complete frame; a reason string if it is not well formed. */
export function parseHeader(frame: Uint8Array): FrameHeader | string {
  if (frame.length < LENGTH_PREFIX_BYTES + FRAME_LENGTH_MIN) return `frame of ${frame.length} bytes is too short`;
  const length = ((frame[0]! << 24) >>> 0) + (frame[1]! << 16) + (frame[2]! << 8) + frame[3]!;
  if (length !== frame.length - LENGTH_PREFIX_BYTES) return `length prefix ${length} does not match frame of ${frame.length} bytes`;
  const version = frame[4]!;
  if (version !== FRAME_VERSION) return `unsupported frame version ${version}`;
  const macOffset = frame.length - MAC_BYTES;
  let p = 5;
  const ids: Uint8Array[] = [];
  for (let i = 0; i < 3; i++) {
    const n = frame[p]!;
    p += 1;
    if (n === 0 || p + n > macOffset) return `header id ${i} has bad length ${n}`;
    ids.push(frame.subarray(p, p + n));
    p += n;
  }
  if (p >= macOffset) return 'frame has no body';
  return { version, clusterId: ids[0]!, sender: ids[1]!, receiver: ids[2]!, bodyOffset: p };
}

function utf8(s: string, what: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  if (b.length === 0 || b.length > ID_BYTES_MAX) throw new RangeError(`${what} must be 1..${ID_BYTES_MAX} bytes of UTF-8, got ${b.length}`);
  return b;
}

export function secretBytes(secret: string | Uint8Array): Buffer {
  const b = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : Buffer.from(secret);
  if (b.length < SECRET_BYTES_MIN) {
    throw new RangeError(`the cluster secret must be at least ${SECRET_BYTES_MIN} bytes, got ${b.length}`);
  }
  return b;
}

/** A msgpack array header for n items. */
function arrayHeader(n: number): Buffer {
  if (n < 16) return Buffer.from([0x90 | n]);
  if (n < 0x10000) return Buffer.from([0xdc, n >>> 8, n & 0xff]);
  const b = Buffer.allocUnsafe(5);
  b[0] = 0xdd;
  b.writeUInt32BE(n, 1);
  return b;
}

/** Worst-case bytes of a frame to `receiver` beyond its encoded messages. */
export const ARRAY_HEADER_BYTES_MAX = 5;

export type OpenResult =
  | { ok: true; sender: NodeId; messages: Message[]; invalid: string[] }
  | { ok: false; reason: FrameDropReason; detail: string; closeConnection: boolean };

export interface FrameCodecOptions {
  clusterId: string;
  secret: string | Uint8Array;
  /** This node: the sender of sealed frames and the only receiver accepted by open(). */
  self: NodeId;
  maxFrameBytes?: number;
}

/** Seals and opens frames for one node of one cluster. */
export class FrameCodec {
  readonly self: NodeId;
  readonly clusterId: string;
  readonly maxFrameBytes: number;
  private readonly key: KeyObject;
  private readonly clusterBytes: Buffer;
  private readonly selfBytes: Buffer;
  /** Length prefix slot + version + cluster id + sender, shared by every frame we send. */
  private readonly headerPrefix: Buffer;
  private readonly receiverBytes = new Map<NodeId, Buffer>();

  constructor(opts: FrameCodecOptions) {
    if (!isValidNodeId(opts.self)) throw new RangeError(`invalid node id ${JSON.stringify(opts.self)}`);
    this.self = opts.self;
    this.clusterId = opts.clusterId;
    this.maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    if (!Number.isSafeInteger(this.maxFrameBytes) || this.maxFrameBytes < 1024 || this.maxFrameBytes > FRAME_LENGTH_LIMIT) {
      throw new RangeError(`maxFrameBytes must be an integer in [1024, ${FRAME_LENGTH_LIMIT}], got ${this.maxFrameBytes}`);
    }
    this.key = createSecretKey(secretBytes(opts.secret));
    this.clusterBytes = utf8(opts.clusterId, 'cluster id');
    this.selfBytes = utf8(opts.self, 'node id');
    this.headerPrefix = Buffer.concat([
      Buffer.alloc(LENGTH_PREFIX_BYTES),
      Buffer.from([FRAME_VERSION, this.clusterBytes.length]),
      this.clusterBytes,
      Buffer.from([this.selfBytes.length]),
      this.selfBytes,
    ]);
  }

  private receiver(to: NodeId): Buffer {
    let b = this.receiverBytes.get(to);
    if (b === undefined) {
      if (!isValidNodeId(to)) throw new RangeError(`invalid receiver node id ${JSON.stringify(to)}`);
      b = utf8(to, 'node id');
      // Bounded by the number of distinct peers ever addressed; ids are at most 64 chars.
      if (this.receiverBytes.size >= 1024) this.receiverBytes.clear();
      this.receiverBytes.set(to, b);
    }
    return b;
  }

  /** Bytes a frame to `to` adds around its encoded messages, at most. */
  overheadBytes(to: NodeId): number {
    return this.headerPrefix.length + 1 + this.receiver(to).length + ARRAY_HEADER_BYTES_MAX + MAC_BYTES;
  }

  /** One message as msgpack, in a buffer the caller owns (msgpackr reuses its output buffer). */
  encodeMessage(m: Message): Buffer {
    const view = packr.pack(m);
    const out = Buffer.allocUnsafe(view.length);
    view.copy(out);
    return out;
  }

  /**
   * Builds one frame to `to` from messages encoded with encodeMessage. Throws a
   * RangeError if the frame would exceed maxFrameBytes (the caller splits batches).
   */
  seal(to: NodeId, encoded: readonly Uint8Array[]): Buffer {
    const receiver = this.receiver(to);
    const array = arrayHeader(encoded.length);
    let bodyBytes = array.length;
    for (const e of encoded) bodyBytes += e.length;
    const total = this.headerPrefix.length + 1 + receiver.length + bodyBytes + MAC_BYTES;
    const length = total - LENGTH_PREFIX_BYTES;
    if (length > this.maxFrameBytes) {
      throw new RangeError(`frame of ${length} bytes exceeds maxFrameBytes ${this.maxFrameBytes}`);
    }
    const frame = Buffer.allocUnsafe(total);
    let p = this.headerPrefix.copy(frame, 0);
    frame.writeUInt32BE(length, 0);
    frame[p++] = receiver.length;
    p += receiver.copy(frame, p);
    p += array.copy(frame, p);
    for (const e of encoded) {
      frame.set(e, p);
      p += e.length;
    }
    const mac = createHmac('sha256', this.key).update(frame.subarray(0, p)).digest();
    mac.copy(frame, p);
    return frame;
  }

  /** Convenience: encode and seal in one step. */
  encodeFrame(to: NodeId, messages: readonly Message[]): Buffer {
    return this.seal(
      to,
      messages.map((m) => this.encodeMessage(m)),
    );
  }

  /**
   * Authenticates and decodes one complete frame (as produced by FrameDecoder).
   * Checks, in order: header shape, MAC, cluster id, receiver, sender (via
   * isKnownSender), body decoding; then validates each message on its own, so one
   * bad message in an authenticated batch does not cost the others. The MAC is
   * checked before the header's claims so that a drop reason other than badMac or
   * malformed always describes a peer that holds the secret (a misconfiguration,
   * not an attack). Never throws.
   */
  open(frame: Buffer, isKnownSender: (id: NodeId) => boolean): OpenResult {
    const header = parseHeader(frame);
    if (typeof header === 'string') return { ok: false, reason: 'malformed', detail: header, closeConnection: true };
    const macOffset = frame.length - MAC_BYTES;
    const expected = createHmac('sha256', this.key).update(frame.subarray(0, macOffset)).digest();
    if (!timingSafeEqual(expected, frame.subarray(macOffset))) {
      return { ok: false, reason: 'badMac', detail: 'frame MAC does not match the cluster secret', closeConnection: true };
    }
    if (!this.clusterBytes.equals(header.clusterId)) {
      return {
        ok: false,
        reason: 'wrongCluster',
        detail: `frame is for cluster ${JSON.stringify(Buffer.from(header.clusterId).toString('utf8'))}, not ${JSON.stringify(this.clusterId)}`,
        closeConnection: false,
      };
    }
    if (!this.selfBytes.equals(header.receiver)) {
      return {
        ok: false,
        reason: 'wrongReceiver',
        detail: `frame is for node ${JSON.stringify(Buffer.from(header.receiver).toString('utf8'))}, not ${JSON.stringify(this.self)}`,
        closeConnection: false,
      };
    }
    const sender = Buffer.from(header.sender.buffer, header.sender.byteOffset, header.sender.byteLength).toString('utf8');
    if (!isValidNodeId(sender) || !isKnownSender(sender)) {
      return { ok: false, reason: 'unknownNode', detail: `sender ${JSON.stringify(sender)} is not a known peer`, closeConnection: false };
    }
    let body: unknown;
    try {
      body = unpackr.unpack(frame.subarray(header.bodyOffset, macOffset));
    } catch (err) {
      const detail = `body does not decode: ${err instanceof Error ? err.message : String(err)}`;
      return { ok: false, reason: 'malformed', detail: detail.slice(0, 200), closeConnection: false };
    }
    if (!Array.isArray(body)) return { ok: false, reason: 'malformed', detail: 'body is not an array', closeConnection: false };
    const messages: Message[] = [];
    const invalid: string[] = [];
    for (const item of body as unknown[]) {
      const m = validateMessage(item);
      if (typeof m === 'string') invalid.push(m);
      else if (m.from !== sender) invalid.push(`message from ${JSON.stringify(m.from)} in a frame from ${JSON.stringify(sender)}`);
      else if (m.to !== this.self) invalid.push(`message to ${JSON.stringify(m.to)} in a frame to ${JSON.stringify(this.self)}`);
      else messages.push(m);
    }
    return { ok: true, sender, messages, invalid };
  }
}
