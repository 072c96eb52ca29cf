// The proxy's own logins towards Postgres (docs/proxy.md, "Authentication").
// Clients prove themselves to the proxy against the verifier in the state
// machine; the proxy then logs in to Postgres with a password only the daemons
// can derive from the cluster secret. Clients never learn it, so going around
// the proxy to a node's Postgres does not work with a tenant's own password.

import type { Config } from '../config/index.js';
import { adminPassword } from '../postgres/agent.js';
import { SUPERUSER } from '../postgres/query.js';
import { deriveReplicationPassword } from '../postgres/settings.js';
import type { ServerCredentials } from './types.js';

/** The label a tenant role's server password is derived under. */
export function tenantPasswordLabel(role: string): string {
  return `tenant:${role}`;
}

/**
 * The server password of a tenant role: HMAC of the cluster secret, so every
 * daemon computes the same one with no shared file, and the tenant-provisioner
 * sets exactly this one when it creates the role.
 */
export function tenantServerPassword(config: Pick<Config, 'cluster'>, role: string): string {
  if (role === '' || role.includes('\0')) throw new TypeError(`tenant role: not a Postgres role name: ${JSON.stringify(role)}`);
  return deriveReplicationPassword(config.cluster.secret, tenantPasswordLabel(role));
}

/** The proxy's login to Postgres for `role`: the admin's for postgres, else the tenant role's derived one. */
export function serverCredentials(config: Pick<Config, 'cluster'>, role: string): ServerCredentials {
  if (role === SUPERUSER) return { user: SUPERUSER, password: adminPassword(config) };
  return { user: role, password: tenantServerPassword(config, role) };
}
