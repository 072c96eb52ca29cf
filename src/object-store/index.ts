// The object store: snapshots, the WAL archive and branches live here. This
// file is the folder's only public surface. See docs/object-store.md.

export type { ByteRange, GetOptions, GetResult, ListOptions, ObjectBody, ObjectInfo, ObjectStore, PutIfAbsentOutcome, PutOptions, PutResult } from './types.js';
export { SHA256_HEX } from './types.js';
export { isObjectStoreError, ObjectStoreError, type ObjectStoreErrorCode } from './errors.js';
export { assertKey, keyProblem, MAX_KEY_BYTES } from './keys.js';
export { sha256Hex } from './hashing.js';
export { verify, type VerifyResult } from './verify.js';
export { FsObjectStore, type FsStoreOptions } from './fs-store.js';
export { S3ObjectStore, S3_PART_SIZE_BYTES, S3_QUEUE_SIZE, type S3Credentials, type S3StoreOptions } from './s3-store.js';
export { openObjectStore, resolveS3Credentials } from './open.js';
export { PROBE_PREFIX } from './probe.js';
