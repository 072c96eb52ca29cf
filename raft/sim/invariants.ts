// The Raft safety properties (paper Figure 3), checked after every simulation step:
//  - Election safety: at most one leader per term.
//  - Log matching: two logs holding an entry with the same index and term are
//    identical up to it.
//  - Leader completeness: a leader holds every entry committed in earlier terms.
//  - State-machine safety: no two nodes apply different entries at one index.

import type { Entry, NodeId } from '../src/core/types.js';
import type { SimNode } from './sim-node.js';

export class InvariantViolation extends Error {
  constructor(
    readonly property: string,
    detail: string,
  ) {
    super(`${property}: ${detail}`);
    this.name = 'InvariantViolation';
  }
}

function sameEntry(a: Entry, b: Entry): boolean {
  return a.term === b.term && a.type === b.type && Buffer.compare(Buffer.from(a.data), Buffer.from(b.data)) === 0;
}

export class SafetyChecker {
  private readonly leaderOfTerm = new Map<number, NodeId>();
  /** Entries known committed (applied somewhere), by index. */
  private readonly committed = new Map<number, Entry>();
  /**
   * Per committed index: an upper bound on the term in which it was committed (the
   * highest term any node held when it was first applied). Leader completeness
   * constrains only leaders of higher terms than the commit: a stale leader, or one
   * crowned by a late vote, may lack an entry committed in a later term.
   */
  private readonly commitTermBound = new Map<number, number>();
  private maxCommitted = 0;

  constructor(private readonly nodes: () => readonly SimNode[]) {}

  onBecameLeader(node: SimNode, term: number): void {
    const prev = this.leaderOfTerm.get(term);
    if (prev !== undefined && prev !== node.id) {
      throw new InvariantViolation('election safety', `term ${term} has two leaders: ${prev} and ${node.id}`);
    }
    this.leaderOfTerm.set(term, node.id);
    // Leader completeness: every entry committed so far must be in the new leader's log.
    const first = node.firstIndex();
    for (let i = Math.max(first, 1); i <= this.maxCommitted; i++) {
      const c = this.committed.get(i);
      if (!c || this.commitTermBound.get(i)! >= term) continue;
      const e = node.entryAt(i);
      if (!e || !sameEntry(e, c)) {
        throw new InvariantViolation(
          'leader completeness',
          `${node.id} became leader of term ${term} without committed entry ${i} (term ${c.term}); it has ${e ? `term ${e.term}` : 'nothing'}`,
        );
      }
    }
  }

  onApply(node: SimNode, entry: Entry): void {
    const c = this.committed.get(entry.index);
    if (c === undefined) {
      this.committed.set(entry.index, entry);
      this.maxCommitted = Math.max(this.maxCommitted, entry.index);
      let maxTerm = 0;
      for (const n of this.nodes()) maxTerm = Math.max(maxTerm, n.raw?.raft.term ?? n.storage.hardState().term);
      this.commitTermBound.set(entry.index, maxTerm);
      return;
    }
    if (!sameEntry(c, entry)) {
      throw new InvariantViolation(
        'state-machine safety',
        `${node.id} applied term ${entry.term} at index ${entry.index}, another node applied term ${c.term}`,
      );
    }
  }

  /** Log matching between a node whose log changed from `fromIndex` and every other node. */
  checkLogMatching(changed: SimNode, fromIndex: number): void {
    for (const other of this.nodes()) {
      if (other === changed) continue;
      const lo = Math.max(fromIndex, changed.firstIndex(), other.firstIndex(), 1);
      const hi = Math.min(changed.lastIndex(), other.lastIndex());
      // Scan down from the top: at the highest index where the terms agree, every
      // entry at or below it (in the range that changed) must agree too.
      let top = -1;
      for (let i = hi; i >= lo; i--) {
        const a = changed.termAt(i);
        if (a !== undefined && a === other.termAt(i)) {
          top = i;
          break;
        }
      }
      for (let i = lo; i <= top; i++) {
        const a = changed.entryAt(i);
        const b = other.entryAt(i);
        if (a && b && !sameEntry(a, b)) {
          throw new InvariantViolation(
            'log matching',
            `${changed.id} and ${other.id} agree on (index ${top}, term ${changed.termAt(top)}) but differ at index ${i} (terms ${a.term} and ${b.term})`,
          );
        }
      }
    }
  }

  committedCount(): number {
    return this.committed.size;
  }
}
