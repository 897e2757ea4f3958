// The one catalog of protocol errors: every kind of bad request and every
// failure a client can see. An ERROR reply carries the code in `param` and the
// message (ASCII) as its value; tests and clients match on codes, not text.

export const ErrorCode = {
  /** key_size/value_size do not fit the payload, or the key's NUL terminator is missing. */
  BAD_SIZES: 1,
  /** The command number is not one we know, or is a reply (OK, NO_VAL, ERROR) sent as a request. */
  UNKNOWN_COMMAND: 2,
  /** The command needs a key and key_size is 0. */
  KEY_EMPTY: 3,
  /** key_size is over 128 bytes. */
  KEY_TOO_LONG: 4,
  /** The key has a byte outside printable ASCII, or '[' or ']'. */
  KEY_BAD_CHAR: 5,
  /** value_size is over 2048 bytes. */
  VALUE_TOO_LONG: 6,
  /** GET_META / PUT_META: not supported by this server. */
  UNSUPPORTED: 7,
  /** SHUT_DOWN from a non-loopback address, or shut-down is disabled in the config. */
  NOT_ALLOWED: 8,
  /** The store could not complete the operation (disk full, I/O error, read-only file); nothing acknowledged is lost. */
  STORE_FAILED: 9,
  /** Too many requests in flight on this connection. */
  TOO_MANY_IN_FLIGHT: 10,
  /** Too many connections on this processor; the connection is closed after this reply. */
  TOO_MANY_CONNECTIONS: 11,
  /** The server is shutting down or draining and takes no new work. */
  SHUTTING_DOWN: 12,
  /**
   * A write was handed on but its outcome is not known: the thread or daemon
   * that was committing or forwarding it died before it answered. It may or
   * may not have been applied; read the key to find out.
   */
  OUTCOME_UNKNOWN: 13,
  /**
   * The request's consistency level needs more daemons than this one can
   * reach now (a minority side of a partition, or too many daemons down).
   * Nothing was applied; try another daemon.
   */
  NO_QUORUM: 14,
} as const;
export type ErrorCodeNumber = (typeof ErrorCode)[keyof typeof ErrorCode];

const messages: Record<ErrorCodeNumber, string> = {
  [ErrorCode.BAD_SIZES]: 'key_size/value_size do not fit the 4056-byte payload (or the key is not NUL-terminated)',
  [ErrorCode.UNKNOWN_COMMAND]: 'unknown command',
  [ErrorCode.KEY_EMPTY]: 'key is empty (keys are 1-128 bytes)',
  [ErrorCode.KEY_TOO_LONG]: 'key is longer than 128 bytes',
  [ErrorCode.KEY_BAD_CHAR]: "key has a byte that is not printable ASCII, or '[' or ']'",
  [ErrorCode.VALUE_TOO_LONG]: 'value is longer than 2048 bytes',
  [ErrorCode.UNSUPPORTED]: 'GET_META/PUT_META are not supported',
  [ErrorCode.NOT_ALLOWED]: 'SHUT_DOWN is accepted only from loopback and only when the config allows it',
  [ErrorCode.STORE_FAILED]: 'the store failed; the write was not applied',
  [ErrorCode.TOO_MANY_IN_FLIGHT]: 'too many requests in flight on this connection',
  [ErrorCode.TOO_MANY_CONNECTIONS]: 'too many connections on this processor',
  [ErrorCode.SHUTTING_DOWN]: 'the server is shutting down',
  [ErrorCode.OUTCOME_UNKNOWN]: 'the outcome of the write is unknown (it may or may not have been applied)',
  [ErrorCode.NO_QUORUM]: 'not enough daemons reachable for the requested consistency level; nothing was applied',
};

export function errorMessage(code: ErrorCodeNumber): string {
  return messages[code];
}

const names = new Map<number, string>(Object.entries(ErrorCode).map(([name, n]) => [n, name]));
export function errorName(code: number): string {
  return names.get(code) ?? `E${code}`;
}

/** A request that cannot be served, with the code its ERROR reply carries. */
export class ProtocolError extends Error {
  readonly code: ErrorCodeNumber;
  constructor(code: ErrorCodeNumber, detail?: string) {
    super(detail ? `${messages[code]}: ${detail}` : messages[code]);
    this.code = code;
    this.name = 'ProtocolError';
  }
}
