import type { CommandSpec } from '../args.js';
import { clientFor, printJson } from './common.js';

export const configShow: CommandSpec = {
  path: ['config', 'show'],
  summary: "print the cluster's effective configuration (secrets redacted)",
  usage: 'config show [flags]',
  flags: {},
  positionals: { names: [], min: 0, max: 0 },
  api: true,
  examples: ['ogel config show', 'ogel config show --api http://127.0.0.1:8002'],
  async run(ctx, args) {
    const client = clientFor(ctx, args);
    const cfg = await client.config();
    // The configuration is a JSON document either way; --json only promises that
    // nothing else is printed, which also holds here.
    printJson(ctx, cfg);
    return 0;
  },
};
