import type { TransportAddress } from '../../machines/types.ts';
/**
 * Which transport address a media port takes packets from and sends to: symmetric RTP (RFC 4961)
 * with latching (RFC 7362), as deployed endpoints do it behind NATs.
 *
 * The plan names the peer's address and port from its SDP. A peer behind a NAT without a port
 * mapping advertises its private address but sends from its NAT's public one; a host with several
 * addresses may advertise one and send from another. So, until the latch holds:
 * - an acceptable packet (valid RTP with a negotiated payload type, or a valid RTCP compound) from
 *   the advertised address latches, from whatever port (a NAT may have moved the port);
 * - during the latch window after the plan named this peer (the call's first seconds), one from any
 *   other address latches too, if its SSRC is the one expected once that is known (the RTCP port
 *   expects an SSRC the RTP port receives from).
 * Once latched, only packets from the latched address:port are taken, and ours go there (symmetric
 * RTP); everything else is foreign, dropped and counted. Before the latch we send to the advertised
 * address. A plan naming another peer address or port starts over, with a new window.
 */

/** What a packet's source is: the one just latched onto, the latched peer, or anyone else. */
export type SourceVerdict = 'latched' | 'peer' | 'foreign';

/** How long after the plan names a peer a source other than its advertised address may latch. */
export const LATCH_WINDOW_MS = 5000;

/** `::ffff:192.0.2.1` and `192.0.2.1` are the same IPv4 source. */
function plainAddress(address: string): string {
  const lower = address.toLowerCase();
  return lower.startsWith('::ffff:') && lower.includes('.') ? lower.slice(7) : lower;
}

/** The latch of one media port (see the module comment); plain state, no I/O, the clock given. */
export class SourceLatch {
  private expected: TransportAddress | undefined;
  private latched: TransportAddress | undefined;
  private windowStartMs = 0;

  constructor(private readonly windowMs: number = LATCH_WINDOW_MS) {}

  /** The address:port the latch holds, if any. */
  get source(): TransportAddress | undefined {
    return this.latched;
  }

  /** Where our packets go: the latched source, else the advertised address (none without a plan). */
  get destination(): TransportAddress | undefined {
    return this.latched ?? this.expected;
  }

  /** The peer's advertised address and port from the plan (none: nothing is accepted); a change forgets the latch and opens a new window. */
  expect(peer: TransportAddress | undefined, nowMs: number): void {
    const next = peer ? { address: plainAddress(peer.address), port: peer.port } : undefined;
    if (next?.address === this.expected?.address && next?.port === this.expected?.port) return;
    this.expected = next;
    this.latched = undefined;
    this.windowStartMs = nowMs;
  }

  /**
   * Judge the source of a packet that is otherwise acceptable. `ssrcOk` says whether its SSRC is the
   * one expected (true while none is known); it matters only for a source the plan did not name.
   */
  check(address: string, port: number, nowMs: number, ssrcOk = true): SourceVerdict {
    if (!this.expected) return 'foreign';
    const from = plainAddress(address);
    if (this.latched) return this.latched.address === from && this.latched.port === port ? 'peer' : 'foreign';
    const advertised = from === this.expected.address;
    if (!advertised && (nowMs - this.windowStartMs > this.windowMs || !ssrcOk)) return 'foreign';
    this.latched = { address: from, port };
    return 'latched';
  }
}
