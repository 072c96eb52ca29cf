import { UsageError, type CommandSpec, type FlagSpec, type ParsedArgs } from '../args.js';
import type { MemberSpec } from '../types.js';
import { cell, renderTable } from '../table.js';
import { API_FLAGS } from '../args.js';
import { clientFor, printJson } from './common.js';

const ADDRESS_RE = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/;

function address(args: ParsedArgs, name: string): string {
  const v = args.string(name);
  if (v === undefined) throw new UsageError(`missing --${name} HOST:PORT`, args.command);
  const m = ADDRESS_RE.exec(v.trim());
  const port = m ? Number(m[2]) : 0;
  if (!m || port < 1 || port > 65535) throw new UsageError(`--${name}: expected HOST:PORT, got '${v}'`, args.command);
  return v.trim();
}

export const membersList: CommandSpec = {
  path: ['members', 'list'],
  summary: 'list members with their addresses, Raft role and health',
  usage: 'members list [flags]',
  flags: {},
  positionals: { names: [], min: 0, max: 0 },
  api: true,
  examples: ['ogel members list', 'ogel members list --json'],
  async run(ctx, args) {
    const client = clientFor(ctx, args);
    const r = await client.members();
    if (args.bool('json')) {
      printJson(ctx, r);
      return 0;
    }
    const rows = [...r.members]
      .sort((a, b) => a.id.localeCompare(b.id))
      .map((m) => [
        m.id,
        cell(m.raft?.role),
        m.raft === undefined ? '-' : m.raft.voter ? 'yes' : 'no',
        cell(m.addresses?.raft),
        cell(m.addresses?.api),
        cell(m.addresses?.proxy),
        cell(m.addresses?.postgres),
        m.health === undefined || m.health === null ? '-' : m.health.healthy ? 'yes' : 'no',
      ]);
    ctx.io.stdout(
      renderTable(
        ['Member', 'Raft role', 'Voter', 'Raft', 'API', 'Proxy', 'Postgres', 'Healthy'].map((header) => ({ header })),
        rows,
      ) + '\n',
    );
    return 0;
  },
};

const endpointFlag: FlagSpec = { ...API_FLAGS['api']!, help: "admin API endpoints to talk to (here --api is the new member's address)" };

export const membersAdd: CommandSpec = {
  path: ['members', 'add'],
  summary: 'add a node: recorded, joined as a Raft learner, promoted to voter once caught up',
  usage: 'members add --id ID --raft H:P --api H:P --proxy H:P --postgres H:P [flags]',
  flags: {
    id: { type: 'string', value: 'ID', help: 'the new node id, e.g. n4' },
    raft: { type: 'string', value: 'HOST:PORT', help: 'its Raft peer address' },
    api: { type: 'string', value: 'HOST:PORT', help: 'its admin API address' },
    proxy: { type: 'string', value: 'HOST:PORT', help: 'its Postgres proxy address' },
    postgres: { type: 'string', value: 'HOST:PORT', help: 'its Postgres address' },
    endpoint: endpointFlag,
  },
  positionals: { names: [], min: 0, max: 0 },
  api: true,
  details:
    "In this command --api is the new member's API address; name the admin endpoints to\n" +
    'talk to with --endpoint (or OGEL_API, or the state file). The answer comes once the\n' +
    'node has caught up: raise --timeout-ms for a large log.',
  examples: [
    'ogel members add --id n4 --raft 10.0.0.4:7001 --api 10.0.0.4:8001 --proxy 10.0.0.4:6432 --postgres 10.0.0.4:5433',
    'ogel members add --id n4 ... --endpoint http://10.0.0.1:8001 --timeout-ms 60000',
  ],
  async run(ctx, args) {
    const id = args.nonEmpty('id');
    if (id === undefined) throw new UsageError('missing --id ID', args.command);
    const spec: MemberSpec = {
      id,
      raft: address(args, 'raft'),
      api: address(args, 'api'),
      proxy: address(args, 'proxy'),
      postgres: address(args, 'postgres'),
    };
    const client = clientFor(ctx, args, 'endpoint');
    const r = await client.addMember(spec);
    if (args.bool('json')) printJson(ctx, r);
    else {
      // The API answers once the learner has caught up and been promoted (POST /v1/members).
      ctx.io.stdout(`added member ${r.member.id} (voter)\n`);
    }
    return 0;
  },
};

export const membersRemove: CommandSpec = {
  path: ['members', 'remove'],
  summary: 'remove a node from the cluster',
  usage: 'members remove ID [flags]',
  flags: {},
  positionals: { names: ['ID'], min: 1, max: 1 },
  api: true,
  examples: ['ogel members remove n4'],
  async run(ctx, args) {
    const id = args.positionals[0] ?? '';
    if (id.trim() === '') throw new UsageError('missing ID', args.command);
    const client = clientFor(ctx, args);
    const r = await client.removeMember(id);
    if (args.bool('json')) printJson(ctx, r);
    else ctx.io.stdout(`removed member ${r.removed ?? id}\n`);
    return 0;
  },
};
