import { MEDIA_PORTS, type MediaPortName } from '../../machines/media.ts';
import { openUdpPort, type UdpPort } from '../net/udpPort.ts';

/** The five sockets of one endpoint: SIP and the four media ports, bound for the endpoint's lifetime. */
export interface CallPorts {
  readonly sip: UdpPort;
  readonly media: Readonly<Record<MediaPortName, UdpPort>>;
  /** All five, SIP first: what the NAT probe probes and the router maps. */
  readonly all: readonly UdpPort[];
  /** Close all five; idempotent. */
  close(): Promise<void>;
}

/** Offsets of the media ports from the first (iChat: 16384 video RTP, 16385 video RTCP, 16386 audio RTP, 16387 audio RTCP). */
export const MEDIA_PORT_OFFSETS: Readonly<Record<MediaPortName, number>> = { videoRtp: 0, videoRtcp: 1, audioRtp: 2, audioRtcp: 3 };

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
    return {
      sip,
      media,
      all: opened,
      close: async () => {
        await Promise.all(opened.map((p) => p.close()));
      },
    };
  } catch (err) {
    await Promise.all(opened.map((p) => p.close()));
    throw err;
  }
}
