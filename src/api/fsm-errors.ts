// A state-machine rejection (fsm/errors.ts) as an admin API error. The one table
// of FSM error code to HTTP status: "your request is malformed" is 400, "no such
// thing" is 404, and everything else conflicts with the current state (409:
// re-read and retry or give up). Exhaustive over ErrorCode, so a new code must
// be placed here before the build passes.

import type { ErrorCode, FsmError } from '../../fsm/index.js';
import { ApiError } from './http.js';

type Answer = { status: 400; code: 'invalid_body' } | { status: 404; code: 'not_found' } | { status: 409; code: 'conflict' };

const BAD_REQUEST: Answer = { status: 400, code: 'invalid_body' };
const NOT_FOUND: Answer = { status: 404, code: 'not_found' };
const CONFLICT: Answer = { status: 409, code: 'conflict' };

const ANSWERS: Record<ErrorCode, Answer> = {
  invalid_command: BAD_REQUEST,
  invalid_value: BAD_REQUEST,
  // A newer command version than this daemon knows: the cluster is mid-upgrade, not a malformed request.
  unsupported_version: CONFLICT,
  // A bounded collection is full: the state must change (delete some) before a retry can succeed.
  limit_reached: CONFLICT,
  unknown_member: NOT_FOUND,
  unknown_tenant: NOT_FOUND,
  unknown_backup: NOT_FOUND,
  unknown_compute: NOT_FOUND,
  unknown_wal_segment: NOT_FOUND,
  member_exists: CONFLICT,
  address_taken: CONFLICT,
  member_in_use: CONFLICT,
  stale_generation: CONFLICT,
  no_lease: CONFLICT,
  not_lease_holder: CONFLICT,
  stale_renewal: CONFLICT,
  is_primary: CONFLICT,
  not_promotable: CONFLICT,
  maintenance_paused: CONFLICT,
  no_primary: CONFLICT,
  switchover_scheduled: CONFLICT,
  tenant_exists: CONFLICT,
  name_taken: CONFLICT,
  tenant_deleted: CONFLICT,
  tenant_not_deleted: CONFLICT,
  tenant_not_active: CONFLICT,
  tenant_in_use: CONFLICT,
  backup_exists: CONFLICT,
  backup_in_use: CONFLICT,
  // Exists but is running, failed or failed verification: retry once it is complete, or pick another.
  backup_unusable: CONFLICT,
  wal_segment_conflict: CONFLICT,
  compute_exists: CONFLICT,
  compute_active: CONFLICT,
  invalid_transition: CONFLICT,
};

export function apiErrorForRejection(e: FsmError): ApiError {
  const a = ANSWERS[e.code] ?? CONFLICT;
  return new ApiError(a.status, a.code, e.message);
}
