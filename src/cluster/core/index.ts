// The pure cluster core: what the shell (sockets, timers, SQLite) uses.
// See docs/cluster-core.md.

export { ClusterNode, type ClusterNodeOptions } from './node.ts';
export type { Output } from './outbox.ts';
export type { ClusterView, DaemonView } from './monitor.ts';
export type { Message, MessageType, Outgoing } from './messages.ts';
export { encodeMessage, decodeMessage, entriesPerMessage, CODEC_VERSION, defaultCodecLimits, type CodecLimits, type DecodeResult } from './codec.ts';
export {
  compareVersions,
  bucketOf,
  rowHash,
  fnv1a,
  defaultCoreSettings,
  InvariantError,
  type NodeId,
  type Version,
  type Entry,
  type ChangePage,
  type Replica,
  type HardState,
  type Role,
  type DaemonStatus,
  type ClusterEvent,
  type CoreSettings,
} from './types.ts';
