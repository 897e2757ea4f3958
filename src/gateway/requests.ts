// What the gateway does with a request before and after a daemon has it:
// which requests it answers itself (malformed, invalid, SHUT_DOWN), which may
// be sent again to another daemon, and which daemon replies mean "not taken,
// try another". Pure.

import { Command, ErrorCode, validateRequest, type ErrorCodeNumber, type Frame } from '../protocol/index.ts';

/** Commands that change nothing: sending one again, to any daemon, is harmless. */
const READ_ONLY = new Set<number>([
  Command.GET,
  Command.CHK,
  Command.GET_TS,
  Command.GET_LAST_TS,
  Command.GET_FIRST_TS,
  Command.GET_META,
  Command.INIT,
]);

export function isReadOnly(command: number): boolean {
  return READ_ONLY.has(command);
}

/** Commands whose key chooses the daemon (the others go to the least loaded one). */
const KEYED = new Set<number>([Command.GET, Command.PUT, Command.DEL, Command.GET_TS]);

export function routingKey(frame: Frame): string | undefined {
  return KEYED.has(frame.command) ? frame.key : undefined;
}

/**
 * The error the gateway answers itself, or 0 to forward: what a daemon would
 * say to an invalid request (same catalog, same checks), and NOT_ALLOWED for
 * SHUT_DOWN: a client of the gateway cannot stop a daemon it does not know.
 */
export function localError(frame: Frame): ErrorCodeNumber | 0 {
  const invalid = validateRequest(frame);
  if (invalid) return invalid;
  if (frame.command === Command.SHUT_DOWN) return ErrorCode.NOT_ALLOWED;
  return 0;
}

/** ERROR codes by which a daemon says it did not take the request (nothing applied): try another daemon. */
const NOT_TAKEN = new Set<number>([ErrorCode.SHUTTING_DOWN, ErrorCode.TOO_MANY_CONNECTIONS, ErrorCode.TOO_MANY_IN_FLIGHT, ErrorCode.NO_QUORUM]);

export function isNotTaken(command: number, errorCode: number): boolean {
  return command === Command.ERROR && NOT_TAKEN.has(errorCode);
}

/** Why an attempt at one daemon ended without a reply. */
export type AttemptFailure =
  /** the request never reached the socket (queued when the daemon failed, or waited too long for a slot) */
  | 'not-sent'
  /** the connection was lost, or the daemon did not answer in time, after the request was written */
  | 'lost';

/**
 * After a failed attempt: send the request to another daemon, or answer the
 * client. A read-only request, or one that certainly never reached a daemon,
 * goes on (while attempts remain); a write that may have reached one gets
 * OUTCOME_UNKNOWN, since sending it again could apply it twice.
 */
export function afterFailure(command: number, failure: AttemptFailure, attempts: number, maxAttempts: number): 'retry' | ErrorCodeNumber {
  if (failure === 'lost' && !isReadOnly(command)) return ErrorCode.OUTCOME_UNKNOWN;
  if (attempts < maxAttempts) return 'retry';
  return failure === 'lost' && !isReadOnly(command) ? ErrorCode.OUTCOME_UNKNOWN : ErrorCode.SHUTTING_DOWN;
}
