import { CliError, UsageError, parseIntStrict, type CommandSpec } from '../args.js';
import type { CreateTenantRequest, SetTenantLimitsRequest, Tenant } from '../types.js';
import { cell, formatTime, renderTable } from '../table.js';
import { clientFor, printJson } from './common.js';

/** The state machine's bounds (fsm TENANT_LIMITS), checked here too so a typo fails before any request. */
const POOL_SIZE_MAX = 10_000;
const MAX_CONNECTIONS_MAX = 10_000;
const RATE_LIMIT_MAX = 1_000_000;

/** A tenant's pool size as shown: its own, or "default (N)" with the proxy's default. */
export function poolSizeCell(t: Tenant): string {
  const own = t.limits?.poolSize;
  if (typeof own === 'number') return String(own);
  return t.defaultPoolSize === undefined ? 'default' : `default (${t.defaultPoolSize})`;
}

/** --pool-size N, or "default" (null: back to the proxy's defaultPoolSize); undefined when not given. */
function poolSizeFlag(args: { string(name: string): string | undefined; command: string }): number | null | undefined {
  const raw = args.string('pool-size');
  if (raw === undefined) return undefined;
  if (raw.trim() === 'default') return null;
  return parseIntStrict(raw, '--pool-size', 1, POOL_SIZE_MAX, args.command);
}

/** A tenant's pool mode as shown: its own, or "default (transaction)" with the proxy's. */
export function poolModeCell(t: Tenant): string {
  const own = t.limits?.poolMode;
  if (typeof own === 'string') return own;
  return t.defaultPoolMode === undefined ? 'default' : `default (${t.defaultPoolMode})`;
}

/** --pool-mode session|transaction, or "default" (null: back to the proxy's poolMode); undefined when not given. */
function poolModeFlag(args: { string(name: string): string | undefined; command: string }): 'session' | 'transaction' | null | undefined {
  const raw = args.string('pool-mode');
  if (raw === undefined) return undefined;
  const v = raw.trim();
  if (v === 'default') return null;
  if (v === 'session' || v === 'transaction') return v;
  throw new UsageError(`--pool-mode: expected session, transaction or default, got ${JSON.stringify(raw)}`, args.command);
}

const POOL_MODE_HELP =
  'session (a server connection for each client session: LISTEN, temporary tables, advisory locks, session SET) or transaction (one per transaction)';

function tenantName(raw: string | undefined, command: string): string {
  if (raw === undefined || raw.trim() === '') throw new UsageError('missing NAME', command);
  return raw;
}

function tenantRows(tenants: Tenant[]): string[][] {
  return [...tenants]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((t) => [
      cell(t.name),
      cell(t.database),
      cell(t.role),
      cell(t.state),
      cell(t.limits?.maxConnections),
      poolSizeCell(t),
      poolModeCell(t),
      cell(t.placement),
      formatTime(t.createdAtMs),
    ]);
}

const TENANT_COLUMNS = [
  { header: 'Name' },
  { header: 'Database' },
  { header: 'Role' },
  { header: 'State' },
  { header: 'Max connections', align: 'right' as const },
  { header: 'Pool size', align: 'right' as const },
  { header: 'Pool mode' },
  { header: 'Placement' },
  { header: 'Created (UTC)' },
];

