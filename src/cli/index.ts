// The reusable part of the CLI: the admin API client, discovery and rendering.
// (`ogel up` in the daemon prints the status table with these.)

export {
  AdminClient,
  ApiError,
  BadResponseError,
  OutcomeUnknownError,
  UnreachableError,
  describeClientError,
  isClientError,
  type AdminClientOptions,
  type EndpointFailure,
  type RequestOptions,
} from './client.js';
export { discover, normalizeEndpoint, readStateFile, stateFilePath, DEFAULT_STATE_FILE, type Discovery, type StateFile } from './discovery.js';
export { renderStatusTable, renderTable, type Column } from './table.js';
export type * from './types.js';
