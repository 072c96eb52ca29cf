import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { adminPassword, derivePassword, tenantServerPassword } from '../auth/passwords.js';
import { serverCredentials } from './credentials.js';

const config = { cluster: { name: 'test', secret: 'test-cluster-secret-0123456789', dataDir: '/tmp/x' } };

describe('proxy server credentials', () => {
  it("a tenant role logs in with derivePassword(secret, 'tenant:' + role)", () => {
    const c = serverCredentials(config, 'acme');
    assert.deepEqual(c, { user: 'acme', password: derivePassword(config.cluster.secret, 'tenant:acme') });
    assert.equal(tenantServerPassword(config, 'acme'), c.password);
  });

  it('the admin (postgres) logs in with the admin password', () => {
    assert.deepEqual(serverCredentials(config, 'postgres'), { user: 'postgres', password: adminPassword(config) });
  });

  it('differs per role and per cluster secret, is stable, and is URL-safe', () => {
    const a = serverCredentials(config, 'acme').password;
    assert.equal(serverCredentials(config, 'acme').password, a);
    assert.notEqual(serverCredentials(config, 'beta').password, a);
    assert.notEqual(serverCredentials({ cluster: { ...config.cluster, secret: 'another-secret-0123456789' } }, 'acme').password, a);
    assert.notEqual(a, adminPassword(config));
    assert.match(a, /^[A-Za-z0-9_-]{43}$/);
  });

  it('refuses an empty role name (a programmer error)', () => {
    assert.throws(() => serverCredentials(config, ''), /not a Postgres role name/);
  });
});
