import { Observable, Subject } from 'rxjs';
import { Core, UserAgent, type Invitation, type LogLevel, type Session } from 'sip.js';
import { viewForPeer, type PublicView } from '../../machines/publicView.ts';
import type { MediaPlan } from '../../machines/types.ts';
import type { SipChannel } from '../transport/demux.ts';
import { parseCallerPolicy, type CallerPolicy, type PRIVATE_NETWORKS } from './callerPolicy.ts';
import { InboundScreen } from './inboundScreen.ts';
import { buildOffer, type LocalMedia } from './sdp.ts';
import { RtpSessionDescriptionHandler } from './sessionDescriptionHandler.ts';
import type { RetransmissionTimeout } from './udpRetransmission.ts';
import { udpTransactionTimers } from './udpRetransmission.ts';
import {
  UdpTransport,
  type SipTransportProblem,
  type SipWireRecord,
  type UdpTransportOptions,
} from './udpTransport.ts';

// sip.js ships the reliable-transport wait timers (0 ms) for D, I, J and K; avchat speaks SIP over
// UDP only, where a transaction must outlive its last message to absorb retransmissions (RFC 3261 Table 4).
Object.assign(Core.Timers, udpTransactionTimers());

const defaultCallers = parseCallerPolicy(undefined);
/** Loopback and private networks. */
const DEFAULT_CALLERS: CallerPolicy = defaultCallers.ok ? defaultCallers.value : { any: false, allowed: [] };

/** Our product token in User-Agent and Server headers. */
const PRODUCT = 'avchat/0.1';

/** What {@link createSipUserAgent} needs. */
export interface SipUserAgentOptions {
  /** The SIP channel of the SIP socket (which the NAT probe shares). */
  readonly sip: SipChannel;
  /** The address we put in Via, Contact and SDP: where the peer can reach us. */
  readonly address: string;
  /** The port we put in Contact; defaults to the socket's (differs only behind a port-translating NAT). */
  readonly contactPort?: number;
  /** The user part of our URI, and the only one we answer to (sip.js answers others with 404). */
  readonly user?: string;
  /** The media ports we advertise in SDP. */
  readonly media: LocalMedia;
  /** Told of every SIP message on the wire. */
  readonly onWire?: (record: SipWireRecord) => void;
  /** Told of sip.js warnings and errors. */
  readonly onLog?: (level: LogLevel, category: string, message: string) => void;
  /** Told of messages refused (malformed, too large) or that could not be sent. */
  readonly onTransportProblem?: (problem: SipTransportProblem) => void;
  /** Told when a request or INVITE error response was retransmitted to the end (Timer B, F, H) unanswered. */
  readonly onTimeout?: (timeout: RetransmissionTimeout) => void;
  /** Who may call us; by default loopback and private networks ({@link PRIVATE_NETWORKS}), strangers get 403. */
  readonly callers?: CallerPolicy;
}

/** A started SIP user agent on one UDP port, peer to peer (no registrar, no proxy). */
export interface SipUserAgent {
  /** Our SIP URI, e.g. `sip:avchat@192.0.2.1:5060`. */
  readonly uri: string;
  /** The sip.js user agent. */
  readonly ua: UserAgent;
  /**
   * The next incoming call. While nobody waits here, incoming INVITEs are answered 486 Busy Here
   * (iChat had one call at a time).
   */
  nextInvitation(): Observable<Invitation>;
  /** Every media plan a session negotiates, first offer/answer and every re-INVITE. */
  plans(session: Session): Observable<MediaPlan>;
  /**
   * Advertise our public view (Contact, Via, and the SDP of sessions created from now on), or our
   * local address and ports again (undefined). One call at a time, as iChat: the view is the agent's.
   */
  usePublicView(view: PublicView | undefined): void;
  /**
   * The view for the next incoming call: applied, as {@link viewForPeer} chooses for the caller's
   * address, when its INVITE arrives — before sip.js answers 180 and copies the Contact.
   */
  usePublicViewForIncoming(view: PublicView | undefined, localAddress: string | undefined): void;
  /** Stop the user agent (ends its sessions); the socket is the caller's to close. */
  stop(): Promise<void>;
}

