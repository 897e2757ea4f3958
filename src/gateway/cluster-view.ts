// Reads the cluster's own view of its daemons, cheaply: the leader's admin
// status (loopback admin port, one JSON line) says per daemon whether the
// leader hears it and whether its processors are alive. The gateway avoids
// the daemons it flags (its own probes still decide up or down). The
// interpretation is pure; the poller is the only I/O here.

import { adminRequest } from '../shared/admin-client.ts';

/** The part of a daemon's entry in the leader's view the gateway reads. */
export interface ViewedDaemon {
  id: string;
  role: string;
  status: { processorsAlive: number; degradedGroups: string[] } | null;
}

export interface ViewReply {
  role?: string;
  leaderId?: string | null;
  daemons?: ViewedDaemon[];
}

/**
 * Daemon ids the leader's view flags: not heard within an election timeout,
 * with degraded groups, or with no processor alive. Undefined when the view
 * is not a leader's (a follower knows only itself).
 */
export function flaggedDaemons(view: ViewReply | null | undefined): Set<string> | undefined {
  if (!view || view.role !== 'leader' || !Array.isArray(view.daemons)) return undefined;
  const flagged = new Set<string>();
  for (const d of view.daemons) {
    if (d.role === 'unreachable' || (d.status && (d.status.degradedGroups.length > 0 || d.status.processorsAlive === 0))) flagged.add(d.id);
  }
  return flagged;
}

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

export interface AdminEndpoint {
  id: string;
  host: string;
  adminPort: number;
}

/**
 * Asks one daemon's admin port for its status and returns the cluster part,
 * or why it could not. The daemon named as leader by an earlier answer is
 * asked first, so one request usually reaches the leader.
 */
export async function fetchView(endpoint: AdminEndpoint, timeoutMs: number): Promise<ViewReply | Error> {
  try {
    const reply = await adminRequest(endpoint.adminPort, { op: 'status' }, endpoint.host, timeoutMs);
    if (!reply?.ok) return new Error(`admin status of ${endpoint.id} refused: ${reply?.error}`);
    return (reply.status?.cluster ?? {}) as ViewReply;
  } catch (e) {
    return e as Error;
  }
}
