// `ogel pause` and `ogel resume`, with --wait: poll every node's local state
// (GET /v1/status?stale=true on each) until each reports the maintenance flag.

import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { CliError, type CommandContext, type CommandSpec, type ParsedArgs } from '../args.js';
import { UnreachableError, describeClientError, type AdminClient } from '../client.js';
import { clientFor, printJson } from './common.js';

const POLL_INTERVAL_MS = 100;
const POLL_REQUEST_TIMEOUT_MS_MAX = 1000;
const WAIT_TARGETS_MAX = 64;

/** The URL of a member's advertised API address; wildcard binds mean this host. */
export function memberApiUrl(address: string, protocol: string): string {
  const a = address
    .replace(/^0\.0\.0\.0:/, '127.0.0.1:')
    .replace(/^\[::\]:/, '[::1]:')
    .replace(/^:::/, '[::1]:');
  return `${protocol}//${a}`;
}

/**
 * Waits until every member reports maintenance.paused === want from its own
 * state. Throws CliError naming the nodes that did not, once deadlineMs passes.
 */
export async function waitForMaintenance(client: AdminClient, want: boolean, budgetMs: number): Promise<{ nodes: string[]; elapsedMs: number }> {
  const start = performance.now();
  const deadline = start + budgetMs;
  const status = await client.status();
  const memberIds = status.members.map((m) => m.id);
  const protocol = new URL(client.endpoints[0] ?? 'http://x').protocol;
  const urls: string[] = [];
  for (const u of [...client.endpoints, ...status.members.flatMap((m) => (m.addresses === null ? [] : [memberApiUrl(m.addresses.api, protocol)]))]) {
    if (!urls.includes(u) && urls.length < WAIT_TARGETS_MAX) urls.push(u);
  }
  const nodeOfUrl = new Map<string, string>();
  const confirmed = new Set<string>();
  const lastSeen = new Map<string, boolean>();
  const problems = new Map<string, string>();
  for (;;) {
    const pending = urls.filter((u) => {
      const node = nodeOfUrl.get(u);
      return node === undefined || !confirmed.has(node);
    });
    const remaining = deadline - performance.now();
    const timeoutMs = Math.max(1, Math.min(POLL_REQUEST_TIMEOUT_MS_MAX, Math.ceil(remaining)));
    await Promise.all(
      pending.map(async (url) => {
        try {
          const s = await client.status({ stale: true, endpoint: url, timeoutMs });
          nodeOfUrl.set(url, s.node);
          lastSeen.set(s.node, s.maintenance.paused);
          problems.delete(url);
          if (s.maintenance.paused === want) confirmed.add(s.node);
        } catch (err) {
          const why = err instanceof UnreachableError ? (err.failures[0]?.reason ?? 'no answer') : (describeClientError(err)?.message ?? String(err));
          problems.set(url, `${url}: ${why}`);
        }
      }),
    );
    if (memberIds.every((id) => confirmed.has(id))) {
      return { nodes: memberIds, elapsedMs: Math.round(performance.now() - start) };
    }
    if (performance.now() >= deadline) {
      const flag = want ? 'on' : 'off';
      const missing = memberIds
        .filter((id) => !confirmed.has(id))
        .map((id) => {
          if (lastSeen.has(id)) return `${id} (still reports ${want ? 'off' : 'on'})`;
          const url = memberApiUrl(status.members.find((m) => m.id === id)?.addresses?.api ?? '?', protocol);
          return `${id} (${problems.get(url) ?? 'no answer'})`;
        });
      throw new CliError(
        `timed out after ${budgetMs} ms waiting for every node to report maintenance mode ${flag}: ${missing.join(', ')}`,
        'the change is committed; a node that is down applies it when it catches up. Pass --timeout-ms to wait longer',
      );
    }
    await sleep(Math.min(POLL_INTERVAL_MS, Math.max(0, deadline - performance.now())));
  }
}

async function finish(ctx: CommandContext, args: ParsedArgs, client: AdminClient, body: unknown, want: boolean, line: string): Promise<number> {
  if (!args.bool('json')) ctx.io.stdout(line + '\n');
  if (args.bool('wait')) {
    const r = await waitForMaintenance(client, want, args.timeoutMs());
    if (!args.bool('json'))
      ctx.io.stdout(`All ${r.nodes.length} nodes (${r.nodes.join(', ')}) report maintenance mode ${want ? 'on' : 'off'} (waited ${r.elapsedMs} ms)\n`);
  }
  if (args.bool('json')) printJson(ctx, body);
  return 0;
}

export const pause: CommandSpec = {
  path: ['pause'],
  summary: 'enter maintenance mode: no automatic failover until resume',
  usage: 'pause [--reason TEXT] [--wait] [flags]',
  flags: {
    reason: { type: 'string', value: 'TEXT', help: "why, shown in 'ogel status'" },
    wait: { type: 'boolean', help: 'wait until every node reports the flag (up to --timeout-ms)' },
  },
  positionals: { names: [], min: 0, max: 0 },
  api: true,
  examples: ['ogel pause --reason "kernel upgrade on n2" --wait', 'ogel pause --json'],
  async run(ctx, args) {
    const reason = args.nonEmpty('reason');
    const client = clientFor(ctx, args);
    const r = await client.pause(reason);
    const why = r.reason ?? reason;
    return finish(ctx, args, client, r, true, `Maintenance mode: on${why ? ` (${why})` : ''}`);
  },
};

export const resume: CommandSpec = {
  path: ['resume'],
  summary: 'leave maintenance mode: automatic failover runs again',
  usage: 'resume [--wait] [flags]',
  flags: {
    wait: { type: 'boolean', help: 'wait until every node reports the flag cleared (up to --timeout-ms)' },
  },
  positionals: { names: [], min: 0, max: 0 },
  api: true,
  examples: ['ogel resume --wait'],
  async run(ctx, args) {
    const client = clientFor(ctx, args);
    const r = await client.resume();
    return finish(ctx, args, client, r, false, 'Maintenance mode: off');
  },
};
