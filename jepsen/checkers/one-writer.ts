// One writer: at no point in real time do two generations (primaries) accept writes.
//
// Input. The writes are the ok operations whose completion carries `generation`:
// the fencing generation the server reported inside the same transaction as the
// write (SELECT generation FROM ogel.generation), or as reported by the proxy.
// Fail and info operations are ignored: we do not know that they committed, nor
// under which generation.
//
// Definition. A write w committed at an unknown real instant c(w) inside its
// observed interval [inv(w), cmp(w)] (the client invoked before the commit and
// learnt of it after). The cluster has one writer iff instants can be chosen with
//     gen(a) < gen(b)  =>  c(a) < c(b)                                      (1)
// i.e. each generation's commits form a period of real time, and the periods are
// disjoint and in generation order: once a newer generation has committed a
// write, no older generation commits another. "Disjoint" alone is not enough:
// generations are issued in increasing order by the control plane, a newer one
// only after the older primary was fenced or declared dead, so an older commit
// after a newer one means the old primary was still writing while the new one
// was — two writers, even if their observed windows happen not to overlap.
//
// What the history can prove. (1) is violated for every choice of instants iff
//     there are writes a, b with gen(a) < gen(b) and inv(a) > cmp(b)         (2)
// (a was invoked after b was acknowledged, so c(a) >= inv(a) > cmp(b) >= c(b)).
// Conversely, without such a pair, put every write w of generation g at
//     c(w) = max(inv(w), M(g))   where M(g) = max inv(a) over writes a older than g.
// Then inv(w) <= c(w) <= cmp(w) (by the absence of (2), M(g) <= cmp(w)), and for
// an older write a, c(a) <= M(g) <= c(w): the order holds (ties only where two
// timestamps are equal, which a clock cannot order; as in the register checker,
// touching intervals count as concurrent and are not reported). So (2) is exact:
// overlapping intervals of different generations are fine whenever the commits
// could have been ordered, and every proven violation is reported.
//
// All pairs of generations are compared, not only neighbours: with g3 write a
// invoked at 10, g5 write b acknowledged at 5 and one long g4 write over [0, 100],
// neither (g3, g4) nor (g4, g5) proves anything, but (g3, g5) does.
// For a pair (g, g'), g < g', it suffices to compare g's latest-invoked write with
// g''s earliest-acknowledged write; the anomaly also counts how many writes of g
// were invoked after that acknowledgement.
//
// Fencing tokens themselves. A generation is issued to one node (the primary of
// that term), so the token is only an order of writers if it names its writer:
//   generation-shared        ok writes of one generation answered by two nodes
//                            (e.g. a promoted standby committing under the old
//                            primary's token before it wrote its own);
//   generation-node-mismatch an ok write whose ogel.generation row (read in the
//                            same transaction, `generationNode`) names another
//                            node than the one that answered;
//   missing-generation       an ok write of a kind in `requireGeneration` with no
//                            generation: the server had no ogel.generation row, so
//                            nothing fences it.
// Writes whose answering node is unknown are not compared by node.

import type { Operation } from '../history/pair.js';
import { AnomalyLog, DEFAULT_MAX_ANOMALIES, opRef, showMs, showOp, type CheckerResult, type Validity } from './types.js';

export interface OneWriterOptions {
  /** Only these f count as writes (default: every ok op carrying a generation). */
  fs?: readonly string[];
  /** Ok ops of these f must carry a generation (the workload's writes); default none. */
  requireGeneration?: readonly string[];
  maxAnomalies?: number;
}

export interface OneWriterStats {
  writes: number;
  generations: number;
  /** Pairs of generations proven to have both accepted writes. */
  violatingPairs: number;
  /** Generations whose writes were answered by more than one node. */
  sharedGenerations: number;
  /** Writes whose generation row names another node than the one that answered. */
  nodeMismatches: number;
  /** Ok writes of a required kind without a generation. */
  missingGeneration: number;
  anomaliesOmitted: number;
}

interface Generation {
  generation: number;
  /** Write with the largest invoke time. */
  latestInvoke: Operation;
  /** Write with the smallest completion time. */
  earliestComplete: Operation;
  /** Invoke times, ascending (for counting). */
  invokeTimesMs: number[];
}

/** Number of elements of ascending `xs` strictly greater than `t`. */
function countAbove(xs: readonly number[], t: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (xs[mid]! > t) hi = mid;
    else lo = mid + 1;
  }
  return xs.length - lo;
}

