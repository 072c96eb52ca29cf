// One-writer checker: overlapping intervals of different generations are fine
// when the commits could be ordered by generation, and an anomaly exactly when an
// older generation's write was invoked after a newer generation's write was
// acknowledged. Both directions are tested by hand and against a brute-force
// search for commit points.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkOneWriter, type OneWriterOptions } from '../checkers/one-writer.js';
import type { TwoWritersAnomaly } from '../checkers/types.js';
import type { CompletionType } from '../history/types.js';
import { assignProcesses, ops, type Spec } from './checkers-helpers.js';

let nextValue = 0;
const write = (p: number, generation: number, t: readonly [number, number | null], type: CompletionType = 'ok', node?: string): Spec => {
  const s: Spec = { p, f: 'add', arg: nextValue++, t, type, generation };
  if (node !== undefined) s.node = node;
  return s;
};
const run = (specs: Spec[], opts?: OneWriterOptions) => checkOneWriter(ops(specs), opts);
const twoWriters = (specs: Spec[]): TwoWritersAnomaly[] => {
  const r = run(specs);
  assert.equal(r.valid, false);
  return r.anomalies.map((a) => {
    assert.ok(a.type === 'two-writers');
    return a;
  });
};

describe('one-writer checker', () => {
  it('accepts the empty history, histories without generations, and one generation', () => {
    assert.equal(run([]).valid, true);
    assert.equal(run([{ p: 0, f: 'add', arg: 1, t: [0, 1] }]).stats.writes, 0);
    const r = run([write(0, 7, [0, 10]), write(1, 7, [1, 2]), write(2, 7, [20, 30])]);
    assert.equal(r.valid, true);
    assert.deepEqual(r.stats, {
      writes: 3,
      generations: 1,
      violatingPairs: 0,
      sharedGenerations: 0,
      nodeMismatches: 0,
      missingGeneration: 0,
      anomaliesOmitted: 0,
    });
  });

  it('accepts generations one after the other', () => {
    assert.equal(run([write(0, 1, [0, 1]), write(0, 1, [2, 3]), write(1, 2, [4, 5]), write(0, 3, [6, 7])]).valid, true);
  });

  it('accepts overlapping intervals of different generations when the commits can be ordered (both ways round)', () => {
    // the older write's interval contains the newer one's: commit older early, newer late
    assert.equal(run([write(0, 1, [0, 10]), write(1, 2, [2, 8])]).valid, true);
    // the newer write's interval contains the older one's
    assert.equal(run([write(0, 2, [0, 10]), write(1, 1, [2, 8])]).valid, true);
    // newer acknowledged before older completed, but the older was invoked before that acknowledgement
    assert.equal(run([write(0, 1, [0, 10]), write(1, 2, [1, 5])]).valid, true);
    // touching: older invoked at the very instant the newer was acknowledged (a clock tie proves no order)
    assert.equal(run([write(1, 2, [0, 5]), write(0, 1, [5, 6])]).valid, true);
  });

  it('reports an older generation writing after a newer one acknowledged a write', () => {
    const [a, ...rest] = twoWriters([write(1, 2, [0, 5], 'ok', 'n2'), write(0, 1, [6, 7], 'ok', 'n1'), write(0, 1, [8, 9]), write(2, 1, [1, 3])]);
    assert.equal(rest.length, 0);
    assert.equal(a!.olderGeneration, 1);
    assert.equal(a!.newerGeneration, 2);
    assert.equal(a!.newerWrite.index, 0);
    assert.equal(a!.olderWrite.index, 6); // the latest-invoked write of generation 1 (invoke event #6, at 8)
    assert.equal(a!.gapMs, 3);
    assert.equal(a!.olderWritesAfter, 2); // the writes invoked at 6 and 8; not the one at 1
    assert.match(
      a!.message,
      /generation 1 accepted write #6 p0 add \d+, invoked at 8 ms, 3 ms after generation 2 had acknowledged write #0 p1 add \d+ via node n2 at 5 ms/,
    );
  });

  it('compares every pair of generations, not only neighbours', () => {
    // g3 invoked at 10 after g5 acknowledged at 5; one long g4 write hides it from (g3,g4) and (g4,g5)
    const [a, ...rest] = twoWriters([write(0, 4, [0, 100]), write(1, 5, [1, 5]), write(2, 3, [10, 11])]);
    assert.equal(rest.length, 0);
    assert.deepEqual([a!.olderGeneration, a!.newerGeneration], [3, 5]);
  });

  it('ignores failed and indeterminate writes, and ops outside `fs`', () => {
    const specs = [write(1, 2, [0, 5]), write(0, 1, [6, 7], 'info'), write(2, 1, [6, 7], 'fail'), write(3, 1, [6, null])];
    assert.equal(run(specs).valid, true);
    const other: Spec = { p: 4, f: 'read', res: [], t: [8, 9], generation: 1 };
    assert.equal(run([...specs, other]).valid, false);
    assert.equal(run([...specs, other], { fs: ['add'] }).valid, true);
  });
});

// ---------------------------------------------------------------------------
// Fencing tokens: a generation is issued to one node. A write whose ogel.generation
// row names another node, a write with no row, and one generation reported by
// two nodes are anomalies, not notes.