export const tenantsCreate: CommandSpec = {
  path: ['tenants', 'create'],
  summary: 'create a tenant: a database and a role, reachable through the proxy',
  usage: 'tenants create NAME [--password P] [--max-connections N] [--pool-size N] [--pool-mode MODE] [flags]',
  flags: {
    password: {
      type: 'string',
      value: 'P',
      help: 'the role password (default: one is generated and shown once); visible in the process list',
    },
    'max-connections': { type: 'string', value: 'N', help: `connection limit, 1 to ${MAX_CONNECTIONS_MAX}` },
    'pool-size': { type: 'string', value: 'N', help: `server connections per proxy pool, 1 to ${POOL_SIZE_MAX} (default: the proxy's defaultPoolSize)` },
    'pool-mode': { type: 'string', value: 'MODE', help: `${POOL_MODE_HELP} (default: the proxy's poolMode)` },
  },
  positionals: { names: ['NAME'], min: 1, max: 1 },
  api: true,
  details:
    'The cluster stores only a SCRAM-SHA-256 verifier. A generated password is printed once.\n' +
    "With --pool-size or --pool-mode the tenant is created, then its limits are set (as 'ogel tenants set-limits' does).",
  examples: ['ogel tenants create acme', 'ogel tenants create acme --max-connections 20 --json', 'ogel tenants create acme --pool-size 5'],
  async run(ctx, args) {
    const name = tenantName(args.positionals[0], args.command);
    const password = args.string('password');
    if (password === '') throw new UsageError('--password needs a non-empty value (omit it to have one generated)', args.command);
    const maxConnections = args.int('max-connections', 1, MAX_CONNECTIONS_MAX);
    const poolSize = poolSizeFlag(args);
    const poolMode = poolModeFlag(args);
    const pooling: SetTenantLimitsRequest['limits'] = {};
    if (poolSize !== undefined) pooling.poolSize = poolSize;
    if (poolMode !== undefined) pooling.poolMode = poolMode;
    const req: CreateTenantRequest = { name };
    if (password !== undefined) req.password = password;
    if (maxConnections !== undefined) req.limits = { maxConnections };
    const client = clientFor(ctx, args);
    const r = await client.createTenant(req);
    if (Object.keys(pooling).length > 0) {
      // tenant.create predates pool sizes and modes (a version-1 command): set them right after.
      try {
        r.tenant = (await client.setTenantLimits(name, { limits: pooling })).tenant;
      } catch (e) {
        const pw = r.password !== undefined && password === undefined ? ` Its generated password (shown once): ${r.password}` : '';
        const flags = [
          poolSize !== undefined ? `--pool-size ${poolSize ?? 'default'}` : '',
          poolMode !== undefined ? `--pool-mode ${poolMode ?? 'default'}` : '',
        ]
          .filter((f) => f !== '')
          .join(' ');
        throw new CliError(
          `tenant ${name} was created, but setting its pooling failed: ${(e as Error).message}.${pw}`,
          `set it with 'ogel tenants set-limits ${name} ${flags}'`,
        );
      }
    }
    if (args.bool('json')) {
      printJson(ctx, r);
      return 0;
    }
    const t = r.tenant;
    const lines = [`Created tenant ${t.name ?? name} (database ${cell(t.database)}, role ${cell(t.role)})`];
    if (poolSize !== undefined) lines.push(`Pool size: ${poolSizeCell(t)}`);
    if (poolMode !== undefined) lines.push(`Pool mode: ${poolModeCell(t)}`);
    if (r.password !== undefined && password === undefined) lines.push(`Password: ${r.password}   (shown once: only a SCRAM verifier is stored)`);
    if (r.url !== undefined) lines.push(`URL: ${r.url}`);
    ctx.io.stdout(lines.join('\n') + '\n');
    return 0;
  },
};

export const tenantsSetLimits: CommandSpec = {
  path: ['tenants', 'set-limits'],
  summary: "change a tenant's limits: pool size and mode, client connections, rate",
  usage: 'tenants set-limits NAME [--pool-size N|default] [--pool-mode MODE|default] [--max-connections N] [--rate-limit N] [flags]',
  flags: {
    'pool-size': {
      type: 'string',
      value: 'N|default',
      help: `server connections per proxy pool, 1 to ${POOL_SIZE_MAX}; "default" for the proxy's defaultPoolSize`,
    },
    'pool-mode': { type: 'string', value: 'MODE|default', help: `${POOL_MODE_HELP}; "default" for the proxy's poolMode` },
    'max-connections': { type: 'string', value: 'N', help: `client connection limit, 1 to ${MAX_CONNECTIONS_MAX}` },
    'rate-limit': { type: 'string', value: 'N', help: `queries per second, 1 to ${RATE_LIMIT_MAX}` },
  },
  positionals: { names: ['NAME'], min: 1, max: 1 },
  api: true,
  details:
    "Limits not given keep their value. A new pool size applies to the tenant's existing pools within a second: " +
    'a larger one opens connections as clients need them; a smaller one closes the extra server connections as their transactions end (none is cut).\n' +
    'A new pool mode applies to connections made after it; a client can choose its own with the startup option pool_mode (options=pool_mode%3Dsession in a URL).',
  examples: [
    'ogel tenants set-limits acme --pool-size 5',
    'ogel tenants set-limits acme --pool-size default',
    'ogel tenants set-limits acme --pool-mode session',
    'ogel tenants set-limits acme --max-connections 50 --rate-limit 1000 --json',
  ],
  async run(ctx, args) {
    const name = tenantName(args.positionals[0], args.command);
    const limits: SetTenantLimitsRequest['limits'] = {};
    const poolSize = poolSizeFlag(args);
    const maxConnections = args.int('max-connections', 1, MAX_CONNECTIONS_MAX);
    const rateLimitPerSec = args.int('rate-limit', 1, RATE_LIMIT_MAX);
    if (poolSize !== undefined) limits.poolSize = poolSize;
    const poolMode = poolModeFlag(args);
    if (poolMode !== undefined) limits.poolMode = poolMode;
    if (maxConnections !== undefined) limits.maxConnections = maxConnections;
    if (rateLimitPerSec !== undefined) limits.rateLimitPerSec = rateLimitPerSec;
    if (Object.keys(limits).length === 0)
      throw new UsageError('nothing to change: give --pool-size, --pool-mode, --max-connections or --rate-limit', args.command);
    const client = clientFor(ctx, args);
    const r = await client.setTenantLimits(name, { limits });
    if (args.bool('json')) printJson(ctx, r);
    else {
      const l = r.tenant.limits;
      ctx.io.stdout(
        `Set limits of tenant ${r.tenant.name ?? name}: pool size ${poolSizeCell(r.tenant)}, pool mode ${poolModeCell(r.tenant)}, max connections ${cell(l?.maxConnections)}, rate limit ${cell(l?.rateLimitPerSec)}/s\n`,
      );
    }
    return 0;
  },
};

