// The OpenAPI 3.1 document of the admin API, built from the route table and the
// zod schemas (OpenAPI 3.1 schemas are JSON Schema 2020-12, which z.toJSONSchema
// writes). Named schemas (those with a meta id) become components and are
// referenced; the rest is inlined.

import { z } from 'zod';
import { ROUTES, type RouteSpec } from './routes.js';
import { ErrorBody } from './responses.js';

const COMPONENT_PREFIX = '#/components/schemas/';

export interface OpenApiDocument {
  openapi: '3.1.0';
  info: { title: string; version: string; description: string };
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> };
  paths: Record<string, Record<string, unknown>>;
  /** Every operation needs the bearer token unless it says `security: []`. */
  security: Record<string, string[]>[];
}

/** `/v1/tenants/:name` as OpenAPI writes it: `/v1/tenants/{name}`. */
export function openApiPath(routerPath: string): string {
  return routerPath.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}');
}

/** The document; `version` is the daemon's (package.json). Pure: the server builds it once. */
export function buildOpenApi(version: string): OpenApiDocument {
  const routes: readonly RouteSpec[] = Object.values(ROUTES);
  const schemas: Record<string, unknown> = {};
  /** A schema as JSON Schema; every named schema in it (meta id) goes to the components. */
  const ref = (schema: z.ZodType): unknown => {
    const json = z.toJSONSchema(schema, { target: 'draft-2020-12', unrepresentable: 'any', io: 'output' });
    // z.toJSONSchema puts named schemas in $defs: move them to the components.
    const moved = JSON.parse(JSON.stringify(json).replaceAll('"#/$defs/', `"${COMPONENT_PREFIX}`)) as Record<string, unknown>;
    const { $schema: _dialect, $defs, ...root } = moved;
    for (const [k, v] of Object.entries(($defs ?? {}) as Record<string, unknown>)) schemas[k] = v;
    return root;
  };
  const paths: OpenApiDocument['paths'] = {};
  for (const r of routes) {
    const path = openApiPath(r.path);
    const params = [...r.path.matchAll(/:([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    const query = (r.query ?? []).map((q) => ({ name: q.name, in: 'query', required: false, description: q.description, schema: { type: 'string' } }));
    const ok =
      r.response !== undefined
        ? { 'application/json': { schema: ref(r.response) } }
        : { [r.contentType ?? 'application/json']: { schema: r.contentType?.startsWith('text/') ? { type: 'string' } : {} } };
    const responses: Record<string, unknown> = {
      '200': { description: 'OK', content: ok },
      default: { description: 'an error', content: { 'application/json': { schema: ref(ErrorBody) } } },
    };
    if (r.check) responses['503'] = { description: 'the check fails (same body)', content: ok };
    const ops = paths[path] ?? {};
    paths[path] = ops;
    ops[r.method.toLowerCase()] = {
      summary: r.summary,
      operationId: `${r.method.toLowerCase()}${path.replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}`,
      ...(r.internal ? { tags: ['internal'] } : {}),
      ...(r.auth ? {} : { security: [] }),
      ...(params.length + query.length > 0 ? { parameters: [...params, ...query] } : {}),
      ...(r.request !== undefined ? { requestBody: { required: false, content: { 'application/json': { schema: ref(r.request) } } } } : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'OgelBase admin API',
      version,
      description: 'Generated from src/api/contract (the single source of truth); see docs/admin-api.md.',
    },
    components: { schemas, securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: "the cluster's api.token" } } },
    paths,
    security: [{ bearer: [] }],
  };
}
