import { CliError, UsageError, type CommandSpec } from '../args.js';
import type { CreateTenantRequest, Tenant } from '../types.js';
import { cell, formatTime, renderTable } from '../table.js';
import { clientFor, printJson } from './common.js';

const MAX_CONNECTIONS_MAX = 100_000;

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
  { header: 'Placement' },
  { header: 'Created (UTC)' },
];

export const tenantsCreate: CommandSpec = {
  path: ['tenants', 'create'],
  summary: 'create a tenant: a database and a role, reachable through the proxy',
  usage: 'tenants create NAME [--password P] [--max-connections N] [flags]',
  flags: {
    password: {
      type: 'string',
      value: 'P',
      help: 'the role password (default: one is generated and shown once); visible in the process list',
    },
    'max-connections': { type: 'string', value: 'N', help: `connection limit, 1 to ${MAX_CONNECTIONS_MAX}` },
  },
  positionals: { names: ['NAME'], min: 1, max: 1 },
  api: true,
  details: 'The cluster stores only a SCRAM-SHA-256 verifier. A generated password is printed once.',
  examples: ['ogel tenants create acme', 'ogel tenants create acme --max-connections 20 --json'],
  async run(ctx, args) {
    const name = tenantName(args.positionals[0], args.command);
    const password = args.string('password');
    if (password === '') throw new UsageError('--password needs a non-empty value (omit it to have one generated)', args.command);
    const maxConnections = args.int('max-connections', 1, MAX_CONNECTIONS_MAX);
    const req: CreateTenantRequest = { name };
    if (password !== undefined) req.password = password;
    if (maxConnections !== undefined) req.limits = { maxConnections };
    const client = clientFor(ctx, args);
    const r = await client.createTenant(req);
    if (args.bool('json')) {
      printJson(ctx, r);
      return 0;
    }
    const t = r.tenant;
    const lines = [`Created tenant ${t.name ?? name} (database ${cell(t.database)}, role ${cell(t.role)})`];
    if (r.password !== undefined && password === undefined) lines.push(`Password: ${r.password}   (shown once: only a SCRAM verifier is stored)`);
    if (r.url !== undefined) lines.push(`URL: ${r.url}`);
    ctx.io.stdout(lines.join('\n') + '\n');
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
