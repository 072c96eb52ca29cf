// Authenticated peer transport over plain TCP.
//
// Each node keeps one persistent outbound connection per peer and uses it only for
// sending; replies come back on the peer's own outbound connection. That keeps both
// directions simple: the sender never reads, the receiver never writes.
//
// Outbound: send() encodes each message at once into the peer's bounded queue;
// one setImmediate later every queue with something in it is written as one frame
// (or a few, if the batch exceeds maxFrameBytes). A socket that stops accepting
// data (write() returned false) is not written again until 'drain'; meanwhile the
// queue keeps at most maxQueuedBytesPerPeer, dropping the oldest messages first,
// since Raft resends whatever it still needs. A peer whose connection fails goes
// into exponential backoff, and messages for it are dropped (not queued) until
// the backoff expires and the next send() connects again.
//
// Inbound: every connection runs a FrameDecoder; each frame is authenticated and
// validated before any message reaches the handler. Whatever a remote sends, the
// socket handlers never throw: bad input is counted, logged once per remote
// address and reason, and (for framing and MAC failures) the connection is closed.

import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Message, NodeId } from '../core/types.js';
import { DEFAULT_MAX_FRAME_BYTES, FrameCodec, FrameDecoder, type FrameDropReason } from './frame.js';
import { sourceAddressFor, sourceBinding } from './source-address.js';
import { emptyStats, type PeerAddress, type Transport, type TransportStats } from './transport.js';
import { validateMessage } from './validate.js';

export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  msg: string;
  [field: string]: unknown;
}

export type Logger = (line: LogLine) => void;

export interface TcpTransportOptions {
  self: NodeId;
  clusterId: string;
  /** Shared by every node of the cluster; at least 16 bytes (a string counts as UTF-8). */
  secret: string | Uint8Array;
  /**
   * Port 0 picks a free port; read it from `port` after start(). When the host is
   * an IP literal other than a wildcard, outgoing connections are bound to it too,
   * so peers (and firewalls) see this node's own address as the source.
   */
  listen: PeerAddress;
  peers: Map<NodeId, PeerAddress>;
  /** Largest frame accepted or sent (the length prefix's value). Default 64 MiB. */
  maxFrameBytes?: number;
  /** Encoded messages held per peer while it is connecting or slow. Default 64 MiB. */
  maxQueuedBytesPerPeer?: number;
  log?: Logger;
  /** Reconnect backoff: doubles per failed attempt from min to max. Defaults 50 ms and 1000 ms. */
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** A connect attempt that has not completed by then is abandoned. Default 1000 ms. */
  connectTimeoutMs?: number;
  /** onUnreachable fires at most once per peer per interval. Default 500 ms. */
  unreachableIntervalMs?: number;
  /** Inbound connections held at once (each may buffer up to maxFrameBytes). Default 64. */
  maxInboundConnections?: number;
}

const DEFAULT_MAX_QUEUED_BYTES_PER_PEER = 64 * 1024 * 1024;
/** A connection that lived this long before failing resets the backoff. */
const STABLE_CONNECTION_MS = 1000;
/** Distinct (remote, reason) pairs remembered for log deduplication. */
const LOG_ONCE_KEYS_MAX = 4096;

const REASON_TEXT: Record<FrameDropReason | 'invalidMessage', string> = {
  badMac: 'bad MAC',
  unknownNode: 'unknown node',
  wrongReceiver: 'wrong receiver',
  wrongCluster: 'wrong cluster',
  oversized: 'oversized frame',
  malformed: 'malformed frame',
  invalidMessage: 'invalid message',
};

function defaultLog(line: LogLine): void {
  if (line.level === 'debug') return;
  process.stderr.write(`${JSON.stringify({ ...line, component: 'raft-transport' })}\n`);
}

function errorCode(err: unknown): string {
  if (err instanceof Error) return (err as NodeJS.ErrnoException).code ?? err.message;
  return String(err);
}

type LinkState = 'idle' | 'connecting' | 'connected' | 'backoff';

/** Outbound side of one peer. */
class PeerLink {
  state: LinkState = 'idle';
  socket: net.Socket | undefined;
  /** Encoded messages not yet written; queue[head..] are live. */
  private queue: (Buffer | undefined)[] = [];
  private head = 0;
  queuedBytes = 0;
  backoffMs: number;
  timer: NodeJS.Timeout | undefined;
  connectedAtMs = 0;
  lastUnreachableMs = Number.NEGATIVE_INFINITY;
  /** Set while the peer is failing, so the failure is logged once per outage. */
  failing = false;

