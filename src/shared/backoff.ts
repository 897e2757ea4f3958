// Exponential backoff: the one formula behind every retry loop (processor
// restarts, peer redials, degraded-group retries, the client's failed
// servers). Pure: the caller keeps the attempt count and adds any jitter.

/** `initialMs` × 2^`attempt` (attempt 0 → initialMs), capped at `maxMs`. */
export function backoffMs(attempt: number, initialMs: number, maxMs: number): number {
  return Math.min(maxMs, initialMs * 2 ** Math.min(Math.max(0, attempt), 30));
}
