// The WAL spool of a point-in-time restore: ogel fetches segments from the
// archive ahead of replay into a directory, and restore_command is a tiny
// shell script that copies from it. A restore_command that ran node for each
// segment would cost about 200 ms per 16 MiB (storage-facts.md, section 2),
// and replay waits on restore_command; pgBackRest and WAL-G prefetch for the
// same reason.
//
// The protocol between the two, all files in the spool:
//   <name>.pending   planned but not fetched yet: the script waits for it
//   <name>           fetched: the script copies it to %p
//   requested        the script appends each name it is asked for, so the
//                    fetcher knows how far replay is (it stays at most
//                    `aheadSegments` ahead, and drops what replay passed)
// A name with neither file is not in the archive: the script fails at once,
// as Postgres expects for a history file that does not exist or for the
// segment after the archive's end. A fetch that fails removes every
// .pending, so replay never waits forever; the restore then reports the
// failure (it never passes a restore that replayed less than planned).

import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import type { ObjectStore } from '../object-store/index.js';
import { readObject } from '../backup/store-io.js';
import type { WalCatalog } from './catalog.js';
import type { PlannedSegment } from './pitr-plan.js';
import { fetchSegmentFresh } from './segment-fetch.js';
import { historyFileName } from './segments.js';

export const SPOOL_DIR_NAME = 'ogel_wal_spool';
export const DEFAULT_AHEAD_SEGMENTS = 8;

const SCRIPT = (spool: string) => `#!/bin/sh
# restore_command of an ogel point-in-time restore: copies from the spool ogel fills.
s='${spool.replace(/'/g, `'\\''`)}'
f="$1"
p="$2"
echo "$f" >> "$s/requested"
while :; do
  if [ -f "$s/$f" ]; then exec cp "$s/$f" "$p"; fi
  if [ ! -f "$s/$f.pending" ]; then
    if [ -f "$s/$f" ]; then exec cp "$s/$f" "$p"; fi
    exit 1
  fi
  sleep 0.02
