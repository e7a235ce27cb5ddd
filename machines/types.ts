import type { Fix } from './fixes.ts';

/**
 * Plain-data types the statecharts exchange with their I/O actors. Pure: no Node, no DOM, so the
 * machines run unchanged in Node, a browser or a test. Every value here serialises to JSON, which
 * the inspector needs.
 */

/** An SDP stream direction (RFC 3264 §5.1), from the point of view of the side that holds it. */
export type Direction = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';

/** Media kinds a call carries. */
export type MediaKind = 'audio' | 'video';

/**
 * A transport address: an IP address and a UDP port. (Where a user typed it, `address` may still be
 * a host name until the CLI looks it up; nothing taken from a peer's message ever is one.)
 */
export interface TransportAddress {
  readonly address: string;
  readonly port: number;
}

/** One negotiated stream: what to send where, and whether to send and/or receive. */
export interface StreamPlan {
  readonly kind: MediaKind;
  readonly payloadType: number;
  readonly codec: string;
  readonly clockRate: number;
  /**
   * The peer's format parameters for this payload type (its `a=fmtp`), which bound what we send:
   * e.g. `CIF=2;QCIF=2`, the H.263 picture sizes it decodes. Absent when it gave none.
   */
  readonly fmtp?: string;
  readonly local: { readonly rtpPort: number; readonly rtcpPort: number };
  readonly remote: { readonly address: string; readonly rtpPort: number; readonly rtcpPort: number };
  /** Our direction after negotiation: `sendonly` means we send and do not expect to receive. */
  readonly direction: Direction;
}

/** The outcome of one offer/answer exchange; a stream that was declined is absent. */
export interface MediaPlan {
  readonly audio?: StreamPlan;
  readonly video?: StreamPlan;
}

/** A failure as plain data: a code and a message that names the fix. */
export interface Problem {
  readonly code: string;
  /** The cause, in words that name no UI's options. */
  readonly message: string;
  /** What would cure it, for a UI to word (machines/fixes.ts). */
  readonly fix?: Fix;
}

/** What the NAT probe learnt for one local port. */
export type PortProbe =
  | {
      readonly localPort: number;
      readonly ok: true;
      readonly external: TransportAddress;
      readonly rttMs: number;
      readonly attempts: number;
    }
  | { readonly localPort: number; readonly ok: false; readonly error: Problem };

/**
 * RFC 4787 §4.1 mapping behaviour, as seen by probing one call port against two reflector
 * addresses: the same public address and port for both is `endpointIndependent`; another one for a
 * reflector at another port of the same IP is `addressAndPortDependent` ("symmetric"); another one
 * for a reflector at another IP is at least `addressDependent`. `unknown`: no second answer.
 */
export type MappingBehaviour = 'endpointIndependent' | 'addressDependent' | 'addressAndPortDependent' | 'unknown';

/** The NAT probe's report: per port, plus a one-word verdict. */
export interface NatReport {
  readonly results: readonly PortProbe[];
  readonly verdict: string;
  /** The mapping behaviour, when the probe asked a second reflector address. */
  readonly mapping?: MappingBehaviour;
  /** What the second reflector address saw (the first call port, probed again). */
  readonly mappingCheck?: PortProbe;
}

/** One port mapping made on the home router. */
export interface PortMappingEntry {
  readonly protocol: 'UDP' | 'TCP';
  readonly internalPort: number;
  readonly externalPort: number;
  readonly internalClient: string;
  readonly leaseSeconds: number;
}

/** How a router maps ports: UPnP IGD, PCP (RFC 6887) or NAT-PMP (RFC 6886). */
export type GatewayKind = 'upnp' | 'pcp' | 'natpmp';

/** A gateway found by discovery. */
export interface GatewayInfo {
  /**
   * Where to reach it: the URL of its device description for a UPnP IGD, its LAN IPv4 address for
   * NAT-PMP (RFC 6886, UDP 5351).
   */
  readonly location: string;
  /** The protocol it speaks to us; absent means UPnP (the only kind before NAT-PMP). */
  readonly kind?: GatewayKind;
  readonly externalAddress?: string;
}

/** Which side of the call this endpoint is. */
export type CallRole = 'caller' | 'callee';

/** Why a call ended; exactly one per call. */
export type EndReason =
  | 'localHangup'
  | 'remoteHangup'
  | 'cancelled'
  | 'rejected'
  | 'noAnswer'
  /** No RTP and no RTCP on any media port for the dead-peer time (10 s), as iChat did. */
  | 'deadPeer'
  | 'failed';

/** How a call ended. */
export interface CallOutcome {
  readonly reason: EndReason;
  /** SIP status of a reject, when there was one. */
  readonly status?: number;
  readonly problem?: Problem;
}
