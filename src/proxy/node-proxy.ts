// The proxy as a daemon runs it: cluster.yml's proxy section, the state machine
// for routing and identities, the cluster secret for server credentials, TLS
// from config (or a generated certificate), metrics in the daemon's registry.
// Kept here so the daemon's own wiring is one call.

import type { Registry } from 'prom-client';
import type { ClusterState } from '../../fsm/index.js';
import { adminPassword } from '../auth/passwords.js';
import { makeScramVerifier } from '../auth/scram.js';
import { hostPortOf, type Config, type NodeConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import { serverCredentials } from './credentials.js';
import { makeIdentityResolver, makePoolSizeLookup, proxySniDomains } from './identity.js';
import { ClusterRouter } from './router.js';
import { mockScramVerifier, scramServerExchange } from './scram-server.js';
import { CANCEL_TAG_MAX, ProxyServer, proxyPoolOptions, registerProxyMetrics, type ProxyServerOptions } from './server.js';
import { loadProxyTls } from './tls.js';
import { memberAddress } from '../member-address.js';

export interface NodeProxyOptions {
  config: Config;
  self: NodeConfig;
  state: () => ClusterState;
  /** This node's data directory (a generated certificate is kept there). */
  dataDir: string;
  log: Logger;
  registry?: Registry | undefined;
}

/** Builds and starts the node's proxy on nodes[].proxy (or listenHost); rejects with the address when it cannot listen. */
export async function startNodeProxy(o: NodeProxyOptions): Promise<{ proxy: ProxyServer; router: ClusterRouter }> {
  const { config, self } = o;
  const addr = hostPortOf(self.proxy, `${self.id}'s proxy address`);
  const tlsOptions = await loadProxyTls(config.proxy.tls, o.dataDir, o.log, { hosts: [addr.host] });
  const router = new ClusterRouter({ state: o.state, maxReplicaLagBytes: config.proxy.maxReplicaLagBytes, selfId: self.id });
  const admin = { verifier: makeScramVerifier(adminPassword(config)) };
  const proxy = new ProxyServer({
    host: self.listenHost ?? addr.host,
    port: addr.port,
    pool: proxyPoolOptions(config.proxy),
    resolveIdentity: makeIdentityResolver(o.state, admin, { sniDomains: proxySniDomains(config) }),
    poolSizeOf: makePoolSizeLookup(o.state),
    scram: (verifier, id) => scramServerExchange(verifier, { user: id.role }),
    doomedScram: (user) => scramServerExchange(mockScramVerifier(user, config.cluster.secret), { user, doomed: true }),
    credentials: (role) => serverCredentials(config, role),
    router,
    tls: tlsOptions ? { mode: config.proxy.tls.mode, context: tlsOptions } : undefined,
    log: o.log,
    cancelRouting: cancelRoutingFor(config, self, o.state),
  });
  try {
    await proxy.listen();
  } catch (e) {
    router.close();
    await proxy.close();
    throw new Error(`cannot listen on ${self.proxy} for the Postgres proxy: ${(e as Error).message}`);
  }
  if (o.registry) registerProxyMetrics(o.registry, proxy);
  return { proxy, router };
}

/**
 * Each node's tag is its place in cluster.yml's nodes (the same file on every
 * node), so every proxy reads a cancel key's tag the same way. A cluster of more
 * nodes than tags fit relays no cancels.
 */
function cancelRoutingFor(config: Config, self: NodeConfig, state: () => ClusterState): ProxyServerOptions['cancelRouting'] {
  if (config.nodes.length > CANCEL_TAG_MAX) return undefined;
  return {
    selfTag: config.nodes.findIndex((n) => n.id === self.id) + 1,
    peerOf: (tag) => {
      const node = config.nodes[tag - 1];
      if (node === undefined) return undefined;
      return hostPortOf(memberAddress(state(), config, node.id, 'proxy') ?? node.proxy, `${node.id}'s proxy address`);
    },
  };
}
