// npm run sim -- [--seeds N] [--seed S] [--scenario NAME] [--unsafe NAME] [--verbose]
// Runs seeded simulations. Unless --scenario is given, seed S runs scenario
// number S mod (number of scenarios), so a range of seeds covers every scenario and
// --seed S alone replays a run exactly. The last line is "N seeds passed" or names
// the failing seed; the exit code tells.

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { replayCommand, runSimulation, type SimOptions } from './simulation.js';
import { SCENARIOS, scenarioOptions, UNSAFE_VARIANTS } from './variants.js';

const SCENARIO_NAMES = Object.keys(SCENARIOS);

function usage(msg?: string): never {
  if (msg) console.error(`sim: ${msg}`);
  console.error(
    [
      'usage: npm run sim -- [--seeds N] [--first S] [--seed S] [--scenario NAME] [--unsafe NAME] [--verbose]',
      '  --seeds N        run N seeds (default 100), starting at --first (default 1)',
      '  --seed S         run only seed S (replays a failure exactly)',
      `  --scenario NAME  fault mix for every seed: ${SCENARIO_NAMES.join(', ')}`,
      '                   (default: seed S uses scenario S mod ' + SCENARIO_NAMES.length + ')',
      `  --unsafe NAME    a deliberately broken build, in the scenario that provokes it: ${Object.keys(UNSAFE_VARIANTS).join(', ')}`,
      '  --verbose        print each fault and a status line every 500 virtual ms',
    ].join('\n'),
  );
  process.exit(2);
}

function intArg(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) usage(`--${name} must be a non-negative integer, got '${v}'`);
  return n;
}

const argSpec = {
  options: {
    seeds: { type: 'string' },
    seed: { type: 'string' },
    first: { type: 'string' },
    scenario: { type: 'string' },
    unsafe: { type: 'string' },
    verbose: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
} satisfies ParseArgsConfig;
let args: ReturnType<typeof parseArgs<typeof argSpec>>['values'];
try {
  args = parseArgs(argSpec).values;
} catch (e) {
  usage((e as Error).message);
}
if (args.help) usage();
if (args.unsafe !== undefined && !(args.unsafe in UNSAFE_VARIANTS)) usage(`unknown --unsafe '${args.unsafe}'`);
if (args.scenario !== undefined && !(args.scenario in SCENARIOS)) usage(`unknown --scenario '${args.scenario}'`);

const variant = args.unsafe ? UNSAFE_VARIANTS[args.unsafe] : undefined;
const single = args.seed !== undefined ? intArg('seed', args.seed, 1) : undefined;
const count = single !== undefined ? 1 : intArg('seeds', args.seeds, 100);
const first = single ?? intArg('first', args.first, 1);
const fixedScenario = args.scenario ?? variant?.scenario;
let flags = '';
if (args.scenario) flags += ` --scenario ${args.scenario}`;
if (args.unsafe) flags += ` --unsafe ${args.unsafe}`;

const started = Date.now();
let passed = 0;
for (let seed = first; seed < first + count; seed++) {
  const scenario = fixedScenario ?? SCENARIO_NAMES[seed % SCENARIO_NAMES.length]!;
  let opts: SimOptions = scenarioOptions(seed, scenario);
  if (variant) opts = variant.apply(opts);
  if (args.verbose) opts.trace = (line) => console.log(`  ${line}`);
  const r = runSimulation(opts);
  if (!r.ok) {
    console.log(`seed ${seed} (${scenario}) FAILED after ${r.virtualMs} virtual ms: ${r.failure}`);
    console.log(`replay: ${replayCommand(seed, flags)} --verbose`);
    console.log(`${passed} seeds passed, seed ${seed} failed`);
    process.exit(1);
  }
  passed++;
  if (count <= 20 || args.verbose) {
    console.log(
      `seed ${seed} (${scenario}) ok: ${r.ops} ops (${r.okOps} ok, ${r.infoOps} info), ${r.committed} committed, ${r.faults} faults, ${r.messages} messages`,
    );
  } else if (passed % 250 === 0) {
    console.log(`${passed}/${count} seeds ok (${((Date.now() - started) / 1000).toFixed(1)}s)`);
  }
}
console.log(`${passed} seeds passed in ${((Date.now() - started) / 1000).toFixed(1)}s`);
