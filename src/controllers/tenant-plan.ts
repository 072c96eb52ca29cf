// What the tenant provisioner must do on the primary's Postgres, as a pure
// function of the state machine's tenants and what the primary's catalogs show.
// Kept apart from the SQL so every rule is tested without a server.
//
// Ownership is explicit: every role and database ogel creates for a tenant
// carries the comment 'ogel tenant <id>'. Nothing without that mark is ever
// altered or dropped, and a mark naming a deleted (or forgotten) tenant is what
// allows a drop. Names are freed by tenant.delete and may be reused at once, so
// the id in the mark, not the name, says whose data a database holds: a new
// tenant never inherits a deleted tenant's database of the same name.

import type { Tenant, TenantId } from '../../fsm/index.js';
import { REPLICATION_ROLE } from '../postgres/settings.js';

export const TENANT_TAG_PREFIX = 'ogel tenant ';

/** Roles and databases that belong to the cluster itself: never a tenant's. */
const PROTECTED_ROLES: ReadonlySet<string> = new Set(['postgres', REPLICATION_ROLE]);
const PROTECTED_DATABASES: ReadonlySet<string> = new Set(['postgres', 'template0', 'template1']);

export function tenantTag(id: TenantId): string {
  return TENANT_TAG_PREFIX + id;
}

/** The tenant id in an ogel mark, or null for any other comment (or none). */
export function parseTenantTag(comment: string | null): TenantId | null {
  if (comment === null || !comment.startsWith(TENANT_TAG_PREFIX)) return null;
  const id = comment.slice(TENANT_TAG_PREFIX.length);
  return /^\S+$/.test(id) ? id : null;
}

export function isProtectedRole(role: string): boolean {
  return PROTECTED_ROLES.has(role) || role.startsWith('pg_');
}

export function isProtectedDatabase(db: string): boolean {
  return PROTECTED_DATABASES.has(db);
}

/** A role as pg_authid shows it. */
export interface ObservedRole {
  name: string;
  /** The tenant id of its ogel mark; null when unmarked (not ours). */
  tag: TenantId | null;
  login: boolean;
  superuser: boolean;
  createdb: boolean;
  createrole: boolean;
  replication: boolean;
  bypassrls: boolean;
  connLimit: number;
  /** rolpassword: the stored SCRAM verifier. */
  password: string | null;
}

/** A database as pg_database shows it. */
export interface ObservedDatabase {
  name: string;
  owner: string;
  tag: TenantId | null;
  /** PUBLIC may connect (the default, which must be revoked). */
  publicConnect: boolean;
}

export interface Observed {
  roles: ReadonlyMap<string, ObservedRole>;
  databases: ReadonlyMap<string, ObservedDatabase>;
}

/** A live tenant as the primary must have it. */
export interface WantedTenant {
  id: TenantId;
  name: string;
  role: string;
  database: string;
  connLimit: number;
  /** The Postgres-format SCRAM verifier of the role's derived server password. */
  passwordVerifier: string;
}

export type ProvisionAction =
  | { kind: 'dropDatabase'; database: string; tenantId: TenantId; why: string }
  | { kind: 'dropRole'; role: string; tenantId: TenantId; why: string }
  | { kind: 'createRole'; tenant: WantedTenant }
  | { kind: 'alterRole'; tenant: WantedTenant; why: string }
  | { kind: 'createDatabase'; tenant: WantedTenant }
  | { kind: 'finishDatabase'; tenant: WantedTenant; why: string }
  | { kind: 'purge'; tenantId: TenantId; name: string };

export interface ProvisionPlan {
  /** In execution order: drops, then roles, then databases, then purges. */
  actions: ProvisionAction[];
  /** Live tenants that cannot be provisioned until an operator acts (permanent). */
  conflicts: Map<TenantId, string>;
  /** Live tenants that need nothing: role and database exist as wanted. */
  done: Set<TenantId>;
}

/**
 * The plan. `verifierFor(role)` gives the wanted role's stored verifier (derived
 * from the cluster secret, so it is the same on every pass and node).
 */
