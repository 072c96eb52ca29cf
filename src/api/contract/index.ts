// The admin API contract: the single source of truth for every route's request
// and answer (docs/admin-api.md). The server validates bodies with it, the daemon's
// backend returns its types, the CLI parses answers with it, and GET
// /v1/openapi.json serves it as an OpenAPI 3.1 document.

export * from './requests.js';
export * from './responses.js';
export { ROUTES, type Method, type RouteKey, type RouteSpec } from './routes.js';
export { buildOpenApi, openApiPath, type OpenApiDocument } from './openapi.js';
export { ADDRESS_HINT, describe, hintOf } from './fields.js';
