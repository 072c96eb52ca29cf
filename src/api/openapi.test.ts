// GET /v1/openapi.json: the contract as an OpenAPI 3.1 document. Every route the
// server answers is in it and every path in it is a route (method and path), it
// needs no token, and the named schemas it refers to are present.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiServer, type ApiBackend } from './server.js';
import { openApiPath, type OpenApiDocument } from './contract/index.js';

/** The document needs nothing from the backend but the request counter. */
const backend = new Proxy({ nodeId: 'n1', countRequest: () => {} } as Partial<ApiBackend>, {
  get(target, key: string) {
    if (key in target) return target[key as keyof ApiBackend];
    throw new Error(`unexpected backend call: ${key}`);
  },
}) as ApiBackend;

describe('GET /v1/openapi.json', () => {
  let api: ApiServer;
  let doc: OpenApiDocument;
  let text = '';

  before(async () => {
    api = new ApiServer({ host: '127.0.0.1', port: 0, token: 'test-token', forwardTimeoutMs: 1_000, backend, log: () => {} });
    const res = await fetch(`http://127.0.0.1:${await api.listen()}/v1/openapi.json`);
    assert.equal(res.status, 200, 'served without a token');
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    text = await res.text();
    doc = JSON.parse(text) as OpenApiDocument;
  });
  after(async () => {
    await api.close();
  });

  test('is an OpenAPI 3.1 document', () => {
    assert.equal(doc.openapi, '3.1.0');
    assert.equal(typeof doc.info.version, 'string');
    assert.ok(Object.keys(doc.paths).length > 0);
  });

  test('every registered route is in the document, and every operation in it is a registered route', () => {
    const registered = api
      .registeredRoutes()
      .map((r) => `${r.method} ${openApiPath(r.path)}`)
      .sort();
    const documented = Object.entries(doc.paths)
      .flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`))
      .sort();
    assert.deepEqual(documented, registered);
    assert.equal(new Set(registered).size, registered.length, 'no route registered twice');
  });

  test('bodies and answers have schemas, and every reference resolves', () => {
    const tenants = doc.paths['/v1/tenants'] as Record<string, { requestBody?: unknown; responses: Record<string, unknown> }>;
    assert.ok(tenants['post']?.requestBody, 'POST /v1/tenants has a request body');
    for (const name of ['Status', 'Member', 'Tenant', 'CreateTenantRequest', 'SetTenantLimitsRequest', 'SwitchoverResult', 'ProxyPools', 'Error']) {
      assert.ok(doc.components.schemas[name], `components.schemas.${name}`);
    }
    const refs = [...text.matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1]!);
    assert.ok(refs.length > 10);
    for (const r of new Set(refs)) assert.ok(doc.components.schemas[r], `$ref ${r} resolves`);
    // Request bodies are strict: the document says unknown fields are refused.
    assert.equal((doc.components.schemas['AddMemberRequest'] as { additionalProperties?: unknown }).additionalProperties, false);
  });

  test('routes that need the token say so; health checks and the document do not', () => {
    const op = (path: string, method: string): { security?: unknown[] } => (doc.paths[path] as Record<string, { security?: unknown[] }>)[method]!;
    assert.deepEqual(op('/health', 'get').security, []);
    assert.deepEqual(op('/v1/openapi.json', 'get').security, []);
    assert.equal(op('/v1/status', 'get').security, undefined, 'inherits the document-wide bearer requirement');
  });
});
