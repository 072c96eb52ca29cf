// Tenant handlers (tenant.*).

import type { TenantCommandType } from '../commands/tenants.js';
import { isRejection, reject } from '../errors.js';
import { LIMITS, mapWith, mapWithout, sortedValues, type Tenant, type TenantLimits } from '../state.js';
import { findTenant, full, liveTenant, q, unknownMember, type Handler } from './shared.js';

function sameLimits(a: TenantLimits, b: TenantLimits): boolean {
  return a.maxConnections === b.maxConnections && a.rateLimitPerSec === b.rateLimitPerSec && a.poolSize === b.poolSize && a.poolMode === b.poolMode;
}

export const tenantHandlers: { [T in TenantCommandType]: Handler<T> } = {
  'tenant.create': (s, c) => {
    const existing = s.tenants.get(c.id);
    if (existing !== undefined) {
      return reject(
        'tenant_exists',
        existing.state === 'deleted'
          ? `id: ${q(c.id)} belonged to a deleted tenant; ids are not reused until tenant.purge, so choose another id`
          : `id: tenant ${q(c.id)} already exists`,
        'id',
      );
    }
    if (s.tenants.size >= LIMITS.tenants) return full('tenants (including deleted ones not purged)', s.tenants.size, LIMITS.tenants);
    for (const t of sortedValues(s.tenants)) {
      if (t.state === 'deleted') continue;
      for (const k of ['name', 'database', 'role'] as const) {
        if (t[k] === c[k]) return reject('name_taken', `${k}: ${q(c[k])} is already the ${k} of tenant ${q(t.id)}; choose another`, k);
      }
    }
    const tenant: Tenant = {
      id: c.id,
      name: c.name,
      database: c.database,
      role: c.role,
      // tenant.create (version 1) predates poolSize: the proxy's default until tenant.setLimits.
      limits: { ...c.limits, poolSize: null, poolMode: null },
      state: 'active',
      placement: null,
      scram: c.scram,
      createdAtMs: c.atMs,
      deletedAtMs: null,
    };
    return { state: { ...s, tenants: mapWith(s.tenants, c.id, tenant) } };
  },

  'tenant.delete': (s, c) => {
    const t = liveTenant(s, c.id);
    if (isRejection(t)) return t;
    return { state: { ...s, tenants: mapWith(s.tenants, c.id, { ...t, state: 'deleted', deletedAtMs: c.atMs }) } };
  },

  'tenant.purge': (s, c) => {
    const t = findTenant(s, c.id);
    if (isRejection(t)) return t;
    if (t.state !== 'deleted')
      return reject('tenant_not_deleted', `id: tenant ${q(c.id)} is ${t.state}; only a deleted tenant can be purged (tenant.delete first)`, 'id');
    const user = sortedValues(s.computes).find((k) => k.tenantId === c.id || k.branchOf === c.id);
    if (user !== undefined)
      return reject('tenant_in_use', `id: compute ${q(user.id)} still refers to tenant ${q(c.id)}; delete it first (compute.delete)`, 'id');
    return { state: { ...s, tenants: mapWithout(s.tenants, c.id) } };
  },

  'tenant.setState': (s, c) => {
    const t = liveTenant(s, c.id);
    if (isRejection(t)) return t;
    if (t.state === c.state) return { state: s };
    return { state: { ...s, tenants: mapWith(s.tenants, c.id, { ...t, state: c.state }) } };
  },

  'tenant.setLimits': (s, c) => {
    const t = liveTenant(s, c.id);
    if (isRejection(t)) return t;
    // Version 3 predates poolMode: it leaves the tenant's as it is.
    const limits = c.v === 3 ? { ...c.limits, poolMode: t.limits.poolMode } : c.limits;
    if (sameLimits(t.limits, limits)) return { state: s };
    return { state: { ...s, tenants: mapWith(s.tenants, c.id, { ...t, limits }) } };
  },

  'tenant.place': (s, c) => {
    const t = liveTenant(s, c.id);
    if (isRejection(t)) return t;
    if (c.node !== null && !s.members.has(c.node)) return unknownMember(s, c.node, 'node');
    if (t.placement === c.node) return { state: s };
    return { state: { ...s, tenants: mapWith(s.tenants, c.id, { ...t, placement: c.node }) } };
  },
};
