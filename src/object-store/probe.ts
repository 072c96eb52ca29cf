// The startup probe both backends run in check(): a tiny object written, read
// back, listed and deleted. It proves the whole path (credentials, bucket or
// directory, permissions) before the first backup depends on it.

import { randomUUID } from 'node:crypto';
import { ObjectStoreError } from './errors.js';
import { sha256Hex } from './hashing.js';
import type { ObjectStore } from './types.js';

/**
 * Probe objects' keys start with this; a crash mid-probe leaves one tiny orphan.
 * No folder of their own: in the fs store, a folder emptied by one node's delete
 * is removed while another node on the same machine commits into it (seen: three
 * daemons of one host probing the shared default store at once).
 */
export const PROBE_PREFIX = 'ogel-probe-';

export async function probeStore(store: ObjectStore): Promise<void> {
  const key = `${PROBE_PREFIX}${randomUUID()}`;
  const body = Buffer.from(`ogel object-store probe ${key}\n`);
  const sha256 = sha256Hex(body);
  await store.put(key, body, { sha256 });
  try {
    const info = await store.head(key);
    if (info === null || info.bytes !== body.length || info.sha256 !== sha256) {
      throw new ObjectStoreError(
        'io',
        `object store probe: ${store.description} did not return the object just written (${key}): got ${JSON.stringify(info)}`,
        { key },
      );
    }
    let listed = false;
    for await (const entry of store.list(key)) listed ||= entry.key === key;
    if (!listed) throw new ObjectStoreError('io', `object store probe: ${store.description} does not list the object just written (${key})`, { key });
  } finally {
    await store.delete([key]);
  }
}
