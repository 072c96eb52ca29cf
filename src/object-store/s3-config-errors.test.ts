// The three configuration mistakes an operator makes with S3, each against a
// real s3rver (or a closed port): one clear ObjectStoreError naming the field.

import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startS3rver, S3RVER_ACCESS_KEY_ID, S3RVER_SECRET_ACCESS_KEY, type S3rver } from '../../test/helpers/s3rver.js';
import { validateConfig } from '../config/index.js';
import { ObjectStoreError, openObjectStore, resolveS3Credentials, S3ObjectStore, type S3StoreOptions } from './index.js';

async function failure(p: Promise<unknown>): Promise<ObjectStoreError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ObjectStoreError, `expected an ObjectStoreError, got ${String(e)}`);
    assert.doesNotMatch(e.message, /\n|\[object Object\]|\bat .*\.js:\d+/);
    return e;
  }
  assert.fail('expected an ObjectStoreError');
}

/** A port nothing listens on: bound, noted, closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return address.port;
}

describe('object store: S3 configuration errors', () => {
  let server: S3rver;
  let base: S3StoreOptions;
  before(async () => {
    server = await startS3rver();
    base = {
      endpoint: server.endpoint,
      region: 'us-east-1',
      bucket: server.bucket,
      prefix: '',
      forcePathStyle: true,
      credentials: { accessKeyId: S3RVER_ACCESS_KEY_ID, secretAccessKey: S3RVER_SECRET_ACCESS_KEY, from: 'storage.s3.accessKeyId' },
      connectTimeoutMs: 1000,
      requestTimeoutMs: 5000,
    };
  });
  after(() => server.stop());

  test('wrong bucket: no-such-bucket naming storage.s3.bucket and the fix', async () => {
    const store = new S3ObjectStore({ ...base, bucket: 'no-such-bucket-here' });
    const e = await failure(store.check());
    assert.equal(e.code, 'no-such-bucket');
    assert.match(e.message, /storage\.s3\.bucket "no-such-bucket-here" does not exist at http:\/\/127\.0\.0\.1:\d+; fix: create the bucket/);
    const put = await failure(store.put('k', Buffer.from('x')));
    assert.equal(put.code, 'no-such-bucket');
    await store.close();
  });

  test('wrong access key id: access-denied (s3rver knows only S3RVER; it does not verify SigV4 signatures)', async () => {
    const store = new S3ObjectStore({ ...base, credentials: { accessKeyId: 'WRONGKEY', secretAccessKey: 'whatever', from: 'OGEL_S3_ACCESS_KEY_ID' } });
    const e = await failure(store.check());
    assert.equal(e.code, 'access-denied');
    assert.match(
      e.message,
      /refused the credentials \((?:InvalidAccessKeyId|HTTP 403)\) of access key "WRONGKEY" from OGEL_S3_ACCESS_KEY_ID.*fix: set storage\.s3\.accessKeyId/,
    );
    const put = await failure(store.put('k', Buffer.from('x')));
    assert.match(put.message, /\(InvalidAccessKeyId\)/, 'a request with a body names the S3 error code');
    await store.close();
    // A wrong SECRET with the right key id passes: s3rver leaves SigV4 unchecked.
    const lax = new S3ObjectStore({ ...base, credentials: { accessKeyId: S3RVER_ACCESS_KEY_ID, secretAccessKey: 'not-the-secret', from: 'test' } });
    await lax.check();
    await lax.close();
  });

  test('unreachable endpoint (a closed port): unreachable within seconds, naming storage.s3.endpoint', async () => {
    const port = await closedPort();
    const store = new S3ObjectStore({ ...base, endpoint: `http://127.0.0.1:${port}` });
    const startMs = performance.now();
    const e = await failure(store.check());
    const elapsedMs = performance.now() - startMs;
    assert.equal(e.code, 'unreachable');
    assert.match(e.message, new RegExp(`cannot reach storage\\.s3\\.endpoint http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`));
    assert.ok(elapsedMs < 10_000, `took ${elapsedMs} ms`);
    await store.close();
  });

  test('openObjectStore builds the store from the config; credentials from config, OGEL_S3_*, then AWS_*', async () => {
    const config = validateConfig({
      cluster: { secret: 'a-cluster-secret-of-32-bytes-xyz', dataDir: '/tmp/unused' },
      api: { token: 'an-api-token-0123456789' },
      nodes: [{ id: 'n1', raft: '127.0.0.1:7001', api: '127.0.0.1:7101', proxy: '127.0.0.1:7201', postgres: '127.0.0.1:7301' }],
      postgres: { syncMode: 'async' },
      storage: { backend: 's3', s3: { endpoint: server.endpoint, bucket: server.bucket, forcePathStyle: true, prefix: 'via-config' } },
    });
    const store = openObjectStore(config, { env: { AWS_ACCESS_KEY_ID: S3RVER_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: S3RVER_SECRET_ACCESS_KEY } });
    await store.check();
    await store.close();
    assert.equal(
      resolveS3Credentials({ ...config.storage.s3, accessKeyId: 'a', secretAccessKey: 'b' }, { OGEL_S3_ACCESS_KEY_ID: 'c', OGEL_S3_SECRET_ACCESS_KEY: 'd' })
        .from,
      'storage.s3.accessKeyId',
    );
    assert.equal(
      resolveS3Credentials(config.storage.s3, {
        OGEL_S3_ACCESS_KEY_ID: 'c',
        OGEL_S3_SECRET_ACCESS_KEY: 'd',
        AWS_ACCESS_KEY_ID: 'e',
        AWS_SECRET_ACCESS_KEY: 'f',
      }).accessKeyId,
      'c',
    );
    assert.throws(
      () => openObjectStore(config, { env: {} }),
      (e: unknown) => e instanceof ObjectStoreError && e.code === 'access-denied' && /OGEL_S3_ACCESS_KEY_ID/.test(e.message),
    );
  });
});