/** Build and start a sip.js user agent over our UDP transport and RTP session description handler. */
export async function createSipUserAgent(options: SipUserAgentOptions): Promise<SipUserAgent> {
  const user = options.user ?? 'avchat';
  const port = options.contactPort ?? options.sip.port;
  const uri = `sip:${user}@${options.address}:${port}`;
  const planStreams = new WeakMap<Session, Subject<MediaPlan>>();
  const planStream = (session: Session) => {
    let stream = planStreams.get(session);
    if (!stream) planStreams.set(session, (stream = new Subject<MediaPlan>()));
    return stream;
  };
  const incoming = new Subject<Invitation>();
  let media: LocalMedia = options.media;
  let forIncoming: { view?: PublicView; localAddress?: string } = {};
  const transportOptions: UdpTransportOptions = {
    sip: options.sip,
    onError: options.onTransportProblem,
    onTimeout: options.onTimeout,
    screen: new InboundScreen({
      user,
      product: PRODUCT,
      // An INVITE is taken only while someone waits for a call (else 486): OPTIONS says the same.
      ready: () => incoming.observed,
      capabilities: () => buildOffer(media, { audio: 'sendrecv', video: 'sendrecv' }, 1),
      callers: options.callers ?? DEFAULT_CALLERS,
    }),
    onWire: (record) => {
      // A new call (an INVITE without a To tag) someone waits for: advertise what suits its caller.
      if (
        record.direction === 'in' &&
        incoming.observed &&
        /^INVITE /.test(record.text) &&
        !/\r\n(To|t)[ \t]*:[^\r\n]*;[ \t]*tag=/i.test(record.text)
      ) {
        usePublicView(viewForPeer(forIncoming.view, record.peer.address, forIncoming.localAddress));
      }
      options.onWire?.(record);
    },
  };

  const ua = new UserAgent({
    uri: UserAgent.makeURI(uri),
    transportConstructor: UdpTransport,
    transportOptions,
    viaHost: options.address,
    contactName: user,
    contactParams: { transport: 'udp' },
    forceRport: true,
    userAgentString: PRODUCT,
    logBuiltinEnabled: false,
    logLevel: 'warn',
    logConfiguration: false,
    logConnector: (level, category, _label, content) => options.onLog?.(level, category, content),
    sessionDescriptionHandlerFactory: (session) =>
      new RtpSessionDescriptionHandler({ local: media, onPlan: (plan) => planStream(session).next(plan) }),
    delegate: {
      onInvite(invitation) {
        if (incoming.observed) {
          incoming.next(invitation);
          return;
        }
        invitation.reject({ statusCode: 486 }).catch(() => {});
      },
    },
  });
  // sip.js builds a Contact without a port; without one, the peer's ACK, re-INVITE and BYE go to 5060.
  ua.contact.uri.port = port;

  function usePublicView(view: PublicView | undefined): void {
    const local = options.media;
    const publicPort = (p: number) => view?.ports[String(p)] ?? p;
    const address = view?.address ?? options.address;
    ua.contact.uri.host = address;
    ua.contact.uri.port = view ? publicPort(options.sip.port) : port;
    // The core writes Via from its copy; the agent drops responses whose Via host is not its own.
    ua.userAgentCore.configuration.viaHost = address;
    ua.configuration.viaHost = address;
    media = view
      ? {
          address,
          audioPort: publicPort(local.audioPort),
          audioRtcpPort: publicPort(local.audioPort + 1),
          videoPort: publicPort(local.videoPort),
          videoRtcpPort: publicPort(local.videoPort + 1),
        }
      : local;
  }
  await ua.start();

  return {
    uri,
    ua,
    nextInvitation: () =>
      new Observable<Invitation>((subscriber) => {
        const sub = incoming.subscribe((invitation) => {
          sub.unsubscribe();
          subscriber.next(invitation);
          subscriber.complete();
        });
        return () => sub.unsubscribe();
      }),
    plans: (session) => planStream(session).asObservable(),
    usePublicView,
    usePublicViewForIncoming: (view, localAddress) => {
      forIncoming = { view, localAddress };
    },
    stop: () => ua.stop(),
  };
}
