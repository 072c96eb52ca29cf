// Request bodies of the admin API. Strict: an unknown field is refused (a typo
// such as {"too": "n2"} must not quietly become "any node"). Rules that need the
// cluster's state or the clock (is `to` a member, is `scheduledAt` in the future)
// are checked by the server and the backend, not here.

import { z } from 'zod';
import { TENANT_LIMITS } from '../../../fsm/index.js';
import { restorePointProblem } from '../../archive/pitr-target.js';
import { SCHEDULED_AT_HINT } from '../../controllers/switchover-schedule.js';
import { address, describe, flag, intIn, nonEmptyText, text, withHint } from './fields.js';

const GENERATION = { min: 1, max: Number.MAX_SAFE_INTEGER };
const NODE_ID_HINT = 'a node id like n2';

/** An optional node id; null counts as absent (clients send {"to": null} for "any"). */
const optionalNode = (): z.ZodType<string | null | undefined> => withHint(text(), NODE_ID_HINT).nullish();

export const TransferRequest = z
  .strictObject({ to: optionalNode() })
  .meta({ id: 'TransferRequest', description: 'to: the voter to hand leadership to; absent: the most caught-up one' });
export type TransferRequest = z.infer<typeof TransferRequest>;

export const AddMemberRequest = z
  .strictObject({
    id: withHint(nonEmptyText(), 'a node id like n4'),
    raft: address(),
    api: address(),
    proxy: address(),
    postgres: address(),
  })
  .meta({ id: 'AddMemberRequest' });
export type AddMemberRequest = z.infer<typeof AddMemberRequest>;

export const PauseRequest = z.strictObject({ reason: text().nullish() }).meta({ id: 'PauseRequest' });
export type PauseRequest = z.infer<typeof PauseRequest>;

/** A body that must be an empty object (resume, reinit): room to grow without a new route. */
export const EmptyRequest = z.strictObject({}).meta({ id: 'EmptyRequest' });

export const StopReceiverRequest = z
  .strictObject({
    generation: intIn(GENERATION),
    renewalSeq: intIn({ min: 0, max: Number.MAX_SAFE_INTEGER }).nullish(),
  })
  .meta({ id: 'StopReceiverRequest', description: "the failover fence: the leader's generation, and the lease renewal it last saw" });
export type StopReceiverRequest = z.infer<typeof StopReceiverRequest>;

export const StepDownRequest = z
  .strictObject({
    generation: intIn(GENERATION),
    to: withHint(nonEmptyText(), 'the switchover target, a node id like n2'),
  })
  .meta({ id: 'StepDownRequest' });
export type StepDownRequest = z.infer<typeof StepDownRequest>;

export const SwitchoverRequest = z
  .strictObject({
    to: optionalNode(),
    // An explicit null must not quietly become "switch over now".
    scheduledAt: withHint(
      z.string({ error: (iss) => (iss.input === null ? 'null; leave the field out for a switchover now' : `expected a string, got ${describe(iss.input)}`) }),
      SCHEDULED_AT_HINT,
      'ISO 8601 with a time zone; absent: switch over now',
    ).optional(),
  })
  .meta({ id: 'SwitchoverRequest' });
export type SwitchoverRequest = z.infer<typeof SwitchoverRequest>;

export const FailoverRequest = z
  .strictObject({
    to: optionalNode(),
    force: withHint(flag(), 'true only to accept losing acknowledged writes (docs/postgres-failover.md)').nullish(),
  })
  .meta({ id: 'FailoverRequest' });
export type FailoverRequest = z.infer<typeof FailoverRequest>;

const limitExample = (key: string, range: { max: number }): string => `e.g. {"limits": {"${key}": ${Math.min(10, range.max)}}}`;
// The state machine's bounds: a value it would refuse fails here, naming the field.
const maxConnections = withHint(intIn(TENANT_LIMITS.maxConnections, 'client connections'), limitExample('maxConnections', TENANT_LIMITS.maxConnections));
const rateLimitPerSec = withHint(intIn(TENANT_LIMITS.rateLimitPerSec, 'queries per second'), limitExample('rateLimitPerSec', TENANT_LIMITS.rateLimitPerSec));
const poolSize = withHint(
  intIn(TENANT_LIMITS.poolSize, "server connections per pool, or null for the proxy's defaultPoolSize"),
  limitExample('poolSize', TENANT_LIMITS.poolSize),
);

