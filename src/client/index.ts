// Public surface of the client library.

export { KvClient, contractCode, type KvClientOptions, type ValueResult, type TimestampResult, type ContractCode } from './client.ts';
export { KvInputError, KvUnavailableError, KvTimeoutError, KvServerError } from './errors.ts';
