// Who a client claims to be, from its startup packet and TLS SNI (docs/proxy.md,
// "Identity and isolation"). Pure: the state comes from `view()` at each call.
//
// Isolation rests on three rules checked here before any password exchange:
// a session's tenant is chosen by exactly one name (options endpoint, SNI or
// the user); the user must be that tenant's role; the database must be that
// tenant's database. Failures that concern tenants answer with texts that are
// the same whether or not another tenant exists: an unknown, deleted or
// suspended tenant, or a user that is not the tenant's role, get exactly the
// 28P01 of a wrong password (the session runs a doomed SCRAM exchange first,
// see scram-server.ts, so the flow matches too).

import { isIP } from 'node:net';
import type { Tenant } from '../../fsm/index.js';
import type { ScramVerifier } from '../auth/scram.js';
import { hostPortOf, type Config } from '../config/index.js';
import { passwordFailedRefusal } from './scram-server.js';
import type { ClaimedIdentity, PoolMode, ProxyRefusal, ResolveIdentity, StartupParams } from './types.js';

/** The cluster's superuser; it belongs to no tenant and may use any database. */
export const ADMIN_USER = 'postgres';
const ADMIN_DEFAULT_DATABASE = 'postgres';

/**
 * Startup parameters passed through to the server. Matched case-insensitively,
 * as Postgres matches GUC names; forwarded with the name as sent.
 */
export const PASSTHROUGH_PARAMS: readonly string[] = [
  'application_name',
  'client_encoding',
  'DateStyle',
  'TimeZone',
  'extra_float_digits',
  'IntervalStyle',
  'search_path',
  'standard_conforming_strings',
  'lc_monetary',
  'lc_numeric',
  'lc_time',
  // Session settings drivers and ORMs send at startup (node-postgres client
  // options, JDBC and libpq `options=-c ...`). In transaction mode they are
  // applied to whichever server connection runs the client's transaction.
  'statement_timeout',
  'lock_timeout',
  'idle_in_transaction_session_timeout',
  'default_transaction_isolation',
  'bytea_output',
  'client_min_messages',
];
/** Lower-case name -> the canonical spelling above (the tracked parameters' keys). */
const PASSTHROUGH_LOWER = new Map(PASSTHROUGH_PARAMS.map((p) => [p.toLowerCase(), p]));

/**
 * Refused by name, with the reason: they would cross the isolation between
 * tenants or the proxy's own guarantees. Anything else not listed above is
 * refused as unsupported.
 */
const REFUSED_PARAMS: ReadonlyMap<string, string> = new Map([
  ['role', 'it would act as another role than the one that logged in'],
  ['session_authorization', 'it would act as another role than the one that logged in'],
  ['default_transaction_read_only', 'the proxy decides where reads and writes go (use target_session_attrs)'],
  ['transaction_read_only', 'the proxy decides where reads and writes go (use target_session_attrs)'],
  ['idle_session_timeout', 'it would close pooled server connections that other clients share'],
]);

/** A startup parameter the proxy passes on (canonical name), or a refusal naming it. */
function passthrough(name: string, where: string): string | ProxyRefusal {
  const lower = name.toLowerCase();
  const canonical = PASSTHROUGH_LOWER.get(lower);
  if (canonical !== undefined) return canonical;
  const why = REFUSED_PARAMS.get(lower);
  return {
    code: '08P01',
    message: why
      ? `${where} ${JSON.stringify(name.slice(0, 64))} is not allowed through the proxy: ${why}`
      : `unsupported ${where} ${JSON.stringify(name.slice(0, 64))}`,
    hint: `the proxy accepts user, database, target_session_attrs, options (endpoint=<tenant>, target_session_attrs=<value>, pool_mode=<mode>, -c name=value), and ${PASSTHROUGH_PARAMS.join(', ')}`,
  };
}

/** target_session_attrs values (libpq's) and whether they make the session read-only. */
const SESSION_ATTRS: ReadonlyMap<string, boolean> = new Map([
  ['any', false],
  ['read-write', false],
  ['primary', false],
  ['read-only', true],
  ['prefer-standby', true],
  // The proxy prefers a standby but falls back to the primary: it cannot promise one.
  ['standby', true],
]);