describe('one-writer checker: fencing tokens', () => {
  const at = (p: number, generation: number, node: string, t: readonly [number, number], generationNode: string | undefined = node): Spec => {
    const s: Spec = { ...write(p, generation, t, 'ok', node) };
    if (generationNode !== undefined) s.generationNode = generationNode;
    return s;
  };

  it('reports one generation whose writes were answered by two nodes', () => {
    const r = run([at(0, 5, 'n1', [0, 1]), at(1, 5, 'n2', [2, 3]), at(0, 5, 'n1', [4, 5])]);
    assert.equal(r.valid, false);
    assert.deepEqual(
      r.anomalies.map((a) => a.type),
      ['generation-shared'],
    );
    const a = r.anomalies[0]!;
    assert.ok(a.type === 'generation-shared');
    assert.equal(a.generation, 5);
    assert.deepEqual(a.nodes, ['n1', 'n2']);
    assert.equal(a.writes.length, 2); // one write per node
    assert.equal(r.stats.sharedGenerations, 1);
  });

  it('reports a write whose ogel.generation row names another node', () => {
    const r = run([at(0, 5, 'n1', [0, 1], 'n2')]);
    assert.equal(r.valid, false);
    const a = r.anomalies[0]!;
    assert.ok(a.type === 'generation-node-mismatch');
    assert.equal(a.generation, 5);
    assert.equal(a.generationNode, 'n2');
    assert.equal(a.write.node, 'n1');
    assert.equal(r.stats.nodeMismatches, 1);
  });

  it('reports an acknowledged write of a required kind that carries no generation', () => {
    const specs: Spec[] = [at(0, 5, 'n1', [0, 1]), { p: 1, f: 'add', arg: 'x', t: [2, 3], node: 'n1' }];
    const r = run(specs, { requireGeneration: ['add'] });
    assert.equal(r.valid, false);
    const a = r.anomalies[0]!;
    assert.ok(a.type === 'missing-generation');
    assert.equal(a.write.index, 2);
    assert.equal(r.stats.missingGeneration, 1);
    // without the requirement it is not a write the checker knows of
    assert.equal(run(specs).valid, true);
  });

  it('accepts one node per generation, failed and indeterminate writes without generation, reads without one', () => {
    const r = run(
      [
        at(0, 5, 'n1', [0, 1]),
        at(0, 5, 'n1', [2, 3]),
        at(1, 6, 'n2', [4, 5]),
        { p: 2, f: 'add', arg: 'f', t: [4, 5], type: 'fail', node: 'n3' },
        { p: 3, f: 'add', arg: 'i', t: [4, 5], type: 'info' },
        { p: 4, f: 'read', res: [], t: [6, 7], node: 'n3' },
      ],
      { requireGeneration: ['add'], fs: ['add'] },
    );
    assert.equal(r.valid, true, JSON.stringify(r.anomalies));
  });
});

// ---------------------------------------------------------------------------
// Properties

interface GenWrite {
  generation: number;
  inv: number;
  len: number;
}
const genWrite: fc.Arbitrary<GenWrite> = fc.record({
  generation: fc.integer({ min: 1, max: 3 }),
  inv: fc.integer({ min: 0, max: 20 }),
  len: fc.integer({ min: 0, max: 4 }),
});

const toSpecs = (ws: readonly GenWrite[]): Spec[] =>
  assignProcesses(ws.map((w) => ({ inv: w.inv, cmp: w.inv + w.len, w }))).map(({ p, w }) => write(p, w.generation, [w.inv, w.inv + w.len]));

/** Brute force: integer commit points c(w) in [inv, inv + len] with gen(a) < gen(b) => c(a) <= c(b) (ties: clocks cannot order). */
function commitPointsExist(ws: readonly GenWrite[]): boolean {
  const c: number[] = [];
  const dfs = (k: number): boolean => {
    if (k === ws.length) return true;
    const w = ws[k]!;
    for (let t = w.inv; t <= w.inv + w.len; t++) {
      const fits = c.every((ct, j) => {
        const g = ws[j]!.generation;
        return g === w.generation || (g < w.generation ? ct <= t : ct >= t);
      });
      if (!fits) continue;
      c.push(t);
      if (dfs(k + 1)) return true;
      c.pop();
    }
    return false;
  };
  return dfs(0);
}

describe('one-writer checker: properties', () => {
  it('agrees with a brute-force search for commit points (both verdicts occur)', () => {
    const seen = { valid: 0, invalid: 0 };
    fc.assert(
      fc.property(fc.array(genWrite, { maxLength: 7 }), (ws) => {
        const r = run(toSpecs(ws));
        assert.equal(r.valid, commitPointsExist(ws));
        seen[r.valid === true ? 'valid' : 'invalid']++;
      }),
      { numRuns: 500 },
    );
    assert.ok(seen.valid > 50 && seen.invalid > 50, JSON.stringify(seen));
  });

  it('generations with disjoint, ordered write periods are valid, however wide the client windows', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            gen: fc.integer({ min: 1, max: 5 }),
            at: fc.integer({ min: 0, max: 80 }),
            before: fc.integer({ min: 0, max: 300 }),
            after: fc.integer({ min: 0, max: 300 }),
          }),
          {
            maxLength: 50,
          },
        ),
        (ws) => {
          // generation g commits only within [100 g, 100 g + 80]
          const items = ws.map((w) => {
            const commit = 100 * w.gen + w.at;
            return { inv: commit - w.before, cmp: commit + w.after, gen: w.gen };
          });
          const specs = assignProcesses(items).map(({ p, inv, cmp, gen }) => write(p, gen, [inv, cmp]));
          assert.equal(run(specs).valid, true);
        },
      ),
      { numRuns: 200 },
    );
  });
});
