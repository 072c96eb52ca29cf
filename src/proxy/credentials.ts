// The proxy's own logins towards Postgres (docs/proxy.md, "Authentication").
// Clients prove themselves to the proxy against the verifier in the state
// machine; the proxy then logs in to Postgres with a password only the daemons
// can derive from the cluster secret (src/auth/passwords.ts). Clients never
// learn it, so going around the proxy to a node's Postgres does not work with a
// tenant's own password.

import { adminPassword, tenantServerPassword } from '../auth/passwords.js';
import type { Config } from '../config/index.js';
import { SUPERUSER } from '../postgres/query.js';
import type { ServerCredentials } from './types.js';

/** The proxy's login to Postgres for `role`: the admin's for postgres, else the tenant role's derived one. */
export function serverCredentials(config: Pick<Config, 'cluster'>, role: string): ServerCredentials {
  if (role === SUPERUSER) return { user: SUPERUSER, password: adminPassword(config) };
  return { user: role, password: tenantServerPassword(config, role) };
}
