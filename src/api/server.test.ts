// PATCH /v1/tenants/:name against a stub backend: what reaches the backend, and
// that a bad body is refused with the field, the value and the fix.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiServer, type ApiBackend } from './server.js';
import type { Tenant, TenantLimitsChange } from './contract/index.js';

const TOKEN = 'test-token';
const ACME: Tenant = {
  id: 't1',
  name: 'acme',
  database: 'acme',
  role: 'acme',
  state: 'active',
  limits: { maxConnections: 20, rateLimitPerSec: 100, poolSize: null },
  defaultPoolSize: 20,
  placement: null,
  createdAtMs: 1763700000000,
};

/** A backend with only the calls these tests expect; any other call fails the test. */
function stubBackend(calls: [string, TenantLimitsChange][]): ApiBackend {
  const impl: Partial<ApiBackend> = {
    nodeId: 'n1',
    isLeader: () => true,
    leaderApiUrl: () => undefined,
    countRequest: () => {},
    setTenantLimits: async (name, change) => {
      calls.push([name, change]);
      if (name !== 'acme') return undefined;
      return { ...ACME, limits: { ...ACME.limits, ...change } };
    },
  };
  return new Proxy(impl, {
    get(target, key: string) {
      if (key in target) return target[key as keyof ApiBackend];
      throw new Error(`unexpected backend call: ${key}`);
    },
  }) as ApiBackend;
}

describe('PATCH /v1/tenants/:name', () => {
  const calls: [string, TenantLimitsChange][] = [];
  let api: ApiServer;
  let base = '';

  before(async () => {
    api = new ApiServer({ host: '127.0.0.1', port: 0, token: TOKEN, forwardTimeoutMs: 1_000, backend: stubBackend(calls), log: () => {} });
    base = `http://127.0.0.1:${await api.listen()}`;
  });
  after(async () => {
    await api.close();
  });

  async function patch(
    name: string,
    body: unknown,
  ): Promise<{ status: number; body: { tenant?: unknown; error?: { code: string; message: string; hint?: string } } }> {
    const res = await fetch(`${base}/v1/tenants/${name}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as never };
  }

  test('only the limits given reach the backend; poolSize null means the default', async () => {
    calls.length = 0;
    const r = await patch('acme', { limits: { poolSize: 5 } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.tenant, { ...ACME, limits: { maxConnections: 20, rateLimitPerSec: 100, poolSize: 5 } });
    assert.equal((await patch('acme', { limits: { poolSize: null, maxConnections: 8, rateLimitPerSec: 1 } })).status, 200);
    assert.deepEqual(calls, [
      ['acme', { poolSize: 5 }],
      ['acme', { poolSize: null, maxConnections: 8, rateLimitPerSec: 1 }],
    ]);
  });

  test('an unknown tenant is a 404 with a hint', async () => {
    const r = await patch('nope', { limits: { poolSize: 2 } });
    assert.equal(r.status, 404);
    assert.equal(r.body.error?.message, "no tenant named 'nope'");
    assert.match(r.body.error?.hint ?? '', /ogel tenants list/);
  });

  test('bad bodies: 400 naming the field, the value and the fix; nothing reaches the backend', async () => {
    calls.length = 0;
    const cases: [unknown, RegExp, RegExp][] = [
      [
        { limits: { poolSize: 0 } },
        /^field 'limits\.poolSize': expected an integer from 1 to 10000 \(server connections per pool, or null for the proxy's defaultPoolSize\), got 0$/,
        /"poolSize": 10/,
      ],
      [{ limits: { poolSize: '5' } }, /^field 'limits\.poolSize': .* got "5"$/, /e\.g\./],
      [{ limits: { poolSize: 2.5 } }, /got 2\.5$/, /e\.g\./],
      [{ limits: { maxConnections: 0 } }, /^field 'limits\.maxConnections': expected an integer from 1 to 10000 \(client connections\), got 0$/, /e\.g\./],
      [{ limits: { rateLimitPerSec: -1 } }, /^field 'limits\.rateLimitPerSec': .*got -1$/, /e\.g\./],
      [{ limits: { burst: 3 } }, /^unknown field 'limits\.burst'$/, /known limits: poolSize, poolMode, maxConnections, rateLimitPerSec/],
      [{ limits: {} }, /^field 'limits': changes nothing$/, /at least one of poolSize, poolMode, maxConnections, rateLimitPerSec/],
      [{ limits: { poolMode: 'statement' } }, /^field 'limits\.poolMode': "statement" is not a pool mode$/, /"session".*"transaction".*null/],
      [{}, /^field 'limits' is required$/, /e\.g\. \{"limits": \{"poolSize": 10\}\}/],
      [{ limits: 5 }, /^field 'limits' must be a JSON object, got 5$/, /.?/],
      [{ limits: { poolSize: 3 }, name: 'x' }, /^unknown field 'name'$/, /known fields: limits/],
    ];
    for (const [body, message, hint] of cases) {
      const r = await patch('acme', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.body.error?.code, 'invalid_body');
      assert.match(r.body.error?.message ?? '', message, JSON.stringify(body));
      assert.match(r.body.error?.hint ?? '', hint, JSON.stringify(body));
    }
    assert.deepEqual(calls, []);
  });
});
