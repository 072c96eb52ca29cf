// cluster.yml: loading, validation, defaults, and configs ogel writes itself.
// See cluster.example.yml at the repository root for every field.

export { ConfigError, formatProblem, type ConfigProblem } from './errors.js';
export {
  DEFAULTS,
  MAX_NODES,
  MIN_SECRET_BYTES,
  type BackupRetention,
  type BackupsConfig,
  type Config,
  type ConfigDefaults,
  type LogLevel,
  type NodeConfig,
  type PoolMode,
  type PostgresParameterValue,
  type RestoreFromConfig,
  type StorageBackend,
  type StorageConfig,
  type SyncMode,
} from './schema.js';
export { getNode, loadConfig, MAX_CONFIG_BYTES, parseConfig, validateConfig } from './validate.js';
export {
  advertisedAddress,
  configToYaml,
  defaultConfig,
  listenAddress,
  localClusterConfig,
  nodeDataDir,
  objectStoreDir,
  redactConfig,
  type LocalClusterOptions,
} from './render.js';
export { ADDRESS_ROLES, formatHostPort, hostPortOf, LOCAL_BASE_PORT, localPort, parseHostPort, type AddressRole, type HostPort } from './address.js';
export { ENV_CLUSTER_SECRET, ENV_S3_ACCESS_KEY_ID, ENV_S3_SECRET_ACCESS_KEY, ENV_TOKEN } from './env.js';
