// JSON-lines logging to stdout (pm2 keeps it per app): one object per line
// with time, level, daemon and message, plus structured fields.

export type Level = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  (level: Level, msg: string, fields?: Record<string, unknown>): void;
}

export function jsonLogger(daemon: string, write: (line: string) => void = (l) => process.stdout.write(l)): Logger {
  return (level, msg, fields) => {
    const entry = { time: new Date().toISOString(), level, daemon, msg, ...fields };
    write(JSON.stringify(entry, jsonReplacer) + '\n');
  };
}

/** JSON.stringify replacer: bigints (timestamps) become decimal strings. */
export function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}
