// Keeps one client connection's replies in request order: each request takes
// the next slot when it arrives; a reply fills its slot whenever the daemon
// answers; only the filled slots at the head may leave. Pure.

export class ReplyOrder {
  /** sequence number of the head slot (the oldest request not yet sent back) */
  private head = 0;
  /** sequence number the next request gets */
  private next = 0;
  private readonly filled = new Map<number, Buffer>();

  /** Requests whose replies have not left yet (answered or not). */
  get outstanding(): number {
    return this.next - this.head;
  }

  /** Takes the slot of a new request; returns its sequence number. */
  reserve(): number {
    return this.next++;
  }

  /** Stores the reply of slot `seq`. A slot is filled once. */
  fill(seq: number, reply: Buffer): void {
    if (seq < this.head || seq >= this.next || this.filled.has(seq)) {
      throw new Error(`reply order: slot ${seq} is not open (head ${this.head}, next ${this.next})`);
    }
    this.filled.set(seq, reply);
  }

  /** Removes and returns the replies that may be sent now, in request order (possibly none). */
  take(): Buffer[] {
    const out: Buffer[] = [];
    for (let r = this.filled.get(this.head); r !== undefined; r = this.filled.get(this.head)) {
      out.push(r);
      this.filled.delete(this.head);
      this.head++;
    }
    return out;
  }
}
