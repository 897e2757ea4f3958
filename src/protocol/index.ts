// The protocol module's public surface: the kv739 frame codec, its limits and
// its error catalog. Pure: nothing here does I/O.

export * from './constants.ts';
export * from './errors.ts';
export * from './rules.ts';
export * from './frame.ts';
export * from './reader.ts';
