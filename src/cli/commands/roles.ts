// Changing who is primary, in the spirit of patronictl: a planned switchover,
// an operator's failover (with --force to accept possible data loss), and
// re-cloning a standby.

import { CliError, UsageError, type CommandContext, type CommandSpec, type ParsedArgs } from '../args.js';
import { SCHEDULED_AT_HINT, parseIsoInstant } from '../../controllers/switchover-schedule.js';
import { describeSchedule } from '../table.js';
import { clientFor, printJson } from './common.js';

export const switchover: CommandSpec = {
  path: ['switchover'],
  summary: 'planned change of primary, no acknowledged write lost; prints the write pause',
  usage: 'switchover [--to NODE] [--scheduled TIME | --cancel] [flags]',
  flags: {
    to: { type: 'string', value: 'NODE', help: 'the standby to promote (default: the most caught-up streaming standby)' },
    scheduled: { type: 'string', value: 'TIME', help: `do it at TIME instead of now: ${SCHEDULED_AT_HINT}` },
    cancel: { type: 'boolean', help: 'cancel the scheduled switchover' },
  },
  positionals: { names: [], min: 0, max: 0 },
  api: true,
  details: [
    'The primary stops taking writes, waits until the target has flushed all of its WAL,',
    'shuts down cleanly and releases its lease; the target is promoted and the old',
    'primary follows it as a standby. Works while paused. Returns once the new',
    'primary takes writes; the write pause is measured on the Raft leader.',
    '',
    'With --scheduled TIME it returns at once: the schedule is kept in the replicated',
    'state, and whichever node is the Raft leader at TIME carries it out (by its own',
    'clock). `ogel status` shows it. One can be scheduled at a time, up to 30 days',
    'ahead; any promotion before TIME (a failover, another switchover) cancels it.',
    'It is dropped, and logged, if it fails, or if no leader could run it within',
    '5 minutes of TIME.',
  ].join('\n'),
  examples: [
    'ogel switchover',
    'ogel switchover --to n2 --json',
    'ogel switchover --to n2 --scheduled 2026-11-21T10:00:00Z',
    'ogel switchover --scheduled 2026-11-21T11:00:00+01:00 --json',
    'ogel switchover --cancel',
  ],
  async run(ctx, args) {
    const to = args.nonEmpty('to');
    const scheduled = args.string('scheduled');
    if (args.bool('cancel')) {
      if (to !== undefined || scheduled !== undefined)
        throw new UsageError('--cancel takes neither --to nor --scheduled: it cancels the one scheduled switchover', args.command);
      const r = await clientFor(ctx, args).cancelScheduledSwitchover();
      if (args.bool('json')) printJson(ctx, r);
      else ctx.io.stdout(r.cancelled ? 'scheduled switchover cancelled\n' : 'no switchover was scheduled; nothing to cancel\n');
      return 0;
    }
    if (scheduled !== undefined) {
      // Only the format here: whether TIME is too far in the past or ahead is decided
      // by the daemon's clock, which runs it, not this machine's.
      const at = parseIsoInstant(scheduled);
      if (typeof at !== 'number') throw new UsageError(`--scheduled ${at.error}; expected ${SCHEDULED_AT_HINT}`, args.command);
      const r = await clientFor(ctx, args).scheduleSwitchover({ to, scheduledAt: scheduled });
      if (args.bool('json')) printJson(ctx, r);
      else ctx.io.stdout(`switchover scheduled ${describeSchedule(r.scheduled, Date.now())}; cancel it with: ogel switchover --cancel\n`);
      return 0;
    }
    const r = await clientFor(ctx, args).switchover(to);
    if (args.bool('json')) printJson(ctx, r);
    else {
      const d = r.stepDown;
      const phases = d
        ? ` (stop writes ${d.readOnlyMs} ms, drain ${d.drainMs} ms, catch-up ${d.catchUpMs} ms, clean shutdown ${d.shutdownMs} ms, release ${d.releaseMs} ms)`
        : '';
      ctx.io.stdout(`switchover ${r.from} -> ${r.to}: generation ${r.generation}, write pause ${r.pauseMs} ms${phases}\n`);
    }
    return 0;
  },
};

export const failover: CommandSpec = {
  path: ['failover'],
  summary: 'promote a standby when the primary is down (works while paused)',
  usage: 'failover [--to NODE] [--force [--yes]] [flags]',
  flags: {
    to: { type: 'string', value: 'NODE', help: 'the standby to promote (default: the most advanced reachable one)' },
    force: { type: 'boolean', help: 'promote even when an acknowledged write may be lost (an unreachable standby may hold it)' },
    yes: { type: 'boolean', short: 'y', help: 'do not ask to confirm --force (required when stdin is not a terminal)' },
  },
  positionals: { names: [], min: 0, max: 0 },
  api: true,
  details: [
    "Only when the primary's lease has lapsed: a live primary is never doubled (use",
    'switchover for planned changes). Without --force it refuses when the old primary',
    'and a standby are both unreachable, because the latest acknowledged commit may',
    'exist only on that standby, and it refuses a --to node behind another standby.',
    '--force accepts losing those writes.',
  ].join('\n'),
  examples: ['ogel failover', 'ogel failover --to n2', 'ogel failover --force --to n2 --yes'],
  async run(ctx, args) {
    const force = args.bool('force');
    const to = args.nonEmpty('to');
    if (force) {
      if (to === undefined) throw new UsageError('--force needs --to NODE: name the node whose data wins', args.command);
      ctx.io.stderr(`WARNING: --force promotes ${to} even if another standby holds acknowledged writes that ${to} lacks; those writes would be lost.\n`);
      await confirm(ctx, args, `Type the node name (${to}) to accept that risk: `, to);
    }
    const r = await clientFor(ctx, args).failover({ to, force });
    if (args.bool('json')) printJson(ctx, r);
    else ctx.io.stdout(`failover ${r.from ?? '(none)'} -> ${r.to}: generation ${r.generation}${r.forced ? ' (forced)' : ''}, took ${r.durationMs} ms\n`);
    return 0;
  },
};

export const reinit: CommandSpec = {
  path: ['reinit'],
  summary: 're-clone a standby from the primary (its data dir is kept as <dir>.previous)',
  usage: 'reinit NODE [--yes] [flags]',
  flags: {
    yes: { type: 'boolean', short: 'y', help: 'do not ask for confirmation (required when stdin is not a terminal)' },
  },
  positionals: { names: ['NODE'], min: 1, max: 1 },
  api: true,
  details:
    "The node's agent stops its Postgres, moves the data directory aside, takes a fresh\nbase backup from the primary and streams again. Refused for the primary.",
  examples: ['ogel reinit n3', 'ogel reinit n3 --yes --json'],
  async run(ctx, args) {
    const node = args.positionals[0]!;
    await confirm(ctx, args, `Re-clone ${node} from the primary? Its current data directory is moved aside.\nType the node name to confirm: `, node);
    const r = await clientFor(ctx, args).reinit(node);
    if (args.bool('json')) printJson(ctx, r);
    else ctx.io.stdout(`${r.node} is re-cloning from the primary (generation ${r.generation}); follow it with ogel status\n`);
    return 0;
  },
};

async function confirm(ctx: CommandContext, args: ParsedArgs, question: string, expected: string): Promise<void> {
  if (args.bool('yes')) return;
  if (!ctx.io.stdinIsTTY) throw new UsageError(`refusing without confirmation: stdin is not a terminal; pass --yes`, args.command);
  const answer = await ctx.io.prompt(question);
  if (answer?.trim() !== expected) throw new CliError('not confirmed; nothing was done');
}