const poolMode = withHint(
  z.enum(['session', 'transaction'], { error: (iss) => `${describe(iss.input)} is not a pool mode` }),
  'use "session" (a server connection per client session), "transaction" (per transaction), or null for the proxy\'s poolMode',
);

/** The tenant's name is also its database and role, so it must be a plain Postgres identifier. */
export const TENANT_NAME_RE = /^[a-z_][a-z0-9_]{0,62}$/;

export const CreateTenantRequest = z
  .strictObject({
    name: withHint(
      text().regex(TENANT_NAME_RE, { error: (iss) => `${describe(iss.input)} is not a valid tenant name` }),
      'use 1-63 characters of a-z, 0-9 and _, not starting with a digit (it becomes the database and role name)',
    ),
    password: withHint(text().min(8, { error: 'at least 8 characters' }), 'or omit it and a password is generated').nullish(),
    limits: z.strictObject({ maxConnections: maxConnections.optional(), rateLimitPerSec: rateLimitPerSec.optional() }).optional(),
  })
  .meta({ id: 'CreateTenantRequest' });
export type CreateTenantRequest = z.infer<typeof CreateTenantRequest>;

const LIMITS_CHANGE_EXAMPLE = '{"limits": {"poolSize": 10}}';

/** PATCH /v1/tenants/:name: the limits to change, at least one; the others keep their value. */
export const SetTenantLimitsRequest = z
  .strictObject({
    limits: withHint(
      z
        .strictObject({
          poolSize: poolSize.nullable().optional(),
          poolMode: poolMode.nullable().optional(),
          maxConnections: maxConnections.optional(),
          rateLimitPerSec: rateLimitPerSec.optional(),
        })
        .refine((l) => Object.keys(l).length > 0, {
          error: 'changes nothing',
          params: { hint: `give at least one of poolSize, poolMode, maxConnections, rateLimitPerSec, e.g. ${LIMITS_CHANGE_EXAMPLE}` },
        }),
      `send the limits to change, e.g. ${LIMITS_CHANGE_EXAMPLE}`,
    ),
  })
  .meta({ id: 'SetTenantLimitsRequest' });
export type SetTenantLimitsRequest = z.infer<typeof SetTenantLimitsRequest>;
export type TenantLimitsChange = SetTenantLimitsRequest['limits'];

/**
 * POST /v1/internal/commands: a state-machine command (fsm/commands.ts) from
 * another daemon's agent. Opaque here on purpose: the state machine owns the
 * versioned command formats and validates them itself (validateCommand), with
 * messages that name the field; a second copy of that schema here would drift.
 */
export const InternalCommandRequest = z
  .looseObject({ v: z.int(), type: z.string() })
  .meta({ id: 'InternalCommandRequest', description: 'a state-machine command (fsm/commands.ts), validated by the state machine' });
/** The limits of a new tenant; absent ones get the defaults. */
export type NewTenantLimits = NonNullable<CreateTenantRequest['limits']>;

export const CreateBackupRequest = z.strictObject({ kind: z.enum(['full', 'incremental', 'auto']).optional() }).meta({
  id: 'CreateBackupRequest',
  description: 'kind: full, incremental (on the newest complete backup), or auto (the default: incremental when there is one to build on)',
});
export type CreateBackupRequest = z.infer<typeof CreateBackupRequest>;

export const VerifyBackupRequest = z.strictObject({ restoreTest: z.boolean().optional() }).meta({
  id: 'VerifyBackupRequest',
  description:
    'restoreTest: restore the backup (and its chain) into a scratch directory, start Postgres on it and run amcheck on every index and heap; default false: read every object back against its sha256',
});
export type VerifyBackupRequest = z.infer<typeof VerifyBackupRequest>;

export const CreateRestorePointRequest = z
  .strictObject({
    name: withHint(
      text().refine((v) => restorePointProblem(v) === null, { error: (iss) => restorePointProblem(String(iss.input)) ?? 'not a usable restore point name' }),
      'e.g. {"name": "before-migration-42"}: 1 to 63 letters, digits, ., _ and -, starting with a letter or digit',
    ),
  })
  .meta({ id: 'CreateRestorePointRequest', description: "name: what 'ogel restore --target-name NAME' will stop at; it must not be recorded already" });
export type CreateRestorePointRequest = z.infer<typeof CreateRestorePointRequest>;