/** Tenant names are Postgres identifiers (fsm PG_IDENT_RE); anything else names no tenant. */
const TENANT_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export interface IdentityOptions {
  /**
   * Domains under which the SNI's first label names the tenant:
   * `acme.db.example.com` selects tenant acme when `db.example.com` is listed. An
   * SNI outside them (the proxy's own name, or any other) selects nothing, so
   * connecting with TLS through an ordinary host name just works. Default:
   * ['localhost'] (`acme.localhost`); the server passes proxySniDomains(config).
   */
  sniDomains?: readonly string[];
}

/** The SNI domains of a cluster: each node's proxy host name (not IP addresses), and localhost. */
export function proxySniDomains(config: Pick<Config, 'nodes'>): string[] {
  const out = new Set<string>(['localhost']);
  for (const n of config.nodes) {
    const host = hostPortOf(n.proxy, `${n.id}'s proxy address`).host.toLowerCase().replace(/\.$/, '');
    if (host !== '' && isIP(host) === 0) out.add(host);
  }
  return [...out];
}

interface TenantIndex {
  byName: Map<string, Tenant>;
  byRole: Map<string, Tenant>;
}

export function makeIdentityResolver(
  view: () => { tenants: ReadonlyMap<string, Tenant> },
  admin: { verifier: ScramVerifier },
  opts: IdentityOptions = {},
): ResolveIdentity {
  const sniDomains = (opts.sniDomains ?? ['localhost']).map((d) => d.toLowerCase().replace(/\.$/, ''));
  // The state is immutable: a new tenants map means a change, so the index is
  // rebuilt only then, not on every connection.
  let indexed: { tenants: ReadonlyMap<string, Tenant>; index: TenantIndex } | undefined;
  const indexOf = (tenants: ReadonlyMap<string, Tenant>): TenantIndex => {
    if (indexed?.tenants !== tenants) indexed = { tenants, index: buildIndex(tenants) };
    return indexed.index;
  };

  return (params: StartupParams, sni: string | undefined): ClaimedIdentity | ProxyRefusal => {
    const checked = checkParams(params);
    if ('code' in checked) return checked;
    const { user, serverParams, readOnly } = checked;
    const endpoint = checked.endpoint;
    const sniTenant = sniTenantName(sni, sniDomains);

    if (endpoint !== null && sniTenant !== null && endpoint !== sniTenant) {
      return {
        code: '28000',
        message: `the tenant named by options endpoint (${JSON.stringify(endpoint)}) differs from the one named by the TLS server name (${JSON.stringify(sniTenant)})`,
        hint: "name one tenant: drop options=endpoint=... or connect through that tenant's host name",
      };
    }
    const named = endpoint ?? sniTenant;

    if (user === ADMIN_USER) {
      if (named !== null) {
        const via = endpoint !== null ? 'options endpoint' : 'the TLS server name';
        return {
          code: '28000',
          message: `user "${ADMIN_USER}" is the cluster's administrator and belongs to no tenant, but ${via} names tenant ${JSON.stringify(named)}`,
          hint: `connect as the tenant's own user, or as "${ADMIN_USER}" without a tenant endpoint`,
        };
      }
      return {
        kind: 'admin',
        tenantId: null,
        role: ADMIN_USER,
        database: checked.database ?? ADMIN_DEFAULT_DATABASE,
        verifier: admin.verifier,
        readOnly,
        poolMode: checked.poolMode,
        serverParams,
        maxClientConnections: null,
        poolSize: null,
      };
    }

    const index = indexOf(view().tenants);
    // Without an explicit tenant name, the user (the tenant's role) selects it.
    const tenant = named !== null ? index.byName.get(named) : index.byRole.get(user);
    // Unknown, suspended, or someone else's tenant: the text of a wrong password,
    // whatever exists (deleted tenants are not in the index at all).
    if (tenant === undefined || tenant.state !== 'active' || tenant.role !== user) return passwordFailedRefusal(user);
    const database = checked.database ?? user; // Postgres's default: the user name
    if (database !== tenant.database) {
      // The same text whether that database is another tenant's or nobody's.
      return { code: '3D000', message: `database ${JSON.stringify(database)} does not exist` };
    }
    return {
      kind: 'tenant',
      tenantId: tenant.id,
      role: tenant.role,
      database: tenant.database,
      verifier: tenant.scram,
      readOnly,
      // The client's own choice for this connection, else the tenant's.
      poolMode: checked.poolMode ?? tenant.limits.poolMode,
      serverParams,
      maxClientConnections: tenant.limits.maxConnections,
      poolSize: tenant.limits.poolSize,
    };
  };
}

