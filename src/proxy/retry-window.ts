// A transaction's retry window (docs/proxy.md, Failover): the client messages
// forwarded since the transaction took its server, and the server's answers
// held back meanwhile, so that the transaction can run again elsewhere while
// the client has seen nothing a rerun could contradict.
//
// Two lifetimes live here, each changed in one place:
// - the window itself (messages, opening, journal, held answers, the fence
//   suspicion of this run): reset() alone clears it, whether the window ends
//   (giveUp), runs again (requeue), is abandoned or a new one opens (open);
// - the transaction's retry across reruns (rerun, preludeMsgs, moveDeadlineMs,
//   fenceSettled): open() keeps it on a rerun and clears it otherwise.

import {
  B_COMMAND_COMPLETE,
  B_READY_FOR_QUERY,
  B_BIND_COMPLETE,
  B_CLOSE_COMPLETE,
  B_NO_DATA,
  B_PARAMETER_DESCRIPTION,
  B_PARAMETER_STATUS,
  B_PARSE_COMPLETE,
} from './protocol/backend.js';
import { F_FUNCTION_CALL, F_QUERY, F_SYNC } from './protocol/frontend.js';
import type { ClientStatements, Statement } from './prepared.js';

/** Client bytes kept for a transparent retry of a transaction's first requests, at most (and as many of answers held back). */
export const REPLAY_BYTES_MAX = 256 * 1024;

// Where a retry window's first batch stands as the transaction's opening: a
// bare BEGIN the client may see answered while the transaction can still move,
// because running it again answers the same.
export const OPENING_CANDIDATE = 0; // nothing but protocol acknowledgements yet
export const OPENING_BEGUN = 1; // exactly one BEGIN completed, nothing else
export const OPENING_ANSWERED = 2; // the opening batch is over and the client has its answer; the window goes on to the next batch
export const OPENING_NONE = 3; // the first batch was something else: the window ends with it

