// Public surface of the client library.

export { KvClient, contractCode, CONSISTENCY_NAMES, type KvClientOptions, type CallOptions, type GetOptions, type Consistency, type ValueResult, type TimestampResult, type ContractCode } from './client.ts';
export { KvInputError, KvUnavailableError, KvTimeoutError, KvServerError } from './errors.ts';
