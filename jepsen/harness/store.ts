// The run's object store, where the cluster's backups and WAL archive go.
//
// By default the daemons' own default, the fs store (<dataDir>/objects, one
// directory all three hosts share). A run with a store nemesis (store-down,
// store-slow) uses S3 instead: s3rver on 127.0.0.1 (test/helpers/s3rver.ts,
// its own process) with the cluster's storage.s3.endpoint pointing at a link in
// the harness (store-link.ts) that the nemeses cut or slow. Only those runs pay
// for s3rver (one more Node process on the machine, and every archive part a
// request through the harness): the rest of the matrix keeps the conditions it
// was measured under.
//
// Either way the harness reads the store itself, directly (never through the
// link), for the archive checker.

import { join } from 'node:path';
import { FsObjectStore, S3ObjectStore, type ObjectStore } from '../../src/object-store/index.js';
import { S3RVER_ACCESS_KEY_ID, S3RVER_SECRET_ACCESS_KEY, startS3rver, type S3rver } from '../../test/helpers/s3rver.js';
import { StoreLink } from './store-link.js';

export interface RunStore {
  kind: 'fs' | 's3';
  /** For messages and results.json. */
  description: string;
  /** The storage: section of the cluster's config ('' for the default fs store). */
  configYaml: string;
  /** Present with s3: what the store nemeses act on. */
  link: StoreLink | undefined;
  /** The store, read directly (not through the link); `clusterDir` is DaemonCluster.dir. */
  reader(clusterDir: string): ObjectStore;
  /** Stops s3rver and the link (idempotent). */
  close(): Promise<void>;
}

export function fsRunStore(): RunStore {
  return {
    kind: 'fs',
    description: 'fs (the default: <dataDir>/objects)',
    configYaml: '',
    link: undefined,
    // DaemonCluster sets cluster.dataDir to <dir>/data; the fs store defaults to <dataDir>/objects.
    reader: (clusterDir) => new FsObjectStore({ dir: join(clusterDir, 'data', 'objects') }),
    close: async () => {},
  };
}

export async function s3RunStore(): Promise<RunStore> {
  const s3: S3rver = await startS3rver({ bucket: 'ogel-jepsen' });
  let link: StoreLink;
  try {
    link = await StoreLink.start(s3.port);
  } catch (e) {
    await s3.stop();
    throw e;
  }
  const configYaml =
    `storage:\n  backend: s3\n  s3:\n    endpoint: ${link.endpoint}\n    bucket: ${s3.bucket}\n    forcePathStyle: true\n` +
    `    accessKeyId: ${S3RVER_ACCESS_KEY_ID}\n    secretAccessKey: ${S3RVER_SECRET_ACCESS_KEY}\n`;
  let closed: Promise<void> | undefined;
  return {
    kind: 's3',
    description: `s3 (s3rver on 127.0.0.1:${s3.port}) through the store link on 127.0.0.1:${link.port}`,
    configYaml,
    link,
    reader: () =>
      new S3ObjectStore({
        endpoint: s3.endpoint,
        region: 'us-east-1',
        bucket: s3.bucket,
        prefix: '',
        forcePathStyle: true,
        credentials: { accessKeyId: S3RVER_ACCESS_KEY_ID, secretAccessKey: S3RVER_SECRET_ACCESS_KEY, from: 'the jepsen harness' },
        connectTimeoutMs: 3_000,
        requestTimeoutMs: 30_000,
      }),
    close: () => (closed ??= link.close().then(() => s3.stop())),
  };
}
