// Collects what one call into the core produces: messages to send, the hard
// state to persist first (if it changed) and events for the shell.

import type { Message, Outgoing } from './messages.ts';
import type { ClusterEvent, HardState, NodeId } from './types.ts';

/** The result of every ClusterNode call. The shell writes `persist` durably BEFORE sending `messages`. */
export interface Output {
  messages: Outgoing[];
  persist?: HardState;
  events: ClusterEvent[];
}

/** A message without the fields the outbox stamps (term, from). */
export type MessageBody = Message extends infer M ? (M extends Message ? Omit<M, 'term' | 'from'> : never) : never;

export class Outbox {
  readonly out: Output = { messages: [], events: [] };
  private readonly self: NodeId;
  private readonly currentTerm: () => number;

  constructor(self: NodeId, currentTerm: () => number) {
    this.self = self;
    this.currentTerm = currentTerm;
  }

  /** Sends `body` stamped with this node's id and current term (or `term` when given: pre-vote). */
  send(to: NodeId, body: MessageBody, term = this.currentTerm()): void {
    this.out.messages.push({ to, msg: { ...body, term, from: this.self } as Message });
  }

  persist(state: HardState): void {
    this.out.persist = { ...state };
  }

  event(e: ClusterEvent): void {
    this.out.events.push(e);
  }
}
