// The derived passwords are part of every existing cluster: a change to the
// derivation would lock nodes out of each other and the proxy out of Postgres.
// These values are pinned.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { adminPassword, derivePassword, replicationPassword, tenantPasswordLabel, tenantServerPassword } from './passwords.js';

const config = { cluster: { name: 'prod', secret: '0123456789abcdef0123456789abcdef', dataDir: '/tmp/x' } };

describe('derived passwords', () => {
  it('are byte-identical to the values existing clusters use', () => {
    assert.equal(replicationPassword(config), 'tixKkJp8BYbOZi4Lb9tznKOjytqBOsKFuXwoybIlfdc');
    assert.equal(adminPassword(config), 'lbn3h4ttVFLMCZJz4o2UuUrhVAnLXM3XmDPXHC2y8Cc');
    assert.equal(tenantServerPassword(config, 'acme'), '2BSXqHJ-W_b6eT4UNKdiFg3BdNymwZQ_nN-D0XVAhvE');
  });

  it('are one HMAC under different labels', () => {
    assert.equal(replicationPassword(config), derivePassword(config.cluster.secret, 'prod'));
    assert.equal(adminPassword(config), derivePassword(config.cluster.secret, 'prod:admin'));
    assert.equal(tenantServerPassword(config, 'acme'), derivePassword(config.cluster.secret, tenantPasswordLabel('acme')));
  });

  it('differ by secret and by label', () => {
    assert.notEqual(derivePassword('s'.repeat(16), 'ogel'), derivePassword('t'.repeat(16), 'ogel'));
    assert.notEqual(adminPassword(config), replicationPassword(config));
    assert.notEqual(tenantServerPassword(config, 'a'), tenantServerPassword(config, 'b'));
  });

  it('refuse a tenant role that is no role name', () => {
    assert.throws(() => tenantServerPassword(config, ''), TypeError);
    assert.throws(() => tenantServerPassword(config, 'a\0b'), TypeError);
  });
});
