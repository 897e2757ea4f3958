// Public surface of the peer transport: the transport, its options and the
// cluster-secret helper. The framing and handshake modules are internals.

export { PeerTransport, type TransportEvents } from './transport.ts';
export { maxPayloadBytes, TRANSPORT_DEFAULTS, type PeerAddress, type TransportLogger, type TransportOptions } from './options.ts';
export { loadOrCreateSecret, parseSecret } from './secret.ts';
