// The file that says "this node is still rejoining" (RaftConfig.rejoining), so
// that a restart in the middle of catching up does not forget it: the Raft store
// then holds part of the log, which is no longer empty but still not all that was
// committed. Written (and fsynced) before the store is bootstrapped, removed once
// Raft announces, after persisting, that a leader committed without this node.

import { mkdir, open, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log.js';

export const REJOINING_MSG =
  "this node's Raft state is empty or was lost (a new node, or a wiped data directory): it rejoins without voting or acknowledging toward any quorum " +
  'until a leader commits without it; in a new cluster that is its first election. If it lasts, most of the other nodes are down or unreachable: start them, or check the network';

/** How often a node still rejoining says so again. */
const REMIND_EVERY_MS = 30_000;

interface RejoiningRaft {
  status(): { rejoining: boolean; leader: string; term: number; commitIndex: number };
  once(event: 'rejoined', listener: () => void): unknown;
}

export class RejoinMarker {
  readonly path: string;

  constructor(dataDir: string) {
    this.path = join(dataDir, 'raft-rejoining');
  }

  async exists(): Promise<boolean> {
    try {
      await stat(this.path);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
  }

  async write(): Promise<void> {
    await mkdir(join(this.path, '..'), { recursive: true });
    const f = await open(this.path, 'w', 0o600);
    try {
      await f.writeFile(`rejoining since ${new Date().toISOString()}\n`);
      await f.sync();
    } finally {
      await f.close();
    }
    await syncDir(join(this.path, '..'));
  }

  async remove(): Promise<void> {
    if (!(await this.exists())) return;
    await rm(this.path, { force: true });
    await syncDir(join(this.path, '..'));
  }

  /**
   * Until Raft says the node rejoined, says so every REMIND_EVERY_MS. The marker
   * itself is removed by RaftNode's onRejoined hook (remove()), before that.
   */
  followUntilRejoined(raft: RejoiningRaft, log: Logger): void {
    const reminder = setInterval(() => {
      const s = raft.status();
      if (!s.rejoining) return;
      log({ level: 'warn', msg: REJOINING_MSG, leader: s.leader || null, term: s.term, commitIndex: s.commitIndex });
    }, REMIND_EVERY_MS);
    reminder.unref();
    raft.once('rejoined', () => {
      clearInterval(reminder);
      log({ level: 'info', msg: 'rejoined the cluster: voting and acknowledging again', marker: this.path });
    });
  }
}

async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
