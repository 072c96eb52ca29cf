// On a failed wait in a WAL-archive test: the archive's log lines of every node,
// which say what it did instead.

import type { DaemonCluster } from './daemons.js';

export async function waitOrShowArchiveLogs(c: DaemonCluster, wait: () => Promise<void>): Promise<void> {
  try {
    await wait();
  } catch (e) {
    const lines = [...c.nodes].flatMap(([id, n]) =>
      n.log
        .filter((l) => /archive|"level":"error"/i.test(l) && !/the database system is starting up|could not connect to the primary/.test(l))
        .slice(-15)
        .map((l) => `${id}: ${l.slice(0, 400)}`),
    );
    throw new Error(`${(e as Error).message}\n${lines.join('\n')}`);
  }
}
