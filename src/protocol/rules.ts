// Key and value rules of the kv739 contract, shared by the server's request
// validation and the client's checks before sending.

import { MAX_KEY_BYTES, MAX_VALUE_BYTES } from './constants.ts';
import { ErrorCode, type ErrorCodeNumber } from './errors.ts';

/**
 * Returns the error code for a bad key, or 0 when the key is valid. Keys
 * decoded from the wire are latin1 strings, so a non-ASCII byte shows up as a
 * char code above 0x7e and is caught here too.
 */
export function checkKey(key: string): ErrorCodeNumber | 0 {
  if (key.length === 0) return ErrorCode.KEY_EMPTY;
  if (key.length > MAX_KEY_BYTES) return ErrorCode.KEY_TOO_LONG;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    // printable ASCII is 0x20..0x7e; '[' = 0x5b, ']' = 0x5d
    if (c < 0x20 || c > 0x7e || c === 0x5b || c === 0x5d) return ErrorCode.KEY_BAD_CHAR;
  }
  return 0;
}

export function checkValueLength(bytes: number): ErrorCodeNumber | 0 {
  return bytes > MAX_VALUE_BYTES ? ErrorCode.VALUE_TOO_LONG : 0;
}
