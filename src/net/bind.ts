// Outgoing connections to other nodes leave from this node's own address.
//
// On one machine every address of 127.0.0.0/8 is on lo, and the kernel picks
// 127.0.0.1 as the source of a dial to 127.0.0.12 whoever dials. Partition tests
// cut a node off with iptables rules on its address, and real firewalls do the
// same, so every node-to-node connection must carry the node's own address: the
// Raft transport does it for peer messages (raft/src/transport/source-address.ts),
// this module for the daemons' HTTP calls to each other's admin API (proposals
// forwarded to the leader, forwarded writes and status, the failover fence calls).

import { Agent, Pool } from 'undici';
import { sourceAddressFor, sourceBinding } from '../../raft/index.js';
import { parseHostPort } from '../config/address.js';

/**
 * The address this node's outgoing peer connections leave from: its `listenHost`
 * if set, else the host of the address it advertises (`hostPort`, e.g. its `api`).
 * Undefined (the kernel chooses) for a wildcard or a host name, which name no
 * single local address.
 */
export function localAddressFor(hostPort: string, listenHost?: string): string | undefined {
  if (listenHost !== undefined) return sourceAddressFor(listenHost);
  const a = parseHostPort(hostPort);
  if (!a.ok) throw new TypeError(`not HOST:PORT: ${JSON.stringify(hostPort)} (${a.reason})`);
  return sourceAddressFor(a.host);
}

/**
 * An undici dispatcher for requests to other nodes, its connections bound to
 * `localAddress` (none when undefined). Pass it as `dispatcher` to undici's
 * request(). The caller owns it: close() or destroy() it on stop.
 *
 * Bound through the pool's `localAddress` option: in undici 6, `connect:
 * { localAddress }` is silently overridden by that option's default (null).
 */
export function peerDispatcher(localAddress: string | undefined): Agent {
  return new Agent({
    factory: (origin: string | URL, opts: object) => {
      const url = typeof origin === 'string' ? new URL(origin) : origin;
      const bind = sourceBinding(localAddress, url.hostname);
      return new Pool(url, bind === undefined ? opts : { ...opts, localAddress: bind.localAddress, connect: { family: bind.family } });
    },
  });
}
