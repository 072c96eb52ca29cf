import type { CommandSpec } from '../args.js';
import { cell, renderTable } from '../table.js';
import { clientFor, printJson } from './common.js';
import type { ProxyPools } from '../../api/contract/index.js';

/** The counters worth a line under the table (GET /v1/proxy/pools's counters). */
const COUNTERS: [key: keyof ProxyPools['counters'], label: string][] = [
  ['held', 'held for a primary'],
  ['holdTimeouts', 'hold timeouts'],
  ['retried', 'run again'],
  ['failedInFlight', 'failed in flight'],
  ['cancels', 'cancels'],
  ['authFailures', 'auth failures'],
  ['refusedLimit', 'refused by a limit'],
];

export const pools: CommandSpec = {
  path: ['pools'],
  summary: "show a node's proxy pools: clients, server connections in use, idle and waited for (like SHOW POOLS)",
  usage: 'pools [flags]',
  flags: {},
  positionals: { names: [], min: 0, max: 0 },
  api: true,
  details:
    'Each node runs its own proxy with its own pools: this shows the proxy of the node that answers (the first --api endpoint that does).\n' +
    'A pool is one (node, generation, database, user); pools of a past generation drain and go.',
  examples: ['ogel pools', 'ogel pools --api http://127.0.0.1:7102 --json'],
  async run(ctx, args) {
    const r = await clientFor(ctx, args).proxyPools();
    if (args.bool('json')) {
      printJson(ctx, r);
      return 0;
    }
    const tenants = Object.entries(r.clients.byTenant)
      .map(([t, n]) => `${t} ${n}`)
      .join(', ');
    const lines = [
      `Proxy of ${r.node} (${r.address}), ${r.mode} mode, default pool size ${r.defaultPoolSize}`,
      `Clients: ${r.clients.total} of ${r.clients.maxClientConnections}${tenants ? ` (${tenants})` : ''}`,
    ];
    if (r.pools.length === 0) lines.push('No pools yet: no client has run a transaction through this proxy.');
    else {
      const rows = [...r.pools]
        .sort((a, b) => a.database.localeCompare(b.database) || a.role.localeCompare(b.role) || b.generation - a.generation || a.node.localeCompare(b.node))
        .map((p) => [
          cell(p.database),
          cell(p.role),
          `${p.node}${p.primary ? ' (primary)' : ''}`,
          cell(p.generation),
          cell(p.size),
          cell(p.active),
          cell(p.idle),
          cell(p.connecting),
          cell(p.waiting),
          cell(Math.round(p.maxWaitMs)),
          cell(p.served),
        ]);
      lines.push(
        renderTable(
          [
            { header: 'Database' },
            { header: 'User' },
            { header: 'Server' },
            { header: 'Gen', align: 'right' },
            { header: 'Size', align: 'right' },
            { header: 'Active', align: 'right' },
            { header: 'Idle', align: 'right' },
            { header: 'Opening', align: 'right' },
            { header: 'Waiting', align: 'right' },
            { header: 'Max wait ms', align: 'right' },
            { header: 'Served', align: 'right' },
          ],
          rows,
        ),
      );
    }
    lines.push(COUNTERS.map(([k, label]) => `${label} ${r.counters[k] ?? 0}`).join(', '));
    ctx.io.stdout(lines.join('\n') + '\n');
    return 0;
  },
};
