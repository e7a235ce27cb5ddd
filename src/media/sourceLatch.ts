/**
 * Which transport address RTP is taken from (RFC 3550 §8 in spirit, and what SIP endpoints commonly
 * do behind NATs): only the peer's address from the negotiated plan, from any port at first — a NAT
 * may have moved the port — then only from the first address:port that sent an acceptable packet.
 * Everything else is foreign. A plan naming another peer address or port starts over.
 */

/** What a packet's source is: the one just latched onto, the latched peer, or anyone else. */
export type SourceVerdict = 'latched' | 'peer' | 'foreign';

/** `::ffff:192.0.2.1` and `192.0.2.1` are the same IPv4 source. */
function plainAddress(address: string): string {
  const lower = address.toLowerCase();
  return lower.startsWith('::ffff:') && lower.includes('.') ? lower.slice(7) : lower;
}

/** The latch of one RTP port (see the module comment); plain state, no I/O. */
export class SourceLatch {
  private expected: { address: string; port: number } | undefined;
  private latched: { address: string; port: number } | undefined;

  /** The address:port the latch holds, if any. */
  get source(): { readonly address: string; readonly port: number } | undefined {
    return this.latched;
  }

  /** The peer's address and RTP port from the plan (none: nothing is accepted); a change forgets the latch. */
  expect(peer: { readonly address: string; readonly rtpPort: number } | undefined): void {
    const next = peer ? { address: plainAddress(peer.address), port: peer.rtpPort } : undefined;
    if (next?.address === this.expected?.address && next?.port === this.expected?.port) return;
    this.expected = next;
    this.latched = undefined;
  }

  /** Judge the source of a packet that is otherwise acceptable; the first one from the peer's address latches. */
  check(address: string, port: number): SourceVerdict {
    const from = plainAddress(address);
    if (!this.expected || from !== this.expected.address) return 'foreign';
    if (!this.latched) {
      this.latched = { address: from, port };
      return 'latched';
    }
    return this.latched.port === port ? 'peer' : 'foreign';
  }
}
