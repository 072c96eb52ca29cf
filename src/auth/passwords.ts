// Every password ogel derives from the cluster secret, in one place. Each
// daemon computes the same value with no shared file: HMAC-SHA256(secret,
// 'ogel-replication:' + label), base64url. The 'ogel-replication:' prefix is
// historical (the replication role's password came first) and is kept for every
// label: existing clusters' passwords must not change (passwords.test.ts pins
// known values).
//
// - replicationPassword: the ogel_replication role (standbys, base backups);
//   label = cluster name.
// - adminPassword: the `postgres` superuser, set once when the first primary is
//   bootstrapped (after that it is the operator's); label = name + ':admin'.
// - tenantServerPassword: the proxy's login to Postgres as a tenant role, which
//   clients never learn; label = 'tenant:' + role.

import { createHmac } from 'node:crypto';
import type { Config } from '../config/index.js';

/** HMAC-SHA256(clusterSecret, 'ogel-replication:' + label), base64url. */
export function derivePassword(clusterSecret: string, label: string): string {
  return createHmac('sha256', clusterSecret).update(`ogel-replication:${label}`).digest('base64url');
}

/** The replication role's password: every node derives the same one. */
export function replicationPassword(config: Pick<Config, 'cluster'>): string {
  return derivePassword(config.cluster.secret, config.cluster.name);
}

/** The superuser's password ogel sets at bootstrap (`ogel up` prints a connection string with it). */
export function adminPassword(config: Pick<Config, 'cluster'>): string {
  return derivePassword(config.cluster.secret, `${config.cluster.name}:admin`);
}

/** The label a tenant role's server password is derived under. */
export function tenantPasswordLabel(role: string): string {
  return `tenant:${role}`;
}

/**
 * The server password of a tenant role: every daemon computes the same one,
 * and the tenant-provisioner sets exactly this one when it creates the role.
 */
export function tenantServerPassword(config: Pick<Config, 'cluster'>, role: string): string {
  if (role === '' || role.includes('\0')) throw new TypeError(`tenant role: not a Postgres role name: ${JSON.stringify(role)}`);
  return derivePassword(config.cluster.secret, tenantPasswordLabel(role));
}