/** CommandComplete tags of statements that do not commit by themselves (in a batch, the commit comes at Sync or COMMIT). */
const PRECOMMIT_TAGS = new Set(['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'MERGE', 'FETCH', 'MOVE', 'BEGIN', 'SET', 'SHOW']);

/** A CommandComplete (buf[start, end)) whose statement does not commit by itself. */
export function isPrecommitTag(buf: Buffer, start: number, end: number): boolean {
  const sp = buf.indexOf(0x20, start + 5); // the tag's first word ends at a space
  const wordEnd = sp >= 0 && sp < end - 1 ? sp : end - 1;
  return PRECOMMIT_TAGS.has(buf.toString('latin1', start + 5, wordEnd));
}

/** CommandComplete of BEGIN or START TRANSACTION (whatever their options): a transaction block opened, nothing else done. */
export function isBeginTag(buf: Buffer, start: number, end: number): boolean {
  const tag = buf.toString('latin1', start + 5, end - 1);
  return tag === 'BEGIN' || tag === 'START TRANSACTION';
}

/** Server messages that say nothing about what a statement did. */
export function isProtocolAck(type: number): boolean {
  return (
    type === B_PARSE_COMPLETE ||
    type === B_BIND_COMPLETE ||
    type === B_CLOSE_COMPLETE ||
    type === B_PARAMETER_DESCRIPTION ||
    type === B_NO_DATA ||
    type === B_PARAMETER_STATUS
  );
}

/** Whether a server message keeps the window's first batch a possible opening (BEGIN's own answers). */
export function keepsOpening(type: number): boolean {
  return type === B_COMMAND_COMPLETE || type === B_READY_FOR_QUERY || isProtocolAck(type);
}

/** Messages of the first batch in `msgs` (up to and including its Query, Sync or FunctionCall). */
export function firstBatchLength(msgs: readonly Buffer[]): number {
  for (let i = 0; i < msgs.length; i++) {
    const t = msgs[i]![0];
    if (t === F_QUERY || t === F_SYNC || t === F_FUNCTION_CALL) return i + 1;
  }
  return msgs.length;
}

export class RetryWindow {
  // --- the window (reset())
  /** The client messages forwarded in the window; null: no window (no retry possible). */
  msgs: Buffer[] | null = null;
  private bytes = 0;
  /** The window's first batch as a possible opening (OPENING_*). */
  opening = OPENING_NONE;
  /** Messages at the head of `msgs` that make the opening the client has already seen answered (0: none). */
  openingMsgs = 0;
  /** What the window changed in the client's statement table ([name, entry before]), undone before it runs again. */
  private journal: [string, Statement | undefined][] | null = null;
  /** Answers held back: the client sees nothing of a batch that may run again. */
  private held: Buffer[] | null = null;
  private heldBytes = 0;
  /**
   * A 25006 in this run of the window on the primary: is the server being
   * fenced? Checked at the batch's ReadyForQuery (or cleared there). It belongs
   * to this run alone: a window that ends, runs again or is abandoned before
   * that ReadyForQuery (a lost server, a Flush) must not pass it to the next
   * transaction, whose committed batch the check would run again.
   */
  fenceSuspect = false;

  // --- the transaction, across its reruns (open())
  /** The next link runs the window again (requeue): keep the transaction's retry state. */
  private rerun = false;
  /** On a rerun, the leading pending messages that re-create the opening: sent first, answers swallowed. */
  preludeMsgs = 0;
  /** A transaction being moved off a fenced server gives up at this time (0: not moving): one bound per transaction, however often it meets the fence. */
  moveDeadlineMs = 0;
  /** This transaction's 25006 was checked and it ran again where it was: a 25006 now is the client's own. */
  fenceSettled = false;

  get isOpen(): boolean {
    return this.msgs !== null;
  }

  /** Clears the window: no messages, no opening, no journal, nothing held, no fence suspected. The one place that does. */
  reset(): void {
    this.msgs = null;
    this.bytes = 0;
    this.opening = OPENING_NONE;
    this.openingMsgs = 0;
    this.journal = null;
    this.held = null;
    this.heldBytes = 0;
    this.fenceSuspect = false;
  }

  /**
   * A transaction took a server: a new window (transaction mode only). A rerun
   * keeps its fence state; anything else starts the transaction's afresh.
   * Nothing is held here: every way out of a window gave its answers away.
   */
  open(enabled: boolean): void {
    this.reset();
    if (enabled) {
      this.msgs = [];
      this.opening = OPENING_CANDIDATE;
    }
    if (this.rerun) this.rerun = false;
    else {
      this.fenceSettled = false;
      this.moveDeadlineMs = 0;
    }
  }

  /** Keeps a forwarded client message; false: past the bound (the caller gives up the retry). */
  record(m: Buffer): boolean {
    this.bytes += m.length;
    if (this.bytes > REPLAY_BYTES_MAX) return false;
    this.msgs!.push(m);
    return true;
  }

  /** Holds an answer back; false: past the bound (the caller gives up the retry). */
  hold(b: Buffer): boolean {
    this.held ??= [];
    this.held.push(b);
    this.heldBytes += b.length;
    return this.heldBytes <= REPLAY_BYTES_MAX;
  }

  /** The answers held so far (the window goes on). */
  takeHeld(): Buffer[] | null {
    const held = this.held;
    this.held = null;
    this.heldBytes = 0;
    return held;
  }

  /** No retry for this transaction any more: the window ends; what was held is the caller's to write. */
  giveUp(): Buffer[] | null {
    const held = this.held;
    this.reset();
    return held;
  }

  /** The window runs again: its messages (for the head of pending), its opening marked as the prelude. */
  requeue(): Buffer[] {
    const msgs = this.msgs ?? [];
    this.preludeMsgs = this.openingMsgs;
    this.rerun = true;
    this.reset();
    return msgs;
  }

  /** A link failed for the rerun: the transaction's next link is a new one. */
  dropRerun(): void {
    this.rerun = false;
  }

  /** Remembers a client statement's entry before the window changes it (undoStatements). */
  note(clientName: string, statements: ClientStatements | null): void {
    if (this.msgs === null) return;
    this.journal ??= [];
    this.journal.push([clientName, statements?.get(clientName)]);
  }

  /** Puts the client's statement table back as it was when the window began: its Parse and Close run again. */
  undoStatements(table: () => ClientStatements): void {
    const j = this.journal;
    this.journal = null;
    if (j === null) return;
    const statements = table();
    for (let i = j.length - 1; i >= 0; i--) {
      const [name, before] = j[i]!;
      if (before === undefined) statements.delete(name);
      else statements.add(name, before);
    }
  }
}