done
`;

export interface SpoolOptions {
  store: ObjectStore;
  catalog: WalCatalog;
  segments: readonly PlannedSegment[];
  histories: readonly number[];
  dir: string;
  owner?: { uid: number; gid: number } | undefined;
  aheadSegments?: number;
  onFetched?: (s: PlannedSegment, storedBytes: number) => void;
}

export class WalSpool {
  private readonly index: Map<string, number>;
  private requestedIdx = -1;
  /** Planned segments replay asked for whose files are still here; one goes once replay asks for a later one after it. */
  private readonly asked = new Set<number>();
  /** The planned segment whose fetch failed (its position), when one did. */
  errorIndex: number | undefined;
  private fetching = -1;
  private requestedOffset = 0;
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  error: Error | undefined;
  fetched = 0;
  /** Bytes of WAL written to the spool (whole segments). */
  walBytes = 0;
  storedBytes = 0;

  constructor(private readonly opts: SpoolOptions) {
    this.index = new Map(opts.segments.map((s, i) => [s.name, i]));
  }

  /** The restore_command line for postgresql.auto.conf. */
  get restoreCommand(): string {
    return `/bin/sh '${path.join(this.opts.dir, 'fetch.sh').replace(/'/g, `''`)}' %f %p`;
  }

  /** Makes the spool (script, history files, .pending markers) and starts fetching. */
  async start(): Promise<void> {
    const dir = this.opts.dir;
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    await this.own(dir);
    await this.write('fetch.sh', SCRIPT(dir));
    await this.write('requested', '');
    for (const tli of this.opts.histories) {
      const key = this.opts.catalog.histories.get(tli);
      if (key !== undefined) await this.write(historyFileName(tli), await readObject(this.opts.store, { key }));
    }
    for (const s of this.opts.segments) await this.write(`${s.name}.pending`, '');
    this.running = this.fetchAll().catch((e: unknown) => {
      this.error = e instanceof Error ? e : new Error(String(e));
      this.errorIndex = this.fetching;
      return this.releaseWaiters();
    });
  }

  /** Stops fetching (replay is over or abandoned). */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
    await this.readRequests().catch(() => {});
  }

  /** Whether the fetch that failed (if one did) was of a segment replay asked for or would have needed: one past the furthest it asked for is not. */
  get failedWithinReplay(): boolean {
    return this.error !== undefined && (this.errorIndex ?? -1) <= this.requestedIdx;
  }

  /** How many planned segments replay asked for (the furthest one's position + 1). */
  get requested(): number {
    return this.requestedIdx + 1;
  }

  private async fetchAll(): Promise<void> {
    const ahead = this.opts.aheadSegments ?? DEFAULT_AHEAD_SEGMENTS;
    for (let i = 0; i < this.opts.segments.length; i++) {
      while (i > this.requestedIdx + ahead) {
        if (this.abort.signal.aborted) return;
        await new Promise((r) => setTimeout(r, 20));
        await this.readRequests();
      }
      if (this.abort.signal.aborted) return;
      const s = this.opts.segments[i]!;
      this.fetching = i;
      const objects = this.opts.catalog.timelines.get(s.timeline)?.get(s.segno);
      if (!objects) throw new Error(`segment ${s.name} was planned but is not in the catalog`);
      const got = await fetchSegmentFresh(this.opts.store, objects);
      if (s.cutOffset !== undefined) got.data.fill(0, s.cutOffset);
      const tmp = path.join(this.opts.dir, `${s.name}.tmp`);
      await fsp.writeFile(tmp, got.data, { mode: 0o600 });
      await this.own(tmp);
      await fsp.rename(tmp, path.join(this.opts.dir, s.name));
      await fsp.rm(path.join(this.opts.dir, `${s.name}.pending`), { force: true });
      this.fetched++;
      this.walBytes += got.data.length;
      this.storedBytes += got.storedBytes;
      this.opts.onFetched?.(s, got.storedBytes);
      await this.readRequests();
    }
  }

  /** Reads new lines of `requested`; drops segments replay has moved past. */
  private async readRequests(): Promise<void> {
    const fh = await fsp.open(path.join(this.opts.dir, 'requested'), 'r');
    let text: string;
    try {
      const { size } = await fh.stat();
      if (size <= this.requestedOffset) return;
      const buf = Buffer.alloc(size - this.requestedOffset);
      await fh.read(buf, 0, buf.length, this.requestedOffset);
      const lastNl = buf.lastIndexOf(0x0a);
      if (lastNl < 0) return;
      this.requestedOffset += lastNl + 1;
      text = buf.subarray(0, lastNl).toString('utf8');
    } finally {
      await fh.close();
    }
    for (const name of text.split('\n')) {
      const j = this.index.get(name);
      if (j === undefined) continue;
      if (j > this.requestedIdx) this.requestedIdx = j;
      // Consumed: a segment asked for earlier than a later one (Postgres copied it before asking
      // for the next). Postgres may ask for a segment after a later one (the checkpoint record's
      // before the redo point's), so one not asked for yet stays until it is.
      for (const i of this.asked) {
        if (i >= j) continue;
        this.asked.delete(i);
        await fsp.rm(path.join(this.opts.dir, this.opts.segments[i]!.name), { force: true });
      }
      this.asked.add(j);
    }
  }

  private async releaseWaiters(): Promise<void> {
    for (const s of this.opts.segments) await fsp.rm(path.join(this.opts.dir, `${s.name}.pending`), { force: true });
  }

  private async write(name: string, content: string | Buffer): Promise<void> {
    const file = path.join(this.opts.dir, name);
    await fsp.writeFile(file, content, { mode: 0o600 });
    await this.own(file);
  }

  private async own(file: string): Promise<void> {
    if (this.opts.owner) await fsp.chown(file, this.opts.owner.uid, this.opts.owner.gid);
  }
}