/**
 * The current poolSize of the live tenant with this database and role (null: the
 * proxy's default), or undefined when there is none: ProxyServer's poolSizeOf, so a
 * changed limit reaches pools whose clients connected before the change.
 */
export function makePoolSizeLookup(view: () => { tenants: ReadonlyMap<string, Tenant> }): (database: string, role: string) => number | null | undefined {
  // Rebuilt only when the tenants map changes (the state is immutable), as above.
  let indexed: { tenants: ReadonlyMap<string, Tenant>; byRole: Map<string, Tenant> } | undefined;
  return (database, role) => {
    const tenants = view().tenants;
    if (indexed?.tenants !== tenants) indexed = { tenants, byRole: buildIndex(tenants).byRole };
    const t = indexed.byRole.get(role);
    return t === undefined || t.database !== database ? undefined : t.limits.poolSize;
  };
}

function buildIndex(tenants: ReadonlyMap<string, Tenant>): TenantIndex {
  const byName = new Map<string, Tenant>();
  const byRole = new Map<string, Tenant>();
  for (const t of tenants.values()) {
    // Deleted tenants free their names (a new tenant may reuse them): never select one.
    if (t.state === 'deleted') continue;
    byName.set(t.name, t);
    byRole.set(t.role, t);
  }
  return { byName, byRole };
}

export interface CheckedParams {
  user: string;
  database: string | null;
  endpoint: string | null;
  readOnly: boolean;
  /** options pool_mode=...: this connection's pooling mode; null: the tenant's, else the proxy's. */
  poolMode: PoolMode | null;
  serverParams: Map<string, string>;
}

/** Parameter names and forms; nothing here depends on which tenants exist (the proxy tests' identity double uses it too). */
export function checkParams(params: StartupParams): CheckedParams | ProxyRefusal {
  let user: string | null = null;
  let database: string | null = null;
  let endpoint: string | null = null;
  let readOnly = false;
  let poolMode: PoolMode | null = null;
  const serverParams = new Map<string, string>();
  for (const [name, value] of params) {
    switch (name) {
      case 'user':
        user = value;
        break;
      case 'database':
        database = value === '' ? null : value;
        break;
      case 'options': {
        const o = parseOptions(value);
        if ('code' in o) return o;
        endpoint = o.endpoint;
        poolMode = o.poolMode;
        if (o.readOnly !== null) readOnly = o.readOnly;
        // -c settings; a startup parameter of the same name (either order) wins, as in Postgres.
        for (const [k, v] of o.settings) if (!serverParams.has(k)) serverParams.set(k, v);
        break;
      }
      case 'target_session_attrs': {
        const ro = sessionAttrs(value, 'startup parameter "target_session_attrs"');
        if (typeof ro !== 'boolean') return ro;
        readOnly = ro;
        break;
      }
      case 'replication':
        // A walsender session bypasses the SQL-level isolation and the pooling.
        return { code: '28000', message: 'replication connections are not allowed through the proxy (startup parameter "replication")' };
      default:
        // Protocol options (_pq_.*) are the session's business (NegotiateProtocolVersion); never forwarded.
        if (name.startsWith('_pq_.')) break;
        {
          const canonical = passthrough(name, 'startup parameter');
          if (typeof canonical !== 'string') return canonical;
          serverParams.set(canonical, value);
        }
    }
  }
  if (user === null || user === '') return { code: '28000', message: 'no PostgreSQL user name specified in startup packet' };
  return { user, database, endpoint, readOnly, poolMode, serverParams };
}

/**
 * `options` may carry only `endpoint=<tenant>`. Anything else (`-c name=value`,
 * `--name=value`) would set session GUCs on the server before the proxy sees
 * them, so it is refused rather than filtered. Returns the tenant name, or null
 * for empty options.
 */
function sessionAttrs(value: string, where: string): boolean | ProxyRefusal {
  const ro = SESSION_ATTRS.get(value);
  if (ro !== undefined) return ro;
  return {
    code: '08P01',
    message: `invalid value for ${where}: ${JSON.stringify(value.slice(0, 64))}`,
    hint: `expected one of ${[...SESSION_ATTRS.keys()].join(', ')}`,
  };
}

