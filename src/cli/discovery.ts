// Where the admin API is and which token to send. Order, per the CLI contract:
// flags, then the environment (OGEL_API, OGEL_TOKEN), then the local cluster's
// state file (./.ogel/cluster.json, or $OGEL_STATE_FILE), which `ogel up` writes.

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { CliError, UsageError } from './args.js';

export const DEFAULT_STATE_FILE = '.ogel/cluster.json';
const STATE_FILE_BYTES_MAX = 1024 * 1024;
const ENDPOINTS_MAX = 64;

export interface StateFile {
  path: string;
  apis: string[];
  token: string | undefined;
}

export interface Discovery {
  endpoints: string[];
  token: string | undefined;
  /** Human-readable origin of the endpoints and of the token, for messages. */
  endpointsFrom: string;
  tokenFrom: string | undefined;
}

export interface DiscoverOptions {
  apiFlag?: string[] | undefined;
  tokenFlag?: string | undefined;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/**
 * Normalizes one endpoint: 'host:port' gets 'http://'; only http(s) is allowed;
 * no query or fragment; no trailing slash (a path prefix is kept, for proxies).
 */
export function normalizeEndpoint(raw: string, source: string): string {
  const s = raw.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(s) ? s : `http://${s}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new UsageError(`${source}: '${raw}' is not a URL (expected http://host:port)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`${source}: '${raw}' must be an http:// or https:// URL`);
  }
  if (url.search || url.hash || url.username || url.password) {
    throw new UsageError(`${source}: '${raw}' must be a plain base URL (no query, fragment or credentials)`);
  }
  return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`;
}

export function parseEndpointList(values: string[], source: string): string[] {
  const out: string[] = [];
  for (const v of values) {
    for (const part of v.split(',')) {
      if (part.trim() === '') continue;
      const e = normalizeEndpoint(part, source);
      if (!out.includes(e)) out.push(e);
    }
  }
  if (out.length === 0) throw new UsageError(`${source}: no endpoint given (expected URL[,URL...])`);
  if (out.length > ENDPOINTS_MAX) throw new UsageError(`${source}: at most ${ENDPOINTS_MAX} endpoints`);
  return out;
}

export function stateFilePath(env: NodeJS.ProcessEnv, cwd: string): { path: string; explicit: boolean } {
  const fromEnv = env['OGEL_STATE_FILE'];
  if (fromEnv !== undefined && fromEnv !== '') return { path: resolve(cwd, fromEnv), explicit: true };
  return { path: resolve(cwd, DEFAULT_STATE_FILE), explicit: false };
}

/**
 * Reads the state file. A missing default file is not an error (returns null);
 * a missing file named by OGEL_STATE_FILE is, and so is a malformed one.
 */
export function readStateFile(path: string, explicit: boolean): StateFile | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ENOENT' && !explicit) return null;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : String((err as Error).message);
    throw new CliError(`cannot read state file ${path}: ${why}`, explicit ? 'check OGEL_STATE_FILE' : undefined);
  }
  if (text.length > STATE_FILE_BYTES_MAX) throw new CliError(`state file ${path} is larger than 1 MiB; is it the right file?`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new CliError(`state file ${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new CliError(`state file ${path}: expected an object like {"apis": ["http://127.0.0.1:8001"], "token": "..."}`);
  }
  const o = doc as Record<string, unknown>;
  if (!Array.isArray(o['apis']) || !o['apis'].every((a): a is string => typeof a === 'string')) {
    throw new CliError(`state file ${path}: field 'apis' must be a list of URLs`);
  }
  if (o['token'] !== undefined && o['token'] !== null && typeof o['token'] !== 'string') {
    throw new CliError(`state file ${path}: field 'token' must be a string`);
  }
  let apis: string[];
  try {
    apis = o['apis'].length === 0 ? [] : parseEndpointList(o['apis'], `state file ${path}`);
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  const token = typeof o['token'] === 'string' && o['token'] !== '' ? o['token'] : undefined;
  return { path, apis, token };
}

/**
 * Resolves endpoints and token. The state file's token is sent only to the state
 * file's own endpoints: pointing --api or OGEL_API at another host must not leak
 * the local cluster's token to it.
 */
export function discover(opts: DiscoverOptions): Discovery {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  let endpoints: string[] | undefined;
  let endpointsFrom = '';
  if (opts.apiFlag !== undefined && opts.apiFlag.length > 0) {
    endpoints = parseEndpointList(opts.apiFlag, '--api');
    endpointsFrom = '--api';
  } else if (env['OGEL_API'] !== undefined && env['OGEL_API'].trim() !== '') {
    endpoints = parseEndpointList([env['OGEL_API']], 'OGEL_API');
    endpointsFrom = 'OGEL_API';
  }
  let token: string | undefined;
  let tokenFrom: string | undefined;
  if (opts.tokenFlag !== undefined) {
    if (opts.tokenFlag === '') throw new UsageError('--token needs a non-empty value');
    token = opts.tokenFlag;
    tokenFrom = '--token';
  } else if (env['OGEL_TOKEN'] !== undefined && env['OGEL_TOKEN'] !== '') {
    token = env['OGEL_TOKEN'];
    tokenFrom = 'OGEL_TOKEN';
  }
  if (endpoints === undefined || token === undefined) {
    const { path, explicit } = stateFilePath(env, cwd);
    const state = readStateFile(path, explicit);
    if (state !== null) {
      if (endpoints === undefined && state.apis.length > 0) {
        endpoints = state.apis;
        endpointsFrom = path;
      }
      if (token === undefined && state.token !== undefined && endpoints !== undefined) {
        if (endpoints.every((e) => state.apis.includes(e))) {
          token = state.token;
          tokenFrom = path;
        }
      }
    }
  }
  if (endpoints === undefined) {
    throw new CliError(
      'no admin API address: none given with --api or OGEL_API, and no local cluster state file',
      `pass --api http://HOST:PORT, set OGEL_API, or start a local cluster with 'ogel up' (it writes ./${DEFAULT_STATE_FILE})`,
    );
  }
  return { endpoints, token, endpointsFrom, tokenFrom };
}
