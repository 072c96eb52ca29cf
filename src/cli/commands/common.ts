// Helpers shared by the API commands.

import { UsageError, type CommandContext, type ParsedArgs } from '../args.js';
import { AdminClient } from '../client.js';
import { discover, type Discovery } from '../discovery.js';

/** `endpointFlag` names the flag with the admin endpoints ('api' except where that name means something else). */
export function clientFor(ctx: CommandContext, args: ParsedArgs, endpointFlag = 'api'): AdminClient {
  const timeoutMs = args.timeoutMs();
  let d: Discovery;
  try {
    d = discover({ apiFlag: args.strings(endpointFlag), tokenFlag: args.string('token'), env: ctx.env, cwd: ctx.cwd });
  } catch (err) {
    if (err instanceof UsageError && err.command === undefined) throw new UsageError(err.message, args.command);
    throw err;
  }
  return new AdminClient({ endpoints: d.endpoints, token: d.token, timeoutMs });
}

/** --json output: the API's JSON, pretty, and nothing else. */
export function printJson(ctx: CommandContext, body: unknown): void {
  ctx.io.stdout(JSON.stringify(body, null, 2) + '\n');
}
