import { MEDIA_PORTS, type MediaPortName } from '../../machines/media.ts';
import { openUdpPort, type UdpChannel, type UdpPort } from '../net/udpPort.ts';
import { mediaChannels, signallingChannels, type MediaChannels, type SignallingChannels } from '../transport/demux.ts';

/** The five sockets of one endpoint: SIP and the four media ports, bound for the endpoint's lifetime. */
export interface CallPorts {
  readonly sip: UdpPort;
  readonly media: Readonly<Record<MediaPortName, UdpPort>>;
  /** All five, SIP first: what the router maps. */
  readonly all: readonly UdpPort[];
  /** Each socket's datagrams told apart once (src/transport/demux.ts), for every phase that reads it. */
  readonly channels: {
    readonly sip: SignallingChannels;
    readonly media: Readonly<Record<MediaPortName, MediaChannels>>;
  };
  /** The probe channel of all five, SIP first: what the NAT probe sends from and reads. */
  readonly probes: readonly UdpChannel[];
  /** Close all five; idempotent. */
  close(): Promise<void>;
}

/** Offsets of the media ports from the first (iChat: 16384 video RTP, 16385 video RTCP, 16386 audio RTP, 16387 audio RTCP). */
export const MEDIA_PORT_OFFSETS: Readonly<Record<MediaPortName, number>> = {
  videoRtp: 0,
  videoRtcp: 1,
  audioRtp: 2,
  audioRtcp: 3,
};

const PURPOSE: Readonly<Record<MediaPortName, string>> = {
  videoRtp: 'video RTP',
  videoRtcp: 'video RTCP',
  audioRtp: 'audio RTP',
  audioRtcp: 'audio RTCP',
};

/**
 * Bind the SIP port and the four media ports. Each socket is shared by the phases that need it (the
 * NAT probe sends from the same socket the call later uses, so the NAT mapping it opens is the right
 * one). On any failure, the ports already bound are closed again before the error is returned.
 */
export async function openCallPorts(opts: { address: string; sipPort: number; mediaPort: number }): Promise<CallPorts> {
  const opened: UdpPort[] = [];
  try {
    const sip = await openUdpPort({ port: opts.sipPort, address: opts.address, purpose: 'SIP', option: '--sip-port' });
    opened.push(sip);
    const media = {} as Record<MediaPortName, UdpPort>;
    for (const name of MEDIA_PORTS) {
      const port = await openUdpPort({
        port: opts.mediaPort + MEDIA_PORT_OFFSETS[name],
        address: opts.address,
        purpose: PURPOSE[name],
        option: '--media-port',
      });
      opened.push(port);
      media[name] = port;
    }
    const channels = { sip: signallingChannels(sip), media: {} as Record<MediaPortName, MediaChannels> };
    for (const name of MEDIA_PORTS) channels.media[name] = mediaChannels(media[name]);
    return {
      sip,
      media,
      all: opened,
      channels,
      probes: [channels.sip.probe, ...MEDIA_PORTS.map((name) => channels.media[name].probe)],
      close: async () => {
        await Promise.all(opened.map((p) => p.close()));
      },
    };
  } catch (err) {
    await Promise.all(opened.map((p) => p.close()));
    throw err;
  }
}
