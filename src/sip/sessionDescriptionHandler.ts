import type { BodyAndContentType, SessionDescriptionHandler } from 'sip.js';
import {
  answerOffer,
  buildOffer,
  planFromAnswer,
  type Direction,
  type Directions,
  type LocalMedia,
  type MediaKind,
  type MediaPlan,
} from './sdp.ts';

/** An SDP failure raised to sip.js (which turns it into a 488 or a BYE) and reported to us. */
export class SdpNegotiationError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(`${code}: ${message}`);
    this.name = 'SdpNegotiationError';
  }
}

/** What a {@link RtpSessionDescriptionHandler} needs. */
export interface RtpSdhOptions {
  readonly local: LocalMedia;
  /** Told of every completed offer/answer exchange. */
  readonly onPlan: (plan: MediaPlan) => void;
}

const SDP = 'application/sdp';

/**
 * sip.js session description handler for plain RTP (sip.js ships only a WebRTC one).
 * It writes offers and answers for our four ports and reports each negotiated {@link MediaPlan};
 * media itself is run by the media actors, not here.
 */
export class RtpSessionDescriptionHandler implements SessionDescriptionHandler {
  private wish: Record<MediaKind, Direction> = { audio: 'sendrecv', video: 'sendrecv' };
  private remoteOffer: string | undefined;
  /** True between sending an offer and taking its answer. */
  private offered = false;
  /** The directions of the offer out, which its answer may only narrow. */
  private offeredDirections: Directions | undefined;
  private version = 0;
  private lastPlan: MediaPlan | undefined;

  constructor(private readonly options: RtpSdhOptions) {}

  /** The plan of the last completed exchange, if any. */
  get plan(): MediaPlan | undefined {
    return this.lastPlan;
  }

  /** The directions we will ask for in the next offer or answer. */
  get directions(): Directions {
    return { ...this.wish };
  }

  /** Set the direction we want for one stream (mute = `sendonly` or `inactive`); takes effect at the next exchange. */
  setDirection(kind: MediaKind, direction: Direction): void {
    this.wish[kind] = direction;
  }

  /** Nothing to release: sockets and media belong to the media actors. */
  close(): void {
    this.remoteOffer = undefined;
  }

  /** Write an answer when a remote offer is pending, else a new offer. */
  getDescription(): Promise<BodyAndContentType> {
    this.version += 1;
    if (this.remoteOffer !== undefined) {
      const answered = answerOffer(this.remoteOffer, this.options.local, this.wish, this.version);
      this.remoteOffer = undefined;
      if (!answered.ok) return Promise.reject(new SdpNegotiationError(answered.error.code, answered.error.message));
      this.report(answered.value.plan);
      return Promise.resolve({ body: answered.value.sdp, contentType: SDP });
    }
    this.offered = true;
    this.offeredDirections = { ...this.wish };
    return Promise.resolve({ body: buildOffer(this.options.local, this.wish, this.version), contentType: SDP });
  }

  /** True for SDP, the only body we speak. */
  hasDescription(contentType: string): boolean {
    return contentType.split(';')[0].trim().toLowerCase() === SDP;
  }

  /**
   * Take a remote description. sip.js does not say whether it is an offer or an answer, so we tell by
   * our own state: after we offered, it is the answer; otherwise it is an offer to answer next.
   */
  setDescription(sdp: string): Promise<void> {
    if (this.offered) {
      const plan = planFromAnswer(sdp, this.options.local, this.offeredDirections ?? this.wish);
      this.offered = false;
      if (!plan.ok) return Promise.reject(new SdpNegotiationError(plan.error.code, plan.error.message));
      this.report(plan.value);
      return Promise.resolve();
    }
    this.remoteOffer = sdp;
    return Promise.resolve();
  }

  /** A re-INVITE we sent was refused: keep the previous plan (RFC 3261 §14.1) and forget the offer. */
  rollbackDescription(): Promise<void> {
    this.offered = false;
    this.remoteOffer = undefined;
    return Promise.resolve();
  }

  /** DTMF is not part of iChat's call; refuse it. */
  sendDtmf(): boolean {
    return false;
  }

  private report(plan: MediaPlan): void {
    this.lastPlan = plan;
    this.options.onPlan(plan);
  }
}
