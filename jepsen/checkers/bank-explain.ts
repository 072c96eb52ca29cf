// Can a bank read be explained by the transfers? The read's balances must equal
// a base (opening balances plus the transfers certainly applied before it) plus
// the effect of SOME subset of the transfers that may have been applied. That
// is a subset-sum over vectors (one coordinate per account), NP-hard in
// general, so the search is bounded and may answer 'unknown'.
//
// The search: a breadth-first walk over transfer kinds (identical transfers —
// same from, to, amount — are one kind taken 0..k times), keeping the set of
// distinct residual vectors (what is still to be explained). Distinct subsets
// with the same effect collapse into one residual, so the work is bounded by
// the number of distinct residuals, not by 2^n. A residual is dropped when the
// remaining kinds cannot reach it in some account (their least and greatest
// possible contributions bound every coordinate). Exact: the answer is
// 'explained' iff the zero vector is reached; 'unknown' only when the number of
// residuals generated exceeds the budget.

export interface TransferEffect {
  /** Account indices (into the read's account order). */
  from: number;
  to: number;
  amount: number;
}

export type Explanation = { kind: 'explained'; states: number } | { kind: 'unexplained'; states: number } | { kind: 'unknown'; states: number };

interface Kind {
  from: number;
  to: number;
  amount: number;
  count: number;
}

/** Groups identical transfers; drops the ones that change nothing (from = to). */
function kindsOf(transfers: readonly TransferEffect[]): Kind[] {
  const byId = new Map<string, Kind>();
  for (const t of transfers) {
    if (t.from === t.to || t.amount === 0) continue;
    const id = `${t.from}:${t.to}:${t.amount}`;
    const k = byId.get(id);
    if (k === undefined) byId.set(id, { from: t.from, to: t.to, amount: t.amount, count: 1 });
    else k.count++;
  }
  return [...byId.values()];
}

/**
 * Is there a subset of `possible` whose effect is exactly `target` (read - base, per account)?
 * `maxStates` bounds the residual vectors generated over the whole search.
 */
export function explainRead(target: readonly number[], possible: readonly TransferEffect[], maxStates: number): Explanation {
  const n = target.length;
  const kinds = kindsOf(possible);
  // lo[i][a] / hi[i][a]: least / greatest total contribution of kinds i.. to account a.
  const lo: number[][] = Array.from({ length: kinds.length + 1 }, () => new Array<number>(n).fill(0));
  const hi: number[][] = Array.from({ length: kinds.length + 1 }, () => new Array<number>(n).fill(0));
  for (let i = kinds.length - 1; i >= 0; i--) {
    const k = kinds[i]!;
    for (let a = 0; a < n; a++) {
      lo[i]![a] = lo[i + 1]![a]!;
      hi[i]![a] = hi[i + 1]![a]!;
    }
    lo[i]![k.from] = lo[i]![k.from]! - k.amount * k.count;
    hi[i]![k.to] = hi[i]![k.to]! + k.amount * k.count;
  }
  const reachable = (r: readonly number[], i: number): boolean => r.every((v, a) => v >= lo[i]![a]! && v <= hi[i]![a]!);

  let states = 1;
  if (!reachable(target, 0)) return { kind: 'unexplained', states };
  let level = new Map<string, number[]>([[target.join(','), [...target]]]);
  for (let i = 0; i < kinds.length; i++) {
    const k = kinds[i]!;
    const next = new Map<string, number[]>();
    for (const r of level.values()) {
      for (let c = 0; c <= k.count; c++) {
        // taking c copies: the residual loses their effect (from -amount, to +amount each)
        const s = [...r];
        s[k.from] = s[k.from]! + c * k.amount;
        s[k.to] = s[k.to]! - c * k.amount;
        if (!reachable(s, i + 1)) continue;
        const id = s.join(',');
        if (next.has(id)) continue;
        if (++states > maxStates) return { kind: 'unknown', states };
        next.set(id, s);
      }
    }
    level = next;
    if (level.size === 0) return { kind: 'unexplained', states };
  }
  // After the last kind, lo = hi = 0: only the zero vector survives the reachability test.
  return level.size > 0 ? { kind: 'explained', states } : { kind: 'unexplained', states };
}