export function checkOneWriter(ops: readonly Operation[], opts: OneWriterOptions = {}): CheckerResult<OneWriterStats> {
  const log = new AnomalyLog(opts.maxAnomalies ?? DEFAULT_MAX_ANOMALIES);
  const fs = opts.fs === undefined ? undefined : new Set(opts.fs);
  const required = new Set(opts.requireGeneration ?? []);
  const byGen = new Map<number, Generation>();
  /** generation -> answering node -> its first write. */
  const nodesOf = new Map<number, Map<string, Operation>>();
  let writes = 0;
  let nodeMismatches = 0;
  let missingGeneration = 0;
  for (const op of ops) {
    if (op.type !== 'ok') continue;
    const g = op.completion?.generation;
    const node = op.completion?.node;
    if (g === undefined) {
      if (!required.has(op.f)) continue;
      missingGeneration++;
      log.add({
        type: 'missing-generation',
        write: opRef(op),
        message: `write ${showOp(op)} [${showMs(op.invokeTimeMs)}, ${showMs(op.completeTimeMs)}] was acknowledged${node === undefined ? '' : ` by node ${node}`} without a generation: no ogel.generation row fenced it`,
      });
      continue;
    }
    if (fs !== undefined && !fs.has(op.f)) continue;
    writes++;
    const marker = op.completion?.generationNode;
    if (marker !== undefined && node !== undefined && marker !== node) {
      nodeMismatches++;
      log.add({
        type: 'generation-node-mismatch',
        generation: g,
        generationNode: marker,
        write: opRef(op),
        message: `write ${showOp(op)} [${showMs(op.invokeTimeMs)}, ${showMs(op.completeTimeMs)}] was committed by node ${node} under generation ${g}, whose ogel.generation row names node ${marker}`,
      });
    }
    if (node !== undefined) {
      let nodes = nodesOf.get(g);
      if (nodes === undefined) {
        nodes = new Map();
        nodesOf.set(g, nodes);
      }
      if (!nodes.has(node)) nodes.set(node, op);
    }
    const gen = byGen.get(g);
    if (gen === undefined) {
      byGen.set(g, { generation: g, latestInvoke: op, earliestComplete: op, invokeTimesMs: [op.invokeTimeMs] });
      continue;
    }
    if (op.invokeTimeMs > gen.latestInvoke.invokeTimeMs) gen.latestInvoke = op;
    if (op.completeTimeMs! < gen.earliestComplete.completeTimeMs!) gen.earliestComplete = op;
    gen.invokeTimesMs.push(op.invokeTimeMs);
  }
  const gens = [...byGen.values()].sort((a, b) => a.generation - b.generation);
  for (const g of gens) g.invokeTimesMs.sort((a, b) => a - b);

  let violatingPairs = 0;
  // Newer generation first in the outer loop: anomalies read "who wrote after g' started".
  for (let j = 1; j < gens.length; j++) {
    const newer = gens[j]!;
    const b = newer.earliestComplete;
    const ackMs = b.completeTimeMs!;
    for (let i = 0; i < j; i++) {
      const older = gens[i]!;
      const a = older.latestInvoke;
      if (!(a.invokeTimeMs > ackMs)) continue; // (2) fails for every pair of these two generations
      violatingPairs++;
      const after = countAbove(older.invokeTimesMs, ackMs);
      // the written value identifies the write in the database (scalars only: a transfer object would clutter)
      const w = (op: Operation): string => {
        const v = op.invoke.value;
        return showOp(op, typeof v === 'string' || typeof v === 'number' ? v : undefined);
      };
      const node = (op: Operation): string => {
        const n = op.completion?.node ?? op.invoke.node;
        return n === undefined ? '' : ` via node ${n}`;
      };
      log.add({
        type: 'two-writers',
        olderGeneration: older.generation,
        newerGeneration: newer.generation,
        olderWrite: opRef(a),
        newerWrite: opRef(b),
        gapMs: a.invokeTimeMs - ackMs,
        olderWritesAfter: after,
        message:
          `two writers: generation ${older.generation} accepted write ${w(a)}${node(a)}, invoked at ${showMs(a.invokeTimeMs)}, ` +
          `${showMs(a.invokeTimeMs - ackMs)} after generation ${newer.generation} had acknowledged write ${w(b)}${node(b)} at ${showMs(ackMs)}; ` +
          `${after} write(s) of generation ${older.generation} were invoked after that acknowledgement and still succeeded`,
      });
    }
  }
  let sharedGenerations = 0;
  for (const [g, nodes] of [...nodesOf].sort((a, b) => a[0] - b[0])) {
    if (nodes.size < 2) continue;
    sharedGenerations++;
    const names = [...nodes.keys()].sort();
    const firsts = names.map((n) => nodes.get(n)!);
    log.add({
      type: 'generation-shared',
      generation: g,
      nodes: names,
      writes: firsts.map((op) => opRef(op)),
      message: `generation ${g} was used by ${names.length} nodes (${names.join(', ')}): first writes ${firsts.map((op) => `${showOp(op)} on ${op.completion!.node}`).join(', ')}; a fencing token must name one writer`,
    });
  }
  const stats: OneWriterStats = {
    writes,
    generations: gens.length,
    violatingPairs,
    sharedGenerations,
    nodeMismatches,
    missingGeneration,
    anomaliesOmitted: log.omitted,
  };
  const valid: Validity = !(violatingPairs + sharedGenerations + nodeMismatches + missingGeneration > 0);
  return { valid, anomalies: log.list, stats };
}
