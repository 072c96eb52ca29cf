// The seam between a Raft node and the network (hashicorp/raft's Transport, cut
// down to what an etcd-style core needs: the core emits messages in Ready and
// steps whatever arrives). Delivery is best effort: Raft tolerates loss,
// duplication and reordering, so send() never blocks, never retries and never
// throws because of the network.

import type { Message, NodeId } from '../core/types.js';

export interface PeerAddress {
  host: string;
  port: number;
}

/** Inbound frames dropped, by reason. Each counts frames, except invalidMessage. */
export interface DroppedInbound {
  /** The MAC does not match the cluster secret (or the frame was altered). */
  badMac: number;
  /** Authenticated, but the sender is not in the peers map. */
  unknownNode: number;
  /** Authenticated, but addressed to another node. */
  wrongReceiver: number;
  /** Authenticated, but for another cluster sharing the secret. */
  wrongCluster: number;
  /** Length prefix above maxFrameBytes; the connection is closed. */
  oversized: number;
  /** Bad framing or header (connection closed), or an authenticated body that does not decode. */
  malformed: number;
  /** Single messages dropped out of an otherwise good batch (the rest are delivered). */
  invalidMessage: number;
}

/** Outbound messages dropped, by reason. */
export interface DroppedOutbound {
  /** The peer was down (in reconnect backoff), or its connection broke with them queued. */
  disconnected: number;
  /** The peer's queue exceeded maxQueuedBytesPerPeer; the oldest were dropped. */
  queueFull: number;
  /** Addressed to a node not in the peers map. */
  unknownPeer: number;
  /** A single message too large for one frame. */
  oversized: number;
}

export interface TransportStats {
  framesSent: number;
  bytesSent: number;
  messagesSent: number;
  /** Frames that passed authentication and header checks. */
  framesReceived: number;
  /** Raw bytes read from inbound connections, good or bad. */
  bytesReceived: number;
  /** Messages handed to the onMessage handler. */
  messagesReceived: number;
  droppedInbound: DroppedInbound;
  droppedOutbound: DroppedOutbound;
  /** Failed outbound connects and socket errors on either side. */
  connectionErrors: number;
  /** Outbound connections established. */
  connects: number;
  inboundConnections: number;
}

export interface Transport {
  /** Binds the listener. Rejects if it cannot (for example, the port is taken). */
  start(): Promise<void>;
  /**
   * Queues messages for their `to` peers and returns at once. Messages given in the
   * same tick are coalesced into one frame per peer. The messages are encoded
   * before send returns, so the caller may reuse them. Throws only on a programmer
   * error (a message that is not a well-formed wire message from this node).
   */
  send(messages: Message[]): void;
  /** Registers a receiver of validated inbound messages (called from I/O callbacks). */
  onMessage(handler: (m: Message) => void): void;
  /** Registers a listener told (asynchronously, rate-limited) that a peer cannot be reached. */
  onUnreachable(handler: (peer: NodeId) => void): void;
  /** Replaces the peer set: who we send to and whose frames we accept. */
  setPeers(peers: Map<NodeId, PeerAddress>): void;
  stats(): TransportStats;
  /** Stops listening and closes every connection; resolves when all sockets are closed. */
  close(): Promise<void>;
}

export function emptyStats(): TransportStats {
  return {
    framesSent: 0,
    bytesSent: 0,
    messagesSent: 0,
    framesReceived: 0,
    bytesReceived: 0,
    messagesReceived: 0,
    droppedInbound: {
      badMac: 0,
      unknownNode: 0,
      wrongReceiver: 0,
      wrongCluster: 0,
      oversized: 0,
      malformed: 0,
      invalidMessage: 0,
    },
    droppedOutbound: { disconnected: 0, queueFull: 0, unknownPeer: 0, oversized: 0 },
    connectionErrors: 0,
    connects: 0,
    inboundConnections: 0,
  };
}
