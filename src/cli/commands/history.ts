import type { CommandSpec } from '../args.js';
import { cell, formatTime, renderTable } from '../table.js';
import { clientFor, printJson } from './common.js';

export const history: CommandSpec = {
  path: ['history'],
  summary: 'list promotions: generation, node, reason, LSN, time (like patronictl history)',
  usage: 'history [flags]',
  flags: {},
  positionals: { names: [], min: 0, max: 0 },
  api: true,
  examples: ['ogel history', 'ogel history --json'],
  async run(ctx, args) {
    const client = clientFor(ctx, args);
    const r = await client.history();
    if (args.bool('json')) {
      printJson(ctx, r);
      return 0;
    }
    if (r.history.length === 0) {
      ctx.io.stdout('No promotions yet.\n');
      return 0;
    }
    const rows = [...r.history]
      .sort((a, b) => a.generation - b.generation)
      .map((h) => [cell(h.generation), cell(h.node), cell(h.reason), cell(h.lsn), formatTime(h.atMs)]);
    ctx.io.stdout(
      renderTable([{ header: 'Generation', align: 'right' }, { header: 'Node' }, { header: 'Reason' }, { header: 'LSN' }, { header: 'Time (UTC)' }], rows) +
        '\n',
    );
    return 0;
  },
};