export const tenantsList: CommandSpec = {
  path: ['tenants', 'list'],
  summary: 'list tenants',
  usage: 'tenants list [flags]',
  flags: {},
  positionals: { names: [], min: 0, max: 0 },
  api: true,
  examples: ['ogel tenants list', 'ogel tenants list --json'],
  async run(ctx, args) {
    const client = clientFor(ctx, args);
    const r = await client.tenants();
    if (args.bool('json')) printJson(ctx, r);
    else if (r.tenants.length === 0) ctx.io.stdout("No tenants. Create one with 'ogel tenants create NAME'.\n");
    else ctx.io.stdout(renderTable(TENANT_COLUMNS, tenantRows(r.tenants)) + '\n');
    return 0;
  },
};

export const tenantsGet: CommandSpec = {
  path: ['tenants', 'get'],
  summary: 'show one tenant',
  usage: 'tenants get NAME [flags]',
  flags: {},
  positionals: { names: ['NAME'], min: 1, max: 1 },
  api: true,
  examples: ['ogel tenants get acme'],
  async run(ctx, args) {
    const name = tenantName(args.positionals[0], args.command);
    const client = clientFor(ctx, args);
    const r = await client.tenant(name);
    if (args.bool('json')) printJson(ctx, r);
    else ctx.io.stdout(renderTable(TENANT_COLUMNS, tenantRows([r.tenant])) + '\n');
    return 0;
  },
};

export const tenantsDelete: CommandSpec = {
  path: ['tenants', 'delete'],
  summary: 'delete a tenant and its data',
  usage: 'tenants delete NAME [--yes] [flags]',
  flags: {
    yes: { type: 'boolean', short: 'y', help: 'do not ask for confirmation (required when stdin is not a terminal)' },
  },
  positionals: { names: ['NAME'], min: 1, max: 1 },
  api: true,
  details: 'Without --yes, asks you to type the tenant name; when stdin is not a terminal it refuses.',
  examples: ['ogel tenants delete acme', 'ogel tenants delete acme --yes --json'],
  async run(ctx, args) {
    const name = tenantName(args.positionals[0], args.command);
    if (!args.bool('yes') && !ctx.io.stdinIsTTY) {
      throw new UsageError(`refusing to delete tenant '${name}' without confirmation: stdin is not a terminal; pass --yes`, args.command);
    }
    const client = clientFor(ctx, args);
    if (!args.bool('yes')) {
      const answer = await ctx.io.prompt(`Delete tenant '${name}' and all its data? This cannot be undone.\nType the tenant name to confirm: `);
      if (answer === null || answer.trim() !== name) {
        throw new CliError(`aborted: tenant '${name}' was not deleted`, answer === null ? undefined : 'the name you typed did not match');
      }
    }
    const r = await client.deleteTenant(name);
    if (args.bool('json')) printJson(ctx, r);
    else ctx.io.stdout(`Deleted tenant ${r.deleted ?? name}\n`);
    return 0;
  },
};
