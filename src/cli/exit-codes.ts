// The one catalog of `kv` exit codes; `kv --help` prints it.

export const ExitCode = {
  OK: 0,
  NOT_FOUND: 1,
  BAD_INPUT: 2,
  UNREACHABLE: 3,
  SERVER_ERROR: 4,
} as const;

export const exitCodeHelp = `Exit codes:
  0  ok / found
  1  not found (get, del)
  2  bad input or usage
  3  no server reachable (or deadline passed)
  4  the server replied with an error`;