  constructor(
    readonly id: NodeId,
    public addr: PeerAddress,
    backoffMinMs: number,
  ) {
    this.backoffMs = backoffMinMs;
  }

  get queuedCount(): number {
    return this.queue.length - this.head;
  }

  push(b: Buffer): void {
    this.queue.push(b);
    this.queuedBytes += b.length;
  }

  peek(): Buffer | undefined {
    return this.queue[this.head];
  }

  shift(): Buffer {
    const b = this.queue[this.head];
    if (b === undefined) throw new Error('PeerLink.shift on an empty queue');
    this.queue[this.head] = undefined;
    this.head++;
    this.queuedBytes -= b.length;
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return b;
  }

  /** Empties the queue; returns how many messages were discarded. */
  clear(): number {
    const n = this.queuedCount;
    this.queue = [];
    this.head = 0;
    this.queuedBytes = 0;
    return n;
  }
}

export class TcpTransport implements Transport {
  readonly self: NodeId;
  private readonly codec: FrameCodec;
  private readonly maxFrameBytes: number;
  private readonly maxQueuedBytes: number;
  private readonly backoffMinMs: number;
  private readonly backoffMaxMs: number;
  private readonly connectTimeoutMs: number;
  private readonly unreachableIntervalMs: number;
  private readonly maxInboundConnections: number;
  private readonly listenAddr: PeerAddress;
  /** Where outgoing connections are bound; undefined lets the kernel choose. */
  readonly sourceAddress: string | undefined;
  private readonly log: Logger;

  private peers = new Map<NodeId, PeerAddress>();
  private readonly links = new Map<NodeId, PeerLink>();
  private readonly messageHandlers: ((m: Message) => void)[] = [];
  private readonly unreachableHandlers: ((peer: NodeId) => void)[] = [];
  private readonly counters: TransportStats = emptyStats();

  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private readonly dirty = new Set<PeerLink>();
  private flushHandle: NodeJS.Immediate | undefined;
  private readonly loggedOnce = new Set<string>();
  private closed = false;
  private closing: Promise<void> | undefined;

  constructor(opts: TcpTransportOptions) {
    this.self = opts.self;
    this.maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    // The codec checks the secret (>= 16 bytes), ids and the frame size limit, with clear errors.
    this.codec = new FrameCodec({
      clusterId: opts.clusterId,
      secret: opts.secret,
      self: opts.self,
      maxFrameBytes: this.maxFrameBytes,
    });
    this.maxQueuedBytes = opts.maxQueuedBytesPerPeer ?? DEFAULT_MAX_QUEUED_BYTES_PER_PEER;
    this.backoffMinMs = opts.backoffMinMs ?? 50;
    this.backoffMaxMs = opts.backoffMaxMs ?? 1000;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 1000;
    this.unreachableIntervalMs = opts.unreachableIntervalMs ?? 500;
    this.maxInboundConnections = opts.maxInboundConnections ?? 64;
    for (const [name, v] of [
      ['maxQueuedBytesPerPeer', this.maxQueuedBytes],
      ['backoffMinMs', this.backoffMinMs],
      ['backoffMaxMs', this.backoffMaxMs],
      ['connectTimeoutMs', this.connectTimeoutMs],
      ['maxInboundConnections', this.maxInboundConnections],
    ] as const) {
      if (!Number.isSafeInteger(v) || v <= 0) throw new RangeError(`${name} must be a positive integer, got ${v}`);
    }
    if (this.backoffMaxMs < this.backoffMinMs) throw new RangeError('backoffMaxMs must be >= backoffMinMs');
    if (!(this.unreachableIntervalMs >= 0)) throw new RangeError('unreachableIntervalMs must be >= 0');
    this.listenAddr = { host: opts.listen.host, port: opts.listen.port };
    this.sourceAddress = sourceAddressFor(opts.listen.host);
    this.log = opts.log ?? defaultLog;
    this.setPeers(opts.peers);
  }

  // ---- lifecycle ----------------------------------------------------------------