export function planProvisioning(tenants: ReadonlyMap<TenantId, Tenant>, observed: Observed, verifierFor: (role: string) => string): ProvisionPlan {
  const live = new Map<TenantId, Tenant>();
  const deleted = new Map<TenantId, Tenant>();
  for (const t of tenants.values()) (t.state === 'deleted' ? deleted : live).set(t.id, t);

  const conflicts = new Map<TenantId, string>();
  const done = new Set<TenantId>();
  // Ids whose marked roles and databases are to be dropped: deleted tenants, and
  // marks of tenants the state machine no longer has that stand in a live tenant's way.
  const clear = new Set<TenantId>(deleted.keys());
  const wanted: WantedTenant[] = [];

  for (const t of [...live.values()].sort(byId)) {
    if (isProtectedRole(t.role)) {
      conflicts.set(t.id, `role ${JSON.stringify(t.role)} belongs to the cluster itself; a tenant cannot use it`);
      continue;
    }
    if (isProtectedDatabase(t.database)) {
      conflicts.set(t.id, `database ${JSON.stringify(t.database)} belongs to the cluster itself; a tenant cannot use it`);
      continue;
    }
    const r = observed.roles.get(t.role);
    const d = observed.databases.get(t.database);
    const rc = r === undefined ? null : ownerProblem('role', t.role, r.tag, t, live);
    const dc = d === undefined ? null : ownerProblem('database', t.database, d.tag, t, live, d.owner === t.role && r?.tag === t.id);
    if (rc !== null && rc !== 'clear') {
      conflicts.set(t.id, rc);
      continue;
    }
    if (dc !== null && dc !== 'clear') {
      conflicts.set(t.id, dc);
      continue;
    }
    if (rc === 'clear') clear.add(r!.tag!);
    if (dc === 'clear') clear.add(d!.tag!);
    wanted.push({ id: t.id, name: t.name, role: t.role, database: t.database, connLimit: t.limits.maxConnections, passwordVerifier: verifierFor(t.role) });
  }

  const drops: ProvisionAction[] = [];
  for (const d of sortedValues(observed.databases)) {
    if (d.tag !== null && clear.has(d.tag) && !isProtectedDatabase(d.name)) {
      drops.push({ kind: 'dropDatabase', database: d.name, tenantId: d.tag, why: whyClear(d.tag, deleted) });
    }
  }
  for (const r of sortedValues(observed.roles)) {
    if (r.tag !== null && clear.has(r.tag) && !isProtectedRole(r.name)) {
      drops.push({ kind: 'dropRole', role: r.name, tenantId: r.tag, why: whyClear(r.tag, deleted) });
    }
  }
  const dropped = new Set(drops.map((a) => (a.kind === 'dropDatabase' ? `d:${a.database}` : a.kind === 'dropRole' ? `r:${a.role}` : '')));

  const roleActions: ProvisionAction[] = [];
  const dbActions: ProvisionAction[] = [];
  for (const w of wanted) {
    const r = dropped.has(`r:${w.role}`) ? undefined : observed.roles.get(w.role);
    const d = dropped.has(`d:${w.database}`) ? undefined : observed.databases.get(w.database);
    if (r === undefined) roleActions.push({ kind: 'createRole', tenant: w });
    else {
      const why = roleDrift(r, w);
      if (why !== null) roleActions.push({ kind: 'alterRole', tenant: w, why });
    }
    if (d === undefined) dbActions.push({ kind: 'createDatabase', tenant: w });
    else {
      const why = databaseDrift(d, w);
      if (why !== null) dbActions.push({ kind: 'finishDatabase', tenant: w, why });
    }
    if (r !== undefined && d !== undefined && roleDrift(r, w) === null && databaseDrift(d, w) === null) done.add(w.id);
  }

  // A deleted tenant's record goes once nothing marked with its id is left.
  const purges: ProvisionAction[] = [];
  for (const t of [...deleted.values()].sort(byId)) {
    const left = [...observed.databases.values(), ...observed.roles.values()].some((o) => o.tag === t.id);
    if (!left) purges.push({ kind: 'purge', tenantId: t.id, name: t.name });
  }
  return { actions: [...drops, ...roleActions, ...dbActions, ...purges], conflicts, done };
}

/**
 * Whose is an existing role or database that a live tenant wants: null (this
 * tenant's), 'clear' (a mark of a tenant that is deleted or unknown: drop it
 * first), or the conflict to report.
 */
function ownerProblem(
  kind: 'role' | 'database',
  name: string,
  tag: TenantId | null,
  t: Tenant,
  live: ReadonlyMap<TenantId, Tenant>,
  halfMade = false,
): string | 'clear' | null {
  if (tag === t.id) return null;
  if (tag === null) {
    // CREATE DATABASE cannot share a transaction with its mark: a database owned
    // by this tenant's (marked) role is one whose creation was interrupted.
    if (kind === 'database' && halfMade) return null;
    return `${kind} ${JSON.stringify(name)} already exists on the primary and was not created by ogel; refusing to take it over (drop or rename it, or delete this tenant)`;
  }
  if (live.has(tag)) return `${kind} ${JSON.stringify(name)} belongs to tenant ${JSON.stringify(live.get(tag)!.name)} (id ${tag})`;
  return 'clear';
}

function whyClear(id: TenantId, deleted: ReadonlyMap<TenantId, Tenant>): string {
  const t = deleted.get(id);
  return t !== undefined ? `tenant ${JSON.stringify(t.name)} was deleted` : `left over from tenant id ${id}, which the cluster no longer has`;
}

function roleDrift(r: ObservedRole, w: WantedTenant): string | null {
  const why: string[] = [];
  if (!r.login) why.push('cannot log in');
  if (r.superuser) why.push('is a superuser');
  if (r.createdb) why.push('may create databases');
  if (r.createrole) why.push('may create roles');
  if (r.replication) why.push('may replicate');
  if (r.bypassrls) why.push('bypasses row-level security');
  if (r.connLimit !== w.connLimit) why.push(`connection limit ${r.connLimit}, want ${w.connLimit}`);
  if (r.password !== w.passwordVerifier) why.push('password differs');
  return why.length === 0 ? null : why.join(', ');
}

function databaseDrift(d: ObservedDatabase, w: WantedTenant): string | null {
  const why: string[] = [];
  if (d.tag !== w.id) why.push('not marked (interrupted creation)');
  if (d.owner !== w.role) why.push(`owned by ${JSON.stringify(d.owner)}`);
  if (d.publicConnect) why.push('PUBLIC may connect');
  return why.length === 0 ? null : why.join(', ');
}

function byId(a: Tenant, b: Tenant): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function sortedValues<V extends { name: string }>(m: ReadonlyMap<string, V>): V[] {
  return [...m.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