/**
 * The startup `options`: words `endpoint=<tenant>` (Neon's form) and
 * `target_session_attrs=<value>` (libpq and most drivers can set `options` but
 * not a startup parameter of that name), and settings as Postgres reads them,
 * `-c name=value`, `-cname=value` or `--name=value`, each checked like a
 * startup parameter. Words split on whitespace; a backslash escapes the next
 * character (libpq's rule), so `-c search_path=a,\ b` keeps its space.
 */
function parseOptions(
  value: string,
): { endpoint: string | null; readOnly: boolean | null; poolMode: PoolMode | null; settings: Map<string, string> } | ProxyRefusal {
  const words = optionWords(value);
  let endpoint: string | null = null;
  let readOnly: boolean | null = null;
  let poolMode: PoolMode | null = null;
  const settings = new Map<string, string>();
  const seen = new Set<string>();
  const unsupported = (why: string): ProxyRefusal => ({
    code: '08P01',
    message: `unsupported startup options ${JSON.stringify(value.slice(0, 64))}: ${why}`,
    hint: 'options accepts endpoint=<tenant>, target_session_attrs=<value>, pool_mode=session|transaction and -c name=value (or --name=value)',
  });
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    let setting: string | undefined;
    if (w === '-c') setting = words[++i];
    else if (w.startsWith('-c')) setting = w.slice(2);
    else if (w.startsWith('--')) setting = w.slice(2);
    if (setting !== undefined || w === '-c') {
      const eq = setting?.indexOf('=') ?? -1;
      if (setting === undefined || eq <= 0) return unsupported(`${JSON.stringify(w)} needs name=value`);
      // Postgres accepts dashes for underscores in --name=value.
      const canonical = passthrough(setting.slice(0, eq).replaceAll('-', '_'), 'setting in options');
      if (typeof canonical !== 'string') return canonical;
      if (settings.has(canonical)) return unsupported(`${canonical} is given twice`);
      settings.set(canonical, setting.slice(eq + 1));
      continue;
    }
    const m = /^(endpoint|target_session_attrs|pool_mode)=(.*)$/.exec(w);
    // A key given twice is refused rather than guessed at (the first, or the last?).
    if (m === null) return unsupported(`${JSON.stringify(w.slice(0, 64))} is not understood`);
    if (seen.has(m[1]!)) return unsupported(`${m[1]} is given twice`);
    seen.add(m[1]!);
    if (m[1] === 'target_session_attrs') {
      const ro = sessionAttrs(m[2]!, 'target_session_attrs in options');
      if (typeof ro !== 'boolean') return ro;
      readOnly = ro;
      continue;
    }
    if (m[1] === 'pool_mode') {
      if (m[2] !== 'session' && m[2] !== 'transaction')
        return {
          code: '08P01',
          message: `invalid pool_mode in options: ${JSON.stringify(m[2]!.slice(0, 64))}`,
          hint: 'pool_mode=session (a server connection for the whole session: LISTEN, temporary tables, advisory locks, session SET) or pool_mode=transaction',
        };
      poolMode = m[2];
      continue;
    }
    const name = m[2]!;
    if (!TENANT_NAME.test(name)) {
      return {
        code: '08P01',
        message: `invalid tenant name in options endpoint=${JSON.stringify(name.slice(0, 64))}: expected 1-63 characters of a-z, 0-9 and "_", not starting with a digit`,
      };
    }
    endpoint = name;
  }
  return { endpoint, readOnly, poolMode, settings };
}

/** Splits options on whitespace; a backslash makes the next character literal (libpq, pg_split_opts). */
function optionWords(value: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    if (/\s/.test(ch)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
      continue;
    }
    inWord = true;
    if (ch === '\\' && i + 1 < value.length) cur += value[++i];
    else cur += ch;
  }
  if (inWord) words.push(cur);
  return words;
}

/** The tenant the SNI names: its first label when the rest is one of the proxy's domains. */
function sniTenantName(sni: string | undefined, domains: readonly string[]): string | null {
  if (sni === undefined || sni === '') return null;
  const host = sni.toLowerCase().replace(/\.$/, '');
  const dot = host.indexOf('.');
  if (dot <= 0) return null;
  if (!domains.includes(host.slice(dot + 1))) return null;
  return host.slice(0, dot);
}
