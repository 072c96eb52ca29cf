// The admin API's HTTP plumbing: a tiny router, bounded JSON bodies, bearer auth
// and the one error shape every endpoint uses: {"error":{"code","message","hint"}}.
// Request bodies are checked against the contract (validate.ts).

import { timingSafeEqual, createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

export const BODY_BYTES_MAX = 1024 * 1024;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function sendError(res: ServerResponse, e: ApiError): void {
  sendJson(res, e.status, { error: { code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}) } });
}

/** Reads the body as JSON (an empty body is `{}`), refusing more than BODY_BYTES_MAX. */
export async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > BODY_BYTES_MAX) throw new ApiError(413, 'body_too_large', `body of ${declared} bytes exceeds ${BODY_BYTES_MAX}`);
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes > BODY_BYTES_MAX) throw new ApiError(413, 'body_too_large', `body exceeds ${BODY_BYTES_MAX} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return {};
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new ApiError(400, 'invalid_body', `body is not valid JSON: ${(e as Error).message}`, 'send a JSON object, e.g. {"to": "n2"}');
  }
}

/** Compares the Authorization header with the token in constant time. */
export function checkBearer(req: IncomingMessage, token: string): void {
  const header = req.headers.authorization;
  if (!header) {
    throw new ApiError(
      401,
      'unauthorized',
      'missing bearer token',
      "send 'Authorization: Bearer <token>' (the api.token of the cluster config, or OGEL_TOKEN)",
    );
  }
  const m = /^Bearer\s+(.+)$/i.exec(header);
  // Hash both sides so the comparison is constant-time whatever the lengths.
  const given = createHash('sha256')
    .update(m?.[1] ?? '')
    .digest();
  const want = createHash('sha256').update(token).digest();
  if (!m || !timingSafeEqual(given, want)) {
    throw new ApiError(401, 'unauthorized', 'wrong bearer token', 'use the api.token of the cluster config (or OGEL_TOKEN)');
  }
}

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  params: Record<string, string>;
}

export type Handler = (ctx: RequestContext) => Promise<void> | void;

interface Route {
  method: string;
  pattern: string;
  parts: string[];
  auth: boolean;
  handler: Handler;
}

export class Router {
  private readonly routes: Route[] = [];

  add(method: string, pattern: string, auth: boolean, handler: Handler): this {
    this.routes.push({ method, pattern, parts: pattern.split('/').filter(Boolean), auth, handler });
    return this;
  }

  /** Finds the route for a request: the route, or the reason there is none (404 / 405). */
  match(method: string, path: string): { route: Route; params: Record<string, string> } | ApiError {
    const segs = path.split('/').filter(Boolean);
    let pathMatched = false;
    for (const r of this.routes) {
      if (r.parts.length !== segs.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < segs.length; i++) {
        const p = r.parts[i]!;
        const s = segs[i]!;
        if (p.startsWith(':')) params[p.slice(1)] = decodeURIComponent(s);
        else if (p !== s) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      pathMatched = true;
      if (r.method === method) return { route: r, params };
    }
    if (pathMatched) {
      const allowed = this.routes.filter((r) => r.parts.length === segs.length && this.samePath(r, segs)).map((r) => r.method);
      return new ApiError(405, 'method_not_allowed', `${method} is not allowed on ${path}`, `allowed: ${allowed.join(', ')}`);
    }
    return new ApiError(404, 'not_found', `no such endpoint: ${method} ${path}`, 'see docs/admin-api.md for the endpoints');
  }

  /** Every route, in the order added. */
  list(): { method: string; path: string }[] {
    return this.routes.map((r) => ({ method: r.method, path: r.pattern }));
  }

  private samePath(r: Route, segs: string[]): boolean {
    return r.parts.every((p, i) => p.startsWith(':') || p === segs[i]);
  }
}
