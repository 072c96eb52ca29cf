import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Tenant, TenantState } from '../../fsm/index.js';
import { makeScramVerifier } from '../auth/scram.js';
import { parseTenantTag, planProvisioning, tenantTag, type Observed, type ObservedDatabase, type ObservedRole, type ProvisionAction } from './tenant-plan.js';

const verifierFor = (role: string) => `SCRAM-for-${role}`;

function tenant(name: string, id: string, state: TenantState = 'active', maxConnections = 10): Tenant {
  return {
    id,
    name,
    database: name,
    role: name,
    limits: { maxConnections, rateLimitPerSec: 1, poolSize: null, poolMode: null },
    state,
    placement: null,
    scram: makeScramVerifier('x', 4096),
    createdAtMs: 0,
    deletedAtMs: state === 'deleted' ? 1 : null,
  };
}

function role(name: string, tag: string | null, over: Partial<ObservedRole> = {}): ObservedRole {
  return {
    name,
    tag,
    login: true,
    superuser: false,
    createdb: false,
    createrole: false,
    replication: false,
    bypassrls: false,
    connLimit: 10,
    password: verifierFor(name),
    ...over,
  };
}
function db(name: string, tag: string | null, over: Partial<ObservedDatabase> = {}): ObservedDatabase {
  return { name, owner: name, tag, publicConnect: false, ...over };
}
function observed(roles: ObservedRole[], dbs: ObservedDatabase[]): Observed {
  return { roles: new Map(roles.map((r) => [r.name, r])), databases: new Map(dbs.map((d) => [d.name, d])) };
}
function tenants(...ts: Tenant[]): Map<string, Tenant> {
  return new Map(ts.map((t) => [t.id, t]));
}
function kinds(actions: ProvisionAction[]): string[] {
  return actions.map((a) => {
    switch (a.kind) {
      case 'dropDatabase':
        return `dropDatabase ${a.database}`;
      case 'dropRole':
        return `dropRole ${a.role}`;
      case 'purge':
        return `purge ${a.tenantId}`;
      default:
        return `${a.kind} ${a.tenant.name}`;
    }
  });
}

