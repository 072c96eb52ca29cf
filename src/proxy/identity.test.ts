import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { Tenant, TenantState } from '../../fsm/index.js';
import { makeScramVerifier } from '../auth/scram.js';
import { makeIdentityResolver, makePoolSizeLookup, proxySniDomains } from './identity.js';
import { isRefusal, type ClaimedIdentity, type ProxyRefusal, type StartupParams } from './types.js';

const adminVerifier = makeScramVerifier('admin-pw', 4096);

function tenant(name: string, state: TenantState = 'active', over: Partial<Tenant> = {}): Tenant {
  return {
    id: `id-${name}-${state}`,
    name,
    database: name,
    role: name,
    limits: { maxConnections: 7, rateLimitPerSec: 100, poolSize: null, poolMode: null },
    state,
    placement: null,
    scram: makeScramVerifier(`${name}-pw`, 4096),
    createdAtMs: 1,
    deletedAtMs: state === 'deleted' ? 2 : null,
    ...over,
  };
}

function resolverWith(tenants: Tenant[], sniDomains?: string[]) {
  const map = new Map(tenants.map((t) => [t.id, t]));
  return makeIdentityResolver(() => ({ tenants: map }), { verifier: adminVerifier }, sniDomains ? { sniDomains } : {});
}

const acme = tenant('acme');
const beta = tenant('beta');
const resolve = resolverWith([acme, beta, tenant('sleepy', 'suspended'), tenant('gone', 'deleted')], ['db.example.com', 'localhost']);
const p = (o: Record<string, string>): StartupParams => new Map(Object.entries(o));

function claim(x: ClaimedIdentity | ProxyRefusal): ClaimedIdentity {
  if (isRefusal(x)) assert.fail(`unexpected refusal ${x.code}: ${x.message}`);
  return x;
}
function refusal(x: ClaimedIdentity | ProxyRefusal, code: string, re?: RegExp): ProxyRefusal {
  if (!isRefusal(x)) assert.fail(`expected refusal ${code}, got a ${x.kind} claim for ${x.role}/${x.database}`);
  assert.equal(x.code, code, x.message);
  if (re) assert.match(x.message, re);
  return x;
}

