import { Observable, Subject } from 'rxjs';
import { UserAgent, type Invitation, type LogLevel, type Session } from 'sip.js';
import type { MediaPlan } from '../../machines/types.ts';
import type { UdpPort } from '../net/udpPort.ts';
import type { LocalMedia } from './sdp.ts';
import { RtpSessionDescriptionHandler } from './sessionDescriptionHandler.ts';
import { UdpTransport, type SipWireRecord, type UdpTransportOptions } from './udpTransport.ts';

/** What {@link createSipUserAgent} needs. */
export interface SipUserAgentOptions {
  /** The bound SIP socket (shared with the NAT probe). */
  readonly udpPort: UdpPort;
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
  /** Stop the user agent (ends its sessions); the socket is the caller's to close. */
  stop(): Promise<void>;
}

/** Build and start a sip.js user agent over our UDP transport and RTP session description handler. */
export async function createSipUserAgent(options: SipUserAgentOptions): Promise<SipUserAgent> {
  const user = options.user ?? 'avchat';
  const port = options.contactPort ?? options.udpPort.port;
  const uri = `sip:${user}@${options.address}:${port}`;
  const planStreams = new WeakMap<Session, Subject<MediaPlan>>();
  const planStream = (session: Session) => {
    let stream = planStreams.get(session);
    if (!stream) planStreams.set(session, (stream = new Subject<MediaPlan>()));
    return stream;
  };
  const incoming = new Subject<Invitation>();
  const transportOptions: UdpTransportOptions = { udpPort: options.udpPort, onWire: options.onWire };

  const ua = new UserAgent({
    uri: UserAgent.makeURI(uri),
    transportConstructor: UdpTransport,
    transportOptions,
    viaHost: options.address,
    contactName: user,
    contactParams: { transport: 'udp' },
    forceRport: true,
    userAgentString: 'avchat/0.1',
    logBuiltinEnabled: false,
    logLevel: 'warn',
    logConfiguration: false,
    logConnector: (level, category, _label, content) => options.onLog?.(level, category, content),
    sessionDescriptionHandlerFactory: (session) =>
      new RtpSessionDescriptionHandler({ local: options.media, onPlan: (plan) => planStream(session).next(plan) }),
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
    stop: () => ua.stop(),
  };
}