describe('tenant provisioning plan', () => {
  it('marks: ogel tenant <id>, and nothing else is ours', () => {
    assert.equal(tenantTag('abc-1'), 'ogel tenant abc-1');
    assert.equal(parseTenantTag('ogel tenant abc-1'), 'abc-1');
    for (const c of [null, '', 'ogel tenant ', 'ogel tenant a b', 'my database', 'OGEL TENANT x']) assert.equal(parseTenantTag(c), null, String(c));
  });

  it('a new tenant: create its role, then its database', () => {
    const p = planProvisioning(tenants(tenant('acme', 't1')), observed([], []), verifierFor);
    assert.deepEqual(kinds(p.actions), ['createRole acme', 'createDatabase acme']);
    const cr = p.actions[0]!;
    assert.ok(cr.kind === 'createRole');
    assert.deepEqual(cr.tenant, { id: 't1', name: 'acme', role: 'acme', database: 'acme', connLimit: 10, passwordVerifier: 'SCRAM-for-acme' });
    assert.equal(p.done.size, 0);
  });

  it('a provisioned tenant needs nothing (idempotent) and is done; suspended tenants keep theirs', () => {
    const p = planProvisioning(
      tenants(tenant('acme', 't1'), tenant('zzz', 't2', 'suspended')),
      observed([role('acme', 't1'), role('zzz', 't2')], [db('acme', 't1'), db('zzz', 't2')]),
      verifierFor,
    );
    assert.deepEqual(p.actions, []);
    assert.deepEqual([...p.done].sort(), ['t1', 't2']);
  });

  it('repairs a drifted role: powers, login, limit, password', () => {
    for (const over of [
      { superuser: true },
      { login: false },
      { createdb: true },
      { createrole: true },
      { replication: true },
      { bypassrls: true },
      { connLimit: -1 },
      { password: 'md5abc' },
      { password: null },
    ]) {
      const p = planProvisioning(tenants(tenant('acme', 't1')), observed([role('acme', 't1', over)], [db('acme', 't1')]), verifierFor);
      assert.deepEqual(kinds(p.actions), ['alterRole acme'], JSON.stringify(over));
      assert.equal(p.done.size, 0);
    }
  });

  it('repairs a database PUBLIC may connect to, or owned by someone else; finishes an interrupted creation', () => {
    for (const d of [db('acme', 't1', { publicConnect: true }), db('acme', 't1', { owner: 'postgres' }), db('acme', null)]) {
      const p = planProvisioning(tenants(tenant('acme', 't1')), observed([role('acme', 't1')], [d]), verifierFor);
      assert.deepEqual(kinds(p.actions), ['finishDatabase acme'], JSON.stringify(d));
    }
  });

  it('never takes over a role or database it did not create', () => {
    const a = planProvisioning(tenants(tenant('acme', 't1')), observed([role('acme', null)], []), verifierFor);
    assert.deepEqual(a.actions, []);
    assert.match(a.conflicts.get('t1')!, /role "acme" already exists on the primary and was not created by ogel/);
    // An unmarked database owned by someone else (not an interrupted creation of ours).
    const b = planProvisioning(tenants(tenant('acme', 't1')), observed([role('acme', 't1')], [db('acme', null, { owner: 'bob' })]), verifierFor);
    assert.match(b.conflicts.get('t1')!, /database "acme" already exists/);
    assert.deepEqual(b.actions, []);
  });

  it("refuses the cluster's own roles and databases, even when marked", () => {
    const t = { ...tenant('ogel_replication', 't1') };
    const p = planProvisioning(tenants(t), observed([role('ogel_replication', null, { replication: true })], []), verifierFor);
    assert.deepEqual(p.actions, []);
    assert.match(p.conflicts.get('t1')!, /belongs to the cluster itself/);
    const q = planProvisioning(tenants({ ...tenant('x', 't2'), database: 'template1' }), observed([], []), verifierFor);
    assert.match(q.conflicts.get('t2')!, /database "template1" belongs to the cluster itself/);
    // A deleted tenant marked on a protected name is never dropped.
    const r = planProvisioning(tenants({ ...tenant('pg_x', 't3', 'deleted') }), observed([role('pg_x', 't3')], [db('postgres', 't3')]), verifierFor);
    assert.deepEqual(kinds(r.actions), []);
  });

  it('a deleted tenant: drop its database, then its role, then purge once nothing is left', () => {
    const gone = tenant('acme', 't1', 'deleted');
    const p = planProvisioning(tenants(gone), observed([role('acme', 't1')], [db('acme', 't1')]), verifierFor);
    assert.deepEqual(kinds(p.actions), ['dropDatabase acme', 'dropRole acme']);
    assert.equal(planProvisioning(tenants(gone), observed([role('acme', 't1')], []), verifierFor).actions[0]?.kind, 'dropRole');
    assert.deepEqual(kinds(planProvisioning(tenants(gone), observed([], []), verifierFor).actions), ['purge t1']);
    // Objects of the same names that are not marked with its id are left alone.
    assert.deepEqual(kinds(planProvisioning(tenants(gone), observed([role('acme', null)], [db('acme', 'other')]), verifierFor).actions), ['purge t1']);
  });

  it("a new tenant reusing a deleted tenant's name never inherits its data: the old database is dropped and a new one created", () => {
    const p = planProvisioning(
      tenants(tenant('acme', 'old', 'deleted'), tenant('acme', 'new')),
      observed([role('acme', 'old')], [db('acme', 'old')]),
      verifierFor,
    );
    assert.deepEqual(kinds(p.actions), ['dropDatabase acme', 'dropRole acme', 'createRole acme', 'createDatabase acme']);
    assert.equal(p.done.size, 0);
  });

  it('a mark of a tenant the cluster no longer has (purged) is cleared only when it stands in the way', () => {
    const stray = observed([role('acme', 'purged-id'), role('other', 'purged-2')], [db('acme', 'purged-id'), db('other', 'purged-2')]);
    const p = planProvisioning(tenants(tenant('acme', 'new')), stray, verifierFor);
    assert.deepEqual(kinds(p.actions), ['dropDatabase acme', 'dropRole acme', 'createRole acme', 'createDatabase acme']);
  });

  it("a live tenant's objects are never dropped, and another live tenant's marked objects are a conflict", () => {
    const p = planProvisioning(
      tenants(tenant('acme', 't1'), tenant('beta', 't2')),
      observed([role('acme', 't1'), role('beta', 't1')], [db('acme', 't1')]),
      verifierFor,
    );
    assert.ok(!p.actions.some((a) => a.kind === 'dropDatabase' || a.kind === 'dropRole'));
    assert.match(p.conflicts.get('t2')!, /role "beta" belongs to tenant "acme"/);
    assert.ok(p.done.has('t1'));
  });

  it('orders every drop before any create, and purges last', () => {
    const p = planProvisioning(
      tenants(tenant('a', 't1', 'deleted'), tenant('b', 't2'), tenant('c', 't3', 'deleted')),
      observed([role('a', 't1'), role('c', 't3')], [db('a', 't1')]),
      verifierFor,
    );
    assert.deepEqual(kinds(p.actions), ['dropDatabase a', 'dropRole a', 'dropRole c', 'createRole b', 'createDatabase b']);
  });
});
