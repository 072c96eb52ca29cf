// Tenant commands: create, delete and purge, state, limits and placement (tenant.*).

import { FieldError } from '../fields.js';
import { POOL_MODES, type NodeId, type ScramVerifier, type TenantLimits } from '../state.js';
import { base, fieldsOf, rawVersion, type Base, type ParserOf } from './shared.js';

/** The limits tenant.create sets; poolSize and poolMode came later (tenant.setLimits) and start null. */
export type TenantCreateLimits = Omit<TenantLimits, 'poolSize' | 'poolMode'>;

export interface TenantCreate extends Base<'tenant.create'> {
  readonly id: string;
  readonly name: string;
  readonly database: string;
  readonly role: string;
  readonly limits: TenantCreateLimits;
  readonly scram: ScramVerifier;
}
/** Marks the tenant deleted and frees its name, database and role names. */
export interface TenantDelete extends Base<'tenant.delete'> {
  readonly id: string;
}
/** Removes a deleted tenant's record for good (once its database is dropped). */
export interface TenantPurge extends Base<'tenant.purge'> {
  readonly id: string;
}
export interface TenantSetState extends Base<'tenant.setState'> {
  readonly id: string;
  readonly state: 'active' | 'suspended';
}
/**
 * Replaces a live tenant's limits. Version 6 (written now) gives all four
 * (poolSize and poolMode null: the proxy's defaults); version 3 (frozen) gave
 * the three before poolMode, which it leaves as it is (see COMMAND_VERSION).
 */
export type TenantSetLimits = TenantSetLimitsV3 | TenantSetLimitsV6;
export interface TenantSetLimitsV3 extends Base<'tenant.setLimits', 3> {
  readonly id: string;
  readonly limits: Omit<TenantLimits, 'poolMode'>;
}
export interface TenantSetLimitsV6 extends Base<'tenant.setLimits', 6> {
  readonly id: string;
  readonly limits: TenantLimits;
}
export interface TenantPlace extends Base<'tenant.place'> {
  readonly id: string;
  readonly node: NodeId | null;
}

export type TenantCommand = TenantCreate | TenantDelete | TenantPurge | TenantSetState | TenantSetLimits | TenantPlace;
export type TenantCommandType = TenantCommand['type'];
type Parser<T extends TenantCommandType> = ParserOf<TenantCommand, T>;

/** Postgres' default is 4096; fewer is refused as too weak. */
export const SCRAM_ITERATIONS = { min: 4096, max: 10_000_000 } as const;
export const TENANT_LIMITS = {
  maxConnections: { min: 1, max: 10_000 },
  rateLimitPerSec: { min: 1, max: 1_000_000 },
  /** Server connections per pool; above maxConnections is allowed but never used. */
  poolSize: { min: 1, max: 10_000 },
} as const;

const RESERVED_DATABASES = ['postgres', 'template0', 'template1'];
const RESERVED_ROLES = ['postgres', 'public', 'none', 'current_user', 'session_user', 'current_role', 'system_user'];

export const tenantParsers: { [T in TenantCommandType]: Parser<T> } = {
  'tenant.create': (x) => {
    const f = fieldsOf(x, ['id', 'name', 'database', 'role', 'limits', 'scram'], {
      password: 'a password is never accepted or stored; send a SCRAM-SHA-256 verifier in "scram" ({ iterations, salt, storedKey, serverKey })',
    });
    const database = f.pgIdent('database');
    if (RESERVED_DATABASES.includes(database)) f.fail('database', database, `a database name other than ${RESERVED_DATABASES.join(', ')} (reserved)`);
    const role = f.pgIdent('role');
    if (RESERVED_ROLES.includes(role) || role.startsWith('pg_'))
      f.fail('role', role, `a role name not starting with "pg_" and other than ${RESERVED_ROLES.join(', ')} (reserved by Postgres)`);
    const l = f.obj('limits', ['maxConnections', 'rateLimitPerSec']);
    const s = f.obj('scram', ['iterations', 'salt', 'storedKey', 'serverKey'], {
      password: 'a password is never accepted or stored; send only the verifier',
    });
    return {
      ...base(f, 'tenant.create'),
      id: f.id('id'),
      name: f.pgIdent('name'),
      database,
      role,
      limits: {
        maxConnections: l.int('maxConnections', TENANT_LIMITS.maxConnections.min, TENANT_LIMITS.maxConnections.max),
        rateLimitPerSec: l.int('rateLimitPerSec', TENANT_LIMITS.rateLimitPerSec.min, TENANT_LIMITS.rateLimitPerSec.max, 'queries per second'),
      },
      scram: {
        iterations: s.int('iterations', SCRAM_ITERATIONS.min, SCRAM_ITERATIONS.max),
        salt: s.base64('salt', 8, 64),
        storedKey: s.base64('storedKey', 32, 32),
        serverKey: s.base64('serverKey', 32, 32),
      },
    };
  },
  'tenant.setLimits': (x) => {
    const v6 = rawVersion(x) >= 6;
    const f = fieldsOf(x, ['id', 'limits']);
    const l = f.obj('limits', v6 ? ['maxConnections', 'rateLimitPerSec', 'poolSize', 'poolMode'] : ['maxConnections', 'rateLimitPerSec', 'poolSize']);
    // poolSize must be present, null or not: a missing one read as null would turn a
    // malformed command into "back to the default".
    const poolSize =
      l.raw('poolSize', `server connections per pool (${TENANT_LIMITS.poolSize.min}-${TENANT_LIMITS.poolSize.max}), or null for the proxy's default`) === null
        ? null
        : l.int('poolSize', TENANT_LIMITS.poolSize.min, TENANT_LIMITS.poolSize.max, "server connections per pool, or null for the proxy's default");
    const common = {
      type: 'tenant.setLimits' as const,
      atMs: f.timeMs('atMs'),
      id: f.id('id'),
    };
    const limits = {
      maxConnections: l.int('maxConnections', TENANT_LIMITS.maxConnections.min, TENANT_LIMITS.maxConnections.max),
      rateLimitPerSec: l.int('rateLimitPerSec', TENANT_LIMITS.rateLimitPerSec.min, TENANT_LIMITS.rateLimitPerSec.max, 'queries per second'),
      poolSize,
    };
    if (!v6) return { v: 3, ...common, limits };
    // Present, null or not, for the same reason as poolSize.
    const poolMode = l.raw('poolMode', `"session" or "transaction", or null for the proxy's poolMode`) === null ? null : l.oneOf('poolMode', POOL_MODES);
    return { v: 6, ...common, limits: { ...limits, poolMode } };
  },
  'tenant.delete': (x) => {
    const f = fieldsOf(x, ['id']);
    return { ...base(f, 'tenant.delete'), id: f.id('id') };
  },
  'tenant.purge': (x) => {
    const f = fieldsOf(x, ['id']);
    return { ...base(f, 'tenant.purge'), id: f.id('id') };
  },
  'tenant.setState': (x) => {
    const f = fieldsOf(x, ['id', 'state']);
    if (f.raw('state', 'a state') === 'deleted') {
      throw new FieldError(f.at('state'), '"deleted" is set by tenant.delete; expected "active" or "suspended"');
    }
    const state = f.oneOf('state', ['active', 'suspended'] as const);
    return { ...base(f, 'tenant.setState'), id: f.id('id'), state };
  },
  'tenant.place': (x) => {
    const f = fieldsOf(x, ['id', 'node']);
    return { ...base(f, 'tenant.place'), id: f.id('id'), node: f.nullable('node', (k) => f.id(k)) };
  },
};