describe('identity: tenant selection and isolation', () => {
  it('a tenant user gets its role, database, verifier and limit', () => {
    const c = claim(resolve(p({ user: 'acme', database: 'acme' }), undefined));
    assert.equal(c.kind, 'tenant');
    assert.equal(c.tenantId, acme.id);
    assert.equal(c.role, 'acme');
    assert.equal(c.database, 'acme');
    assert.deepEqual(c.verifier, acme.scram);
    assert.equal(c.maxClientConnections, 7);
    assert.equal(c.poolSize, null, 'no poolSize set: the proxy default');
    assert.equal(c.readOnly, false);
    assert.equal(c.serverParams.size, 0);
  });

  it('the database defaults to the user name, as in Postgres', () => {
    assert.equal(claim(resolve(p({ user: 'acme' }), undefined)).database, 'acme');
    assert.equal(claim(resolve(p({ user: 'acme', database: '' }), undefined)).database, 'acme');
  });

  it('selects by options endpoint=, by SNI first label, or by user; all agreeing is fine', () => {
    assert.equal(claim(resolve(p({ user: 'acme', options: 'endpoint=acme' }), undefined)).tenantId, acme.id);
    assert.equal(claim(resolve(p({ user: 'acme' }), 'acme.db.example.com')).tenantId, acme.id);
    assert.equal(claim(resolve(p({ user: 'acme' }), 'ACME.DB.example.com.')).tenantId, acme.id);
    assert.equal(claim(resolve(p({ user: 'acme' }), 'acme.localhost')).tenantId, acme.id);
    assert.equal(claim(resolve(p({ user: 'acme', options: '  endpoint=acme ' }), 'acme.db.example.com')).tenantId, acme.id);
  });

  it('a tenant whose role differs from its name is selected by endpoint or by role', () => {
    const odd = tenant('shop', 'active', { role: 'shop_owner', database: 'shop_db' });
    const r = resolverWith([odd]);
    assert.equal(claim(r(p({ user: 'shop_owner', database: 'shop_db', options: 'endpoint=shop' }), undefined)).tenantId, odd.id);
    assert.equal(claim(r(p({ user: 'shop_owner', database: 'shop_db' }), undefined)).tenantId, odd.id);
    refusal(r(p({ user: 'shop', database: 'shop_db' }), undefined), '28P01');
  });

  it("tenant A cannot reach tenant B's database by name; the text is the same whether B exists", () => {
    const toBeta = refusal(resolve(p({ user: 'acme', database: 'beta' }), undefined), '3D000');
    const toNobody = refusal(resolve(p({ user: 'acme', database: 'nosuch' }), undefined), '3D000');
    assert.equal(toBeta.message, 'database "beta" does not exist');
    assert.equal(toNobody.message.replace('nosuch', 'beta'), toBeta.message);
    assert.equal(toBeta.hint, undefined);
    refusal(resolve(p({ user: 'acme', database: 'postgres' }), undefined), '3D000');
    refusal(resolve(p({ user: 'acme', database: 'template1' }), undefined), '3D000');
  });

  it("tenant A cannot reach tenant B by options=endpoint or SNI: A is not B's role (28P01, same as unknown)", () => {
    const viaEndpoint = refusal(resolve(p({ user: 'acme', database: 'beta', options: 'endpoint=beta' }), undefined), '28P01');
    const viaUnknown = refusal(resolve(p({ user: 'acme', database: 'nosuch', options: 'endpoint=nosuch' }), undefined), '28P01');
    assert.equal(viaEndpoint.message, 'password authentication failed for user "acme"');
    assert.deepEqual(viaUnknown, viaEndpoint);
    const viaSni = refusal(resolve(p({ user: 'acme', database: 'beta' }), 'beta.db.example.com'), '28P01');
    assert.deepEqual(viaSni, viaEndpoint);
    assert.deepEqual(refusal(resolve(p({ user: 'acme' }), 'nosuch.db.example.com'), '28P01'), viaEndpoint);
  });

  it('SNI and endpoint naming different tenants: 28000, by text only (no lookup)', () => {
    const a = refusal(resolve(p({ user: 'acme', options: 'endpoint=acme' }), 'beta.db.example.com'), '28000', /differs/);
    const b = refusal(resolve(p({ user: 'acme', options: 'endpoint=acme' }), 'nosuch.db.example.com'), '28000', /differs/);
    assert.equal(a.message.replace('beta', 'X'), b.message.replace('nosuch', 'X'));
  });

  it('an SNI outside the proxy domains (or a bare host, or no SNI) selects nothing', () => {
    assert.equal(claim(resolve(p({ user: 'acme' }), 'pg.mycompany.com')).tenantId, acme.id);
    assert.equal(claim(resolve(p({ user: 'acme' }), 'db.example.com')).tenantId, acme.id);
    assert.equal(claim(resolve(p({ user: 'acme' }), 'localhost')).tenantId, acme.id);
    assert.equal(claim(resolve(p({ user: 'acme' }), '')).tenantId, acme.id);
  });

  it("proxySniDomains: the nodes' proxy host names and localhost, never IP addresses", () => {
    const d = proxySniDomains({
      nodes: [{ proxy: 'db.example.com:6432' }, { proxy: '127.0.0.1:6432' }, { proxy: '[::1]:6432' }, { proxy: 'Other.Example.com.:5' }],
    } as never);
    assert.deepEqual(d.sort(), ['db.example.com', 'localhost', 'other.example.com']);
  });

  it('options: -c name=value, -cname=value and --name=value of allowed settings pass through; role tricks, unknown words and repeats are refused (08P01)', () => {
    const settings = (options: string) => [...claim(resolve(p({ user: 'acme', options }), undefined)).serverParams];
    assert.deepEqual(settings('-c statement_timeout=5s'), [['statement_timeout', '5s']]);
    assert.deepEqual(settings('endpoint=acme -cstatement_timeout=5s --lock-timeout=2s'), [
      ['statement_timeout', '5s'],
      ['lock_timeout', '2s'],
    ]);
    assert.deepEqual(settings('-c search_path=a,\\ b -c DEFAULT_TRANSACTION_ISOLATION=serializable'), [
      ['search_path', 'a, b'],
      ['default_transaction_isolation', 'serializable'],
    ]);
    // A startup parameter of the same name wins over -c, as in Postgres.
    assert.deepEqual(
      [...claim(resolve(p({ user: 'acme', statement_timeout: '9s', options: '-c statement_timeout=5s' }), undefined)).serverParams],
      [['statement_timeout', '9s']],
    );
    for (const [options, why] of [
      ['--role=beta', /"role" is not allowed through the proxy: it would act as another role/],
      ['endpoint=acme -c role=beta', /"role" is not allowed/],
      ['-c session_authorization=beta', /"session_authorization" is not allowed/],
      ['-c default_transaction_read_only=off', /proxy decides where reads and writes go/],
      ['-c idle_session_timeout=1s', /close pooled server connections/],
      ['-c endpoint=acme', /unsupported setting in options "endpoint"/],
      ['-c statement_timeout', /needs name=value/],
      ['-c', /needs name=value/],
      ['-c statement_timeout=1 -c statement_timeout=2', /statement_timeout is given twice/],
      ['endpoint=acme endpoint=acme', /endpoint is given twice/],
      ['endpoint=acme endpoint=beta', /endpoint is given twice/],
      ['project=acme', /"project=acme" is not understood/],
      ['-c target_session_attrs=read-only', /unsupported setting in options "target_session_attrs"/],
      ['target_session_attrs=read-only target_session_attrs=any', /target_session_attrs is given twice/],
    ] as const) {
      refusal(resolve(p({ user: 'acme', options }), undefined), '08P01', why);
    }
    refusal(
      resolve(p({ user: 'acme', options: 'target_session_attrs=standbyish' }), undefined),
      '08P01',
      /invalid value for target_session_attrs in options: "standbyish"/,
    );
    refusal(resolve(p({ user: 'acme', options: 'endpoint=Acme-1' }), undefined), '08P01', /invalid tenant name/);
    refusal(resolve(p({ user: 'acme', options: 'endpoint=' }), undefined), '08P01', /invalid tenant name/);
    // Empty options are no options.
    claim(resolve(p({ user: 'acme', options: '   ' }), undefined));
  });

  it('target_session_attrs in options makes the session read-only, as the startup parameter does (libpq cannot send the parameter)', () => {
    assert.equal(claim(resolve(p({ user: 'acme', options: 'target_session_attrs=read-only' }), undefined)).readOnly, true);
    assert.equal(claim(resolve(p({ user: 'acme', options: 'endpoint=acme target_session_attrs=prefer-standby' }), undefined)).readOnly, true);
    assert.equal(claim(resolve(p({ user: 'acme', options: 'target_session_attrs=read-write endpoint=acme' }), undefined)).readOnly, false);
    assert.equal(claim(resolve(p({ user: 'acme' }), undefined)).readOnly, false);
  });

  it('unknown startup parameters are refused with their name; the allowlist passes through', () => {
    const r = refusal(resolve(p({ user: 'acme', role: 'beta' }), undefined), '08P01');
    assert.match(r.message, /startup parameter "role" is not allowed through the proxy/);
    assert.match(r.hint ?? '', /target_session_attrs/);
    refusal(resolve(p({ user: 'acme', session_authorization: 'beta' }), undefined), '08P01', /"session_authorization"/);
    refusal(resolve(p({ user: 'acme', work_mem: '5MB' }), undefined), '08P01', /unsupported startup parameter "work_mem"/);
    refusal(resolve(p({ user: 'acme', User: 'beta' }), undefined), '08P01', /"User"/);
    assert.deepEqual([...claim(resolve(p({ user: 'acme', statement_timeout: '5' }), undefined)).serverParams], [['statement_timeout', '5']]);
    const c = claim(
      resolve(p({ user: 'acme', application_name: 'app', client_encoding: 'UTF8', DateStyle: 'ISO', timezone: 'UTC', search_path: 'public' }), undefined),
    );
    assert.deepEqual(
      [...c.serverParams],
      [
        ['application_name', 'app'],
        ['client_encoding', 'UTF8'],
        ['DateStyle', 'ISO'],
        ['TimeZone', 'UTC'],
        ['search_path', 'public'],
      ],
    );
    claim(resolve(p({ user: 'acme', '_pq_.something': 'x' }), undefined)); // protocol options: the session's business
    assert.equal(claim(resolve(p({ user: 'acme', '_pq_.something': 'x' }), undefined)).serverParams.size, 0);
  });

  it('replication connections are refused, whatever the value and the user', () => {
    for (const replication of ['database', 'true', 'on', 'false']) {
      refusal(resolve(p({ user: 'acme', replication }), undefined), '28000', /replication/);
      refusal(resolve(p({ user: 'postgres', replication }), undefined), '28000', /replication/);
    }
  });

  it('deleted and suspended tenants are refused exactly like unknown ones', () => {
    const unknown = refusal(resolve(p({ user: 'nosuch' }), undefined), '28P01');
    assert.equal(unknown.message, 'password authentication failed for user "nosuch"');
    for (const user of ['gone', 'sleepy']) {
      const r = refusal(resolve(p({ user }), undefined), '28P01');
      assert.deepEqual(r, { ...unknown, message: unknown.message.replace('nosuch', user) });
      refusal(resolve(p({ user, options: `endpoint=${user}` }), undefined), '28P01');
    }
  });

  it('a deleted tenant never shadows a new tenant of the same name', () => {
    const old = tenant('acme', 'deleted', { id: 'old' });
    const fresh = tenant('acme', 'active', { id: 'new' });
    assert.equal(claim(resolverWith([fresh, old])(p({ user: 'acme' }), undefined)).tenantId, 'new');
    assert.equal(claim(resolverWith([old, fresh])(p({ user: 'acme' }), undefined)).tenantId, 'new');
  });

  it('sees state changes at once (view() per call)', () => {
    let map = new Map([[acme.id, acme]]);
    const r = makeIdentityResolver(() => ({ tenants: map }), { verifier: adminVerifier });
    claim(r(p({ user: 'acme' }), undefined));
    map = new Map([[acme.id, { ...acme, state: 'suspended' as const }]]);
    refusal(r(p({ user: 'acme' }), undefined), '28P01');
    map = new Map();
    refusal(r(p({ user: 'acme' }), undefined), '28P01');
  });

  it('target_session_attrs: read-only and prefer-standby make the session read-only; consumed, not forwarded', () => {
    assert.equal(claim(resolve(p({ user: 'acme', target_session_attrs: 'read-only' }), undefined)).readOnly, true);
    assert.equal(claim(resolve(p({ user: 'acme', target_session_attrs: 'prefer-standby' }), undefined)).readOnly, true);
    const rw = claim(resolve(p({ user: 'acme', target_session_attrs: 'read-write' }), undefined));
    assert.equal(rw.readOnly, false);
    assert.equal(rw.serverParams.has('target_session_attrs'), false);
    refusal(resolve(p({ user: 'acme', target_session_attrs: 'bogus' }), undefined), '08P01', /target_session_attrs/);
  });

  it('a missing user is refused as Postgres does', () => {
    refusal(resolve(p({ database: 'acme' }), undefined), '28000', /no PostgreSQL user name/);
    refusal(resolve(p({ user: '' }), undefined), '28000', /no PostgreSQL user name/);
  });

  it('the admin (postgres) uses the admin verifier and any database, but not through a tenant name', () => {
    const c = claim(resolve(p({ user: 'postgres', database: 'acme' }), undefined));
    assert.equal(c.kind, 'admin');
    assert.equal(c.tenantId, null);
    assert.equal(c.role, 'postgres');
    assert.equal(c.database, 'acme');
    assert.deepEqual(c.verifier, adminVerifier);
    assert.equal(c.maxClientConnections, null);
    assert.equal(c.poolSize, null);
    assert.equal(claim(resolve(p({ user: 'postgres' }), undefined)).database, 'postgres');
    assert.equal(claim(resolve(p({ user: 'postgres' }), 'db.example.com')).kind, 'admin');
    refusal(resolve(p({ user: 'postgres', options: 'endpoint=acme' }), undefined), '28000', /administrator/);
    refusal(resolve(p({ user: 'postgres' }), 'acme.db.example.com'), '28000', /administrator/);
  });

  it('property: any parameters and SNI give a claim or a refusal, never a throw; a tenant claim is always self-consistent', () => {
    const names = fc.constantFrom('user', 'database', 'options', 'replication', 'application_name', 'role', 'target_session_attrs', '_pq_.x', 'search_path');
    const values = fc.oneof(
      fc.constantFrom('acme', 'beta', 'gone', 'sleepy', 'postgres', 'endpoint=acme', 'endpoint=beta', '-c role=beta', 'read-only', ''),
      fc.string({ maxLength: 20 }),
    );
    const sni = fc.option(fc.oneof(fc.constantFrom('acme.db.example.com', 'beta.localhost', 'db.example.com'), fc.string({ maxLength: 20 })), {
      nil: undefined,
    });
    fc.assert(
      fc.property(fc.array(fc.tuple(names, values), { maxLength: 6 }), sni, (pairs, s) => {
        const r = resolve(new Map(pairs), s);
        if (isRefusal(r)) return;
        if (r.kind === 'tenant') {
          const t = [acme, beta].find((x) => x.id === r.tenantId);
          assert.ok(t, 'only active tenants are ever claimed');
          assert.equal(r.role, t.role);
          assert.equal(r.database, t.database);
          assert.equal(new Map(pairs).get('user'), t.role);
        } else {
          assert.equal(new Map(pairs).get('user'), 'postgres');
        }
        for (const k of r.serverParams.keys()) assert.ok(!['user', 'database', 'options', 'replication', 'role'].includes(k));
      }),
      { numRuns: 3000 },
    );
  });
});

