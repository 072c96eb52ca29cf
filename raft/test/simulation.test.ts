// The deterministic simulation inside `npm test`: a few hundred seeds across every
// scenario must pass, and every deliberately broken build must be caught.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runSimulation } from '../sim/simulation.js';
import { SCENARIOS, scenarioOptions, UNSAFE_VARIANTS, variantOptions } from '../sim/variants.js';

const SEEDS_PER_SCENARIO = 75;
/** A broken build must be caught within this many seeds of its scenario. */
const SEEDS_TO_CATCH_MAX = 200;

describe('simulation: the correct build', () => {
  for (const scenario of Object.keys(SCENARIOS)) {
    it(`passes ${SEEDS_PER_SCENARIO} seeds of scenario '${scenario}'`, () => {
      for (let seed = 1; seed <= SEEDS_PER_SCENARIO; seed++) {
        const r = runSimulation(scenarioOptions(seed, scenario));
        assert.ok(r.ok, `seed ${seed} failed: ${r.failure}\nreplay: npm run sim -- --seed ${seed} --scenario ${scenario} --verbose`);
        assert.ok(r.okOps > 0, `seed ${seed}: no client operation completed, so nothing was checked`);
      }
    });
  }

  it('replays a seed exactly', () => {
    const a = runSimulation(scenarioOptions(7, 'default'));
    const b = runSimulation(scenarioOptions(7, 'default'));
    assert.deepEqual(a, b);
  });
});

describe('simulation: deliberately broken builds are caught', () => {
  for (const [name, variant] of Object.entries(UNSAFE_VARIANTS)) {
    it(`catches '${name}' (${variant.description})`, () => {
      for (let seed = 1; seed <= SEEDS_TO_CATCH_MAX; seed++) {
        const r = runSimulation(variantOptions(seed, name));
        if (!r.ok) {
          assert.match(r.failure ?? '', /election safety|log matching|leader completeness|state-machine safety|linearizability/);
          return;
        }
      }
      assert.fail(`broken build '${name}' passed ${SEEDS_TO_CATCH_MAX} seeds of scenario '${variant.scenario}'`);
    });
  }
});
