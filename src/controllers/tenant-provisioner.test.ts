import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { apply, initialState, isRejection, type ClusterState, type Command } from '../../fsm/index.js';
import { formatPostgresVerifier, makeScramVerifier } from '../auth/scram.js';
import { tenantRoleVerifier, writablePrimary } from './tenant-provisioner.js';
import { tenantServerPassword } from '../auth/passwords.js';

const config = { cluster: { name: 'test', secret: 'test-cluster-secret-0123456789', dataDir: '/tmp/x' } };

function run(cmds: Command[]): ClusterState {
  let s = initialState();
  for (const c of cmds) {
    const r = apply(s, c);
    if (isRejection(r)) assert.fail(`${c.type}: ${JSON.stringify(r)}`);
    s = r.state;
  }
  return s;
}

const addresses = (n: number) => ({
  raft: `127.0.0.1:${7000 + n}`,
  api: `127.0.0.1:${8000 + n}`,
  proxy: `127.0.0.1:${6400 + n}`,
  postgres: `127.0.0.1:${5400 + n}`,
});
const members: Command[] = [1, 2].map((n) => ({ v: 1, type: 'member.add', id: `n${n}`, addresses: addresses(n), atMs: 1 }) as Command);
const promote = {
  v: 1,
  type: 'pg.promote',
  node: 'n1',
  generation: 1,
  reason: 'bootstrap',
  lsn: '0/0',
  leaseDurationMs: 1000,
  automatic: false,
  lapsedLease: null,
  atMs: 2,
} as Command;
const report = {
  v: 1,
  type: 'pg.report',
  node: 'n1',
  role: 'primary',
  timeline: 1,
  lsn: { received: '0/1', flushed: '0/1', replayed: '0/1' },
  atMs: 3,
} as Command;
const renew: Command = { v: 1, type: 'lease.renew', holder: 'n1', generation: 1, seq: 1, atMs: 4 };

describe('tenant provisioner', () => {
  it('acts only on a writable primary: promoted, reported primary, lease renewed at least once', () => {
    assert.match(writablePrimary(run(members)) as string, /there is no primary/);
    assert.match(writablePrimary(run([...members, promote])) as string, /has not reported itself primary/);
    assert.match(writablePrimary(run([...members, promote, report])) as string, /no renewed lease/);
    assert.deepEqual(writablePrimary(run([...members, promote, report, renew])), { node: 'n1', generation: 1, host: '127.0.0.1', port: 5401 });
  });

  it("the role's stored verifier is makeScramVerifier of the derived password with a secret-derived salt: stable, per role", async () => {
    const v = await tenantRoleVerifier(config, 'acme');
    const salt = createHmac('sha256', config.cluster.secret).update('ogel-tenant-salt:acme').digest().subarray(0, 16);
    assert.equal(v, formatPostgresVerifier(makeScramVerifier(tenantServerPassword(config, 'acme'), 4096, salt)));
    assert.equal(await tenantRoleVerifier(config, 'acme'), v);
    assert.notEqual(await tenantRoleVerifier(config, 'beta'), v);
    assert.match(v, /^SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/);
  });
});
