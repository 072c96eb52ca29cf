// Which local address outgoing peer connections leave from.
//
// Left to the kernel, a connection to another node picks the source address by
// route: on one machine every address of 127.0.0.0/8 is on lo, and a dial to
// 127.0.0.12 leaves from 127.0.0.1 whatever node made it. A peer, a log line or a
// firewall rule then cannot tell which node is talking. Binding the socket to the
// node's own address makes the source the node's identity on the network, which
// is what partition tests (iptables by source address) and real firewalls rely on.

import { isIP } from 'node:net';

/** The unspecified addresses (0.0.0.0, ::, and its longer spellings): they bind every interface, so they name no source. */
export function isWildcardAddress(host: string): boolean {
  if (host === '0.0.0.0') return true;
  return isIP(host) === 6 && /^[0:]+$/.test(host);
}

/**
 * The address to bind outgoing connections to, for a node that listens on
 * `listenHost`: the host itself when it is an IP literal (IPv6 with or without
 * brackets) that is not a wildcard; undefined (let the kernel choose) for a
 * wildcard or a host name, which do not name one local address.
 */
export function sourceAddressFor(listenHost: string): string | undefined {
  const host = listenHost.startsWith('[') && listenHost.endsWith(']') ? listenHost.slice(1, -1) : listenHost;
  if (isIP(host) === 0 || isWildcardAddress(host)) return undefined;
  return host;
}

export interface SourceBinding {
  localAddress: string;
  /** The address family to resolve a peer's host name in, so it matches localAddress. */
  family: 4 | 6;
}

/**
 * How to dial `peerHost` from `sourceAddress`: bound to it, or undefined for no
 * binding. A peer given as an IP literal of the other family cannot be reached
 * from that source (connect fails with EINVAL), so it is dialled unbound rather
 * than not at all. A peer given by name is resolved in the source's family.
 */
export function sourceBinding(sourceAddress: string | undefined, peerHost: string): SourceBinding | undefined {
  if (sourceAddress === undefined) return undefined;
  const family = isIP(sourceAddress);
  if (family !== 4 && family !== 6) throw new TypeError(`source address ${JSON.stringify(sourceAddress)} is not an IP literal`);
  const peerFamily = isIP(peerHost.startsWith('[') && peerHost.endsWith(']') ? peerHost.slice(1, -1) : peerHost);
  if (peerFamily !== 0 && peerFamily !== family) return undefined;
  return { localAddress: sourceAddress, family };
}