  start(): Promise<void> {
    if (this.server !== undefined) return Promise.reject(new Error('TcpTransport.start called twice'));
    if (this.closed) return Promise.reject(new Error('TcpTransport is closed'));
    const server = net.createServer((socket) => this.onConnection(socket));
    server.maxConnections = this.maxInboundConnections;
    this.server = server;
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      server.once('error', onError);
      server.listen(this.listenAddr.port, this.listenAddr.host, () => {
        server.off('error', onError);
        server.on('error', (err) => this.log({ level: 'error', msg: 'peer listener error', error: errorCode(err) }));
        resolve();
      });
    });
  }

  /** The bound port; valid after start() resolved. */
  get port(): number {
    const a = this.server?.address();
    if (a === undefined || a === null || typeof a === 'string') throw new Error('TcpTransport is not listening');
    return a.port;
  }

  close(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    this.closed = true;
    if (this.flushHandle !== undefined) clearImmediate(this.flushHandle);
    this.flushHandle = undefined;
    this.dirty.clear();
    for (const link of this.links.values()) this.retireLink(link);
    const waits: Promise<void>[] = [];
    for (const s of this.sockets) {
      waits.push(new Promise((resolve) => s.once('close', () => resolve())));
      s.destroy();
    }
    const server = this.server;
    if (server?.listening) {
      waits.push(new Promise((resolve) => server.close(() => resolve())));
    }
    this.closing = Promise.all(waits).then(() => undefined);
    return this.closing;
  }

  // ---- public API ---------------------------------------------------------------

  onMessage(handler: (m: Message) => void): void {
    this.messageHandlers.push(handler);
  }

  onUnreachable(handler: (peer: NodeId) => void): void {
    this.unreachableHandlers.push(handler);
  }

  setPeers(peers: Map<NodeId, PeerAddress>): void {
    this.peers = new Map(peers);
    for (const [id, link] of this.links) {
      const a = peers.get(id);
      if (a === undefined) {
        this.retireLink(link);
        this.links.delete(id);
      } else if (a.host !== link.addr.host || a.port !== link.addr.port) {
        // Moved: drop the old connection without backoff; the next send connects to the new address.
        this.retireLink(link);
        link.addr = { host: a.host, port: a.port };
        link.state = 'idle';
        link.backoffMs = this.backoffMinMs;
        link.failing = false;
      }
    }
    for (const [id, a] of peers) {
      if (id !== this.self && !this.links.has(id)) this.links.set(id, new PeerLink(id, { host: a.host, port: a.port }, this.backoffMinMs));
    }
  }

  stats(): TransportStats {
    const c = this.counters;
    return { ...c, droppedInbound: { ...c.droppedInbound }, droppedOutbound: { ...c.droppedOutbound } };
  }

  send(messages: Message[]): void {
    if (this.closed) return;
    for (const m of messages) {
      // A message the receiver would reject is a bug in the caller: fail loudly here.
      const problem = validateMessage(m);
      if (typeof problem === 'string') throw new TypeError(`TcpTransport.send: not a wire message: ${problem}`);
      if (m.from !== this.self) throw new TypeError(`TcpTransport.send: message from ${JSON.stringify(m.from)} on node ${JSON.stringify(this.self)}`);
      const link = this.links.get(m.to);
      if (link === undefined) {
        this.counters.droppedOutbound.unknownPeer++;
        this.logOnce(`peer|${m.to}|unknownPeer`, { level: 'warn', msg: 'dropped message to unknown peer', peer: m.to });
        continue;
      }
      if (link.state === 'backoff') {
        this.counters.droppedOutbound.disconnected++;
        this.reportUnreachable(link);
        continue;
      }
      const encoded = this.codec.encodeMessage(m);
      if (encoded.length + this.codec.overheadBytes(m.to) > this.maxFrameBytes) {
        this.counters.droppedOutbound.oversized++;
        this.log({ level: 'error', msg: 'dropped message larger than maxFrameBytes', peer: m.to, type: m.type, bytes: encoded.length });
        continue;
      }
      this.enqueue(link, encoded);
      if (link.state === 'idle') this.connect(link);
      else if (link.state === 'connected') this.scheduleFlush(link);
    }
  }

  // ---- outbound -----------------------------------------------------------------

  private enqueue(link: PeerLink, encoded: Buffer): void {
    while (link.queuedCount > 0 && link.queuedBytes + encoded.length > this.maxQueuedBytes) {
      link.shift();
      this.counters.droppedOutbound.queueFull++;
    }
    if (encoded.length > this.maxQueuedBytes) {
      this.counters.droppedOutbound.queueFull++;
      return;
    }
    link.push(encoded);
  }

  private scheduleFlush(link: PeerLink): void {
    this.dirty.add(link);
    // setImmediate rather than a microtask: it also coalesces sends made from
    // different I/O callbacks and promise continuations of the same loop turn.
    this.flushHandle ??= setImmediate(() => {
      this.flushHandle = undefined;
      const links = [...this.dirty];
      this.dirty.clear();
      for (const l of links) this.flushLink(l);
    });
  }

  private flushLink(link: PeerLink): void {
    const socket = link.socket;
    if (link.state !== 'connected' || socket === undefined || socket.destroyed || socket.writableNeedDrain) return;
    const overhead = this.codec.overheadBytes(link.id);
    while (link.queuedCount > 0) {
      const batch: Buffer[] = [];
      let bytes = overhead;
      for (let next = link.peek(); next !== undefined; next = link.peek()) {
        if (batch.length > 0 && bytes + next.length > this.maxFrameBytes) break;
        batch.push(link.shift());
        bytes += next.length;
      }
      const frame = this.codec.seal(link.id, batch);
      this.counters.framesSent++;
      this.counters.bytesSent += frame.length;
      this.counters.messagesSent += batch.length;
      // Stop at the first refusal; 'drain' resumes. At most one frame beyond the high-water mark.
      if (!socket.write(frame)) break;
    }
  }

  private connect(link: PeerLink): void {
    link.state = 'connecting';
    // Bound to our own address: see source-address.ts. bind() picks the ephemeral
    // port before the destination is known, which narrows the port range per
    // source address; one connection per peer is far from exhausting it.
    const bind = sourceBinding(this.sourceAddress, link.addr.host);
    const socket = net.connect({
      host: link.addr.host,
      port: link.addr.port,
      ...(bind !== undefined ? { localAddress: bind.localAddress, family: bind.family } : {}),
    });
    link.socket = socket;
    this.sockets.add(socket);
    socket.setNoDelay(true);
    let lastError: unknown;
    const timer = setTimeout(() => socket.destroy(new Error(`connect timeout after ${this.connectTimeoutMs} ms`)), this.connectTimeoutMs);
    timer.unref();
    socket.once('connect', () => {
      clearTimeout(timer);
      if (link.socket !== socket) return;
      link.state = 'connected';
      link.connectedAtMs = performance.now();
      this.counters.connects++;
      if (link.failing) {
        link.failing = false;
        this.log({ level: 'info', msg: 'peer reachable again', peer: link.id, addr: `${link.addr.host}:${link.addr.port}` });
      }
      this.flushLink(link);
    });
    socket.on('drain', () => {
      if (link.socket === socket) this.flushLink(link);
    });
    socket.on('error', (err) => {
      lastError = err;
      this.counters.connectionErrors++;
    });
    socket.on('close', () => {
      clearTimeout(timer);
      this.sockets.delete(socket);
      this.onLinkClosed(link, socket, lastError);
    });
    // Peers never write on this connection; reading (and discarding) is how a FIN is noticed.
    socket.resume();
  }

  private onLinkClosed(link: PeerLink, socket: net.Socket, err: unknown): void {
    if (link.socket !== socket) return; // retired or replaced
    link.socket = undefined;
    const wasConnected = link.state === 'connected';
    this.counters.droppedOutbound.disconnected += link.clear();
    if (this.closed || this.links.get(link.id) !== link) return;
    if (wasConnected && performance.now() - link.connectedAtMs >= STABLE_CONNECTION_MS) link.backoffMs = this.backoffMinMs;
    const delayMs = link.backoffMs;
    link.backoffMs = Math.min(delayMs * 2, this.backoffMaxMs);
    if (!link.failing) {
      link.failing = true;
      this.log({
        level: 'warn',
        msg: wasConnected ? 'peer connection lost' : 'peer unreachable',
        peer: link.id,
        addr: `${link.addr.host}:${link.addr.port}`,
        ...(this.sourceAddress !== undefined ? { from: this.sourceAddress } : {}),
        error: err === undefined ? 'closed' : errorCode(err),
      });
    }
    link.state = 'backoff';
    link.timer = setTimeout(() => {
      link.timer = undefined;
      if (link.state === 'backoff') link.state = 'idle';
    }, delayMs);
    link.timer.unref();
    this.reportUnreachable(link);
  }

  /** Disconnects a link without backoff and discards its queue. */
  private retireLink(link: PeerLink): void {
    if (link.timer !== undefined) clearTimeout(link.timer);
    link.timer = undefined;
    this.counters.droppedOutbound.disconnected += link.clear();
    this.dirty.delete(link);
    const socket = link.socket;
    link.socket = undefined;
    if (socket !== undefined) socket.destroy();
  }

  private reportUnreachable(link: PeerLink): void {
    if (this.unreachableHandlers.length === 0) return;
    const now = performance.now();
    if (now - link.lastUnreachableMs < this.unreachableIntervalMs) return;
    link.lastUnreachableMs = now;
    // Deferred: send() is called from inside the Raft node's Ready loop, which must
    // not be re-entered by a handler that steps the node.
    setImmediate(() => {
      if (this.closed) return;
      for (const h of this.unreachableHandlers) {
        try {
          h(link.id);
        } catch (err) {
          this.log({ level: 'error', msg: 'unreachable handler threw', peer: link.id, error: String(err) });
        }
      }
    });
  }

  // ---- inbound ------------------------------------------------------------------

  private readonly isKnownSender = (id: NodeId): boolean => id !== this.self && this.peers.has(id);

  private onConnection(socket: net.Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    this.counters.inboundConnections++;
    const remoteIp = socket.remoteAddress ?? 'unknown';
    const remote = `${remoteIp}:${socket.remotePort ?? 0}`;
    const decoder = new FrameDecoder(this.maxFrameBytes);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      try {
        this.onInboundData(socket, decoder, chunk, remote, remoteIp);
      } catch (err) {
        // Not reachable by remote input (open() and validation never throw); a bug here
        // must still not take the node down.
        this.log({ level: 'error', msg: 'peer frame handling failed', remote, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
        socket.destroy();
      }
    });
    socket.on('error', (err) => {
      this.counters.connectionErrors++;
      this.logOnce(`${remoteIp}|socket|${errorCode(err)}`, { level: 'debug', msg: 'peer connection error', remote, error: errorCode(err) });
    });
    socket.on('close', () => this.sockets.delete(socket));
  }

  private onInboundData(socket: net.Socket, decoder: FrameDecoder, chunk: Buffer, remote: string, remoteIp: string): void {
    this.counters.bytesReceived += chunk.length;
    const { frames, error } = decoder.push(chunk);
    for (const frame of frames) {
      if (socket.destroyed) return;
      const r = this.codec.open(frame, this.isKnownSender);
      if (!r.ok) {
        this.dropInbound(r.reason, r.detail, remote, remoteIp);
        if (r.closeConnection) {
          socket.destroy();
          return;
        }
        continue;
      }
      this.counters.framesReceived++;
      for (const detail of r.invalid) this.dropInbound('invalidMessage', detail, remote, remoteIp);
      for (const m of r.messages) this.deliver(m);
    }
    if (error !== undefined) {
      this.dropInbound(error.reason, error.detail, remote, remoteIp);
      socket.destroy();
    }
  }

  private deliver(m: Message): void {
    this.counters.messagesReceived++;
    for (const h of this.messageHandlers) {
      try {
        h(m);
      } catch (err) {
        this.log({
          level: 'error',
          msg: 'message handler threw',
          from: m.from,
          type: m.type,
          error: err instanceof Error ? (err.stack ?? err.message) : String(err),
        });
      }
    }
  }

  private dropInbound(reason: FrameDropReason | 'invalidMessage', detail: string, remote: string, remoteIp: string): void {
    this.counters.droppedInbound[reason]++;
    this.logOnce(`${remoteIp}|${reason}`, {
      level: 'warn',
      msg: reason === 'invalidMessage' ? 'dropped peer message' : 'dropped peer frame',
      reason: REASON_TEXT[reason],
      remote,
      detail,
    });
  }

  /** Logs a line the first time `key` is seen; bounded so a scan of many addresses cannot grow it. */
  private logOnce(key: string, line: LogLine): void {
    if (this.loggedOnce.has(key)) return;
    if (this.loggedOnce.size >= LOG_ONCE_KEYS_MAX) return;
    this.loggedOnce.add(key);
    if (this.loggedOnce.size === LOG_ONCE_KEYS_MAX) {
      this.log({ level: 'warn', msg: 'peer transport log deduplication table full; further new drop reasons are not logged' });
    }
    this.log(line);
  }
}
