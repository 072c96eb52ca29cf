// AWS SDK errors to ObjectStoreError: one line naming the config field, its
// value and the fix. The SDK throws service errors (name = the S3 error code,
// $metadata.httpStatusCode), Node socket errors (code ECONNREFUSED, ENOTFOUND,
// ...; an AggregateError when Node tried IPv4 and IPv6), and TimeoutError.

import { describeCause, ObjectStoreError } from './errors.js';

export interface S3ErrorContext {
  endpoint: string;
  bucket: string;
  region: string;
  accessKeyId: string;
  /** Where the credentials came from, e.g. 'storage.s3.accessKeyId' or 'AWS_ACCESS_KEY_ID'. */
  credentialsFrom: string;
}

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'ECONNABORTED',
]);
const DENIED_NAMES = new Set([
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'InvalidToken',
  'ExpiredToken',
  'AllAccessDisabled',
  'InvalidSecurity',
]);
const NOT_FOUND_NAMES = new Set(['NoSuchKey', 'NotFound']);
const REGION_NAMES = new Set(['PermanentRedirect', 'AuthorizationHeaderMalformed', 'IllegalLocationConstraintException']);

function field(e: unknown, name: string): unknown {
  return typeof e === 'object' && e !== null ? (e as Record<string, unknown>)[name] : undefined;
}

function httpStatus(e: unknown): number | undefined {
  const status = field(field(e, '$metadata'), 'httpStatusCode');
  return typeof status === 'number' ? status : undefined;
}

/** The socket error code, looking inside an AggregateError (Node's happy eyeballs). */
function socketCode(e: unknown): string | undefined {
  const code = field(e, 'code');
  if (typeof code === 'string' && UNREACHABLE_CODES.has(code)) return code;
  const inner = field(e, 'errors');
  if (Array.isArray(inner))
    for (const x of inner) {
      const c = socketCode(x);
      if (c !== undefined) return c;
    }
  const cause = field(e, 'cause');
  return cause !== undefined && cause !== e ? socketCode(cause) : undefined;
}

export function isS3NotFound(e: unknown): boolean {
  const name = field(e, 'name');
  return (typeof name === 'string' && NOT_FOUND_NAMES.has(name)) || (httpStatus(e) === 404 && name !== 'NoSuchBucket');
}

export function mapS3Error(e: unknown, ctx: S3ErrorContext, op: string, key: string | undefined): ObjectStoreError {
  if (e instanceof ObjectStoreError) return e;
  // Body-less answers (HEAD) reach us as name 'Unknown': the status is all there is.
  const rawName = field(e, 'name');
  const name = typeof rawName === 'string' && rawName !== 'Unknown' ? rawName : '';
  const status = httpStatus(e);
  const what = key === undefined ? op : `${op} ${JSON.stringify(key)}`;
  const opts = key === undefined ? { cause: e } : { key, cause: e };
  const code = socketCode(e);
  if (code !== undefined || name === 'TimeoutError' || name === 'RequestTimeout') {
    return new ObjectStoreError(
      'unreachable',
      `object store: ${what}: cannot reach storage.s3.endpoint ${ctx.endpoint} (${code ?? describeCause(e)}); fix: check that the S3 server is up and reachable from this node, or correct storage.s3.endpoint`,
      opts,
    );
  }
  if (name === 'NoSuchBucket') {
    return new ObjectStoreError(
      'no-such-bucket',
      `object store: ${what}: storage.s3.bucket ${JSON.stringify(ctx.bucket)} does not exist at ${ctx.endpoint}; fix: create the bucket, or set storage.s3.bucket to an existing one`,
      opts,
    );
  }
  if (DENIED_NAMES.has(name) || status === 403) {
    return new ObjectStoreError(
      'access-denied',
      `object store: ${what}: ${ctx.endpoint} refused the credentials (${name || `HTTP ${status}`}) of access key ${JSON.stringify(ctx.accessKeyId)} from ${ctx.credentialsFrom} for storage.s3.bucket ${JSON.stringify(ctx.bucket)}; fix: set storage.s3.accessKeyId and storage.s3.secretAccessKey (or OGEL_S3_ACCESS_KEY_ID and OGEL_S3_SECRET_ACCESS_KEY) to a key allowed to read and write the bucket`,
      opts,
    );
  }
  if (isS3NotFound(e)) {
    return new ObjectStoreError('not-found', `object store: ${what}: no such object in storage.s3.bucket ${JSON.stringify(ctx.bucket)}`, opts);
  }
  if (REGION_NAMES.has(name) || status === 301) {
    return new ObjectStoreError(
      'io',
      `object store: ${what}: ${ctx.endpoint} answered ${name || `HTTP ${status}`}: storage.s3.region ${JSON.stringify(ctx.region)} is probably not the bucket's region; fix: set storage.s3.region to the bucket's region`,
      opts,
    );
  }
  const answer = status === undefined ? describeCause(e) : `${name || 'error'} (HTTP ${status}): ${describeCause(e)}`;
  return new ObjectStoreError('io', `object store: ${what} at ${ctx.endpoint}, storage.s3.bucket ${JSON.stringify(ctx.bucket)}: ${answer}`, opts);
}
