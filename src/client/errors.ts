// Errors a KvClient call can throw. Callers branch on the class (or `kind`),
// never on message text.

import { errorName } from '../protocol/index.ts';

/** The key or value breaks the kv739 rules; nothing was sent. */
export class KvInputError extends Error {
  readonly kind = 'input';
  /** the protocol error code the server would have replied with */
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.name = 'KvInputError';
    this.code = code;
  }
}

/** No server answered: all refused, timed out, are shutting down, or the client is closed. */
export class KvUnavailableError extends Error {
  readonly kind = 'unavailable';
  /** host:port of every server tried, with why it failed */
  readonly tried: readonly { server: string; reason: string }[];
  constructor(message: string, tried: readonly { server: string; reason: string }[] = []) {
    const detail = tried.length ? ` (${tried.map((t) => `${t.server}: ${t.reason}`).join('; ')})` : '';
    super(message + detail);
    this.name = 'KvUnavailableError';
    this.tried = tried;
  }
}

/** The per-request deadline passed before any server answered. */
export class KvTimeoutError extends KvUnavailableError {
  constructor(deadlineMs: number, tried: readonly { server: string; reason: string }[]) {
    super(`no reply within the ${deadlineMs} ms deadline`, tried);
    this.name = 'KvTimeoutError';
  }
}

/** The server answered with an ERROR reply; `code` is from the protocol catalog (src/protocol/errors.ts). */
export class KvServerError extends Error {
  readonly kind = 'server';
  readonly code: number;
  readonly server: string;
  constructor(code: number, serverMessage: string, server: string) {
    super(`${server} replied ${errorName(code)} (${code}): ${serverMessage}`);
    this.name = 'KvServerError';
    this.code = code;
    this.server = server;
  }
}