describe('identity: pool size', () => {
  const sized = tenant('sized', 'active', { limits: { maxConnections: 7, rateLimitPerSec: 100, poolSize: 3, poolMode: null } });
  let tenants = new Map([sized, acme, tenant('gone', 'deleted')].map((t) => [t.id, t]));
  const view = () => ({ tenants });

  it("a tenant's claim carries its limits.poolSize", () => {
    const c = claim(makeIdentityResolver(view, { verifier: adminVerifier })(p({ user: 'sized' }), undefined));
    assert.equal(c.poolSize, 3);
  });

  it("the pool mode: the client's options pool_mode, else the tenant's limits.poolMode, else null (the proxy's)", () => {
    const resolve = makeIdentityResolver(view, { verifier: adminVerifier });
    assert.equal(claim(resolve(p({ user: 'sized' }), undefined)).poolMode, null);
    tenants = new Map(tenants).set(sized.id, { ...sized, limits: { ...sized.limits, poolMode: 'session' } });
    assert.equal(claim(resolve(p({ user: 'sized' }), undefined)).poolMode, 'session');
    assert.equal(claim(resolve(p({ user: 'sized', options: 'pool_mode=transaction' }), undefined)).poolMode, 'transaction');
    assert.equal(claim(resolve(p({ user: 'acme', options: 'pool_mode=session endpoint=acme' }), undefined)).poolMode, 'session');
    const bad = resolve(p({ user: 'acme', options: 'pool_mode=statement' }), undefined);
    assert.ok('code' in bad && bad.code === '08P01' && /invalid pool_mode in options: "statement"/.test(bad.message), JSON.stringify(bad));
    tenants = new Map(tenants).set(sized.id, sized);
  });

  it('the lookup follows the state: the live tenant with that database and role, else undefined', () => {
    const lookup = makePoolSizeLookup(view);
    assert.equal(lookup('sized', 'sized'), 3);
    assert.equal(lookup('acme', 'acme'), null);
    assert.equal(lookup('acme', 'sized'), undefined, "another database than the role's tenant");
    assert.equal(lookup('gone', 'gone'), undefined, 'a deleted tenant');
    tenants = new Map(tenants).set(sized.id, { ...sized, limits: { ...sized.limits, poolSize: 9 } });
    assert.equal(lookup('sized', 'sized'), 9);
  });
});
