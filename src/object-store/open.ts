// From the config's storage section to an ObjectStore. Credentials for S3, in
// order: storage.s3.accessKeyId/secretAccessKey (which OGEL_S3_ACCESS_KEY_ID
// and OGEL_S3_SECRET_ACCESS_KEY override when the config is parsed), then those
// two variables (for a config built in code), then AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY (with AWS_SESSION_TOKEN). No other source: the SDK's
// default chain would probe instance metadata, slow and surprising here.

import { ENV_S3_ACCESS_KEY_ID, ENV_S3_SECRET_ACCESS_KEY, objectStoreDir, type Config, type StorageConfig } from '../config/index.js';
import { ObjectStoreError } from './errors.js';
import { FsObjectStore } from './fs-store.js';
import { S3ObjectStore, type S3Credentials } from './s3-store.js';
import type { ObjectStore } from './types.js';

export function resolveS3Credentials(s3: StorageConfig['s3'], env: NodeJS.ProcessEnv = process.env): S3Credentials {
  if (s3.accessKeyId !== undefined && s3.secretAccessKey !== undefined) {
    return { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, from: 'storage.s3.accessKeyId' };
  }
  const pairs = [
    [ENV_S3_ACCESS_KEY_ID, ENV_S3_SECRET_ACCESS_KEY],
    ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'],
  ] as const;
  for (const [idVar, secretVar] of pairs) {
    const accessKeyId = env[idVar];
    const secretAccessKey = env[secretVar];
    if (accessKeyId === undefined || accessKeyId === '' || secretAccessKey === undefined || secretAccessKey === '') continue;
    const sessionToken = idVar === 'AWS_ACCESS_KEY_ID' ? env.AWS_SESSION_TOKEN : undefined;
    return { accessKeyId, secretAccessKey, from: idVar, ...(sessionToken === undefined || sessionToken === '' ? {} : { sessionToken }) };
  }
  throw new ObjectStoreError(
    'access-denied',
    `object store: storage.backend is s3 but no credentials are set; fix: set storage.s3.accessKeyId and storage.s3.secretAccessKey, or export ${ENV_S3_ACCESS_KEY_ID} and ${ENV_S3_SECRET_ACCESS_KEY} (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)`,
  );
}

/**
 * The store the config names. Opening does no I/O; call check() at startup to
 * fail early (and clearly) on a wrong bucket, credentials or endpoint.
 */
export function openObjectStore(config: Pick<Config, 'cluster' | 'storage'>, opts: { env?: NodeJS.ProcessEnv } = {}): ObjectStore {
  const storage = config.storage;
  switch (storage.backend) {
    case 'fs':
      return new FsObjectStore({ dir: objectStoreDir(config) });
    case 's3': {
      const s3 = storage.s3;
      if (s3.bucket === undefined) throw new TypeError('openObjectStore: storage.s3.bucket is unset (the config validation requires it for backend s3)');
      return new S3ObjectStore({
        ...(s3.endpoint === undefined ? {} : { endpoint: s3.endpoint }),
        region: s3.region,
        bucket: s3.bucket,
        prefix: s3.prefix,
        forcePathStyle: s3.forcePathStyle,
        credentials: resolveS3Credentials(s3, opts.env),
        connectTimeoutMs: s3.connectTimeoutMs,
        requestTimeoutMs: s3.requestTimeoutMs,
      });
    }
  }
}
