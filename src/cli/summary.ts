import { MEDIA_PORTS, type MediaPortName } from '../../machines/media.ts';
import type { NatProbeOutput } from '../../machines/natProbe.ts';
import type { PortStats } from '../media/mediaBus.ts';
import { problemText } from './problemText.ts';

/**
 * A per-port table of what a call's media did: packets, bytes, loss, jitter, RTT, what the peer's
 * reports say it lost of ours (`peer lost`), reports; and what
 * the receive path refused — `dropped` (unreadable, another payload type, a foreign source or a loop
 * of our own SSRC), `late/dup` (the jitter buffer's late and duplicate packets) and `JB ms` (its depth).
 */
export function formatPortSummary(endpoint: string, stats: Record<MediaPortName, PortStats>): string {
  const header = [
    'port',
    'local',
    'sent pkts',
    'sent bytes',
    'recv pkts',
    'recv bytes',
    'PT',
    'lost',
    'loss %',
    'jitter ms',
    'RTT ms',
    'peer lost',
    'SR/RR sent',
    'SR/RR recv',
    'dropped',
    'late/dup',
    'JB ms',
  ];
  const rows = MEDIA_PORTS.map((name) => {
    const s = stats[name];
    return [
      name,
      String(s.localPort),
      String(s.packetsSent),
      String(s.bytesSent),
      String(s.packetsReceived),
      String(s.bytesReceived),
      s.payloadTypes.join(',') || '-',
      String(s.lost),
      (s.fractionLost * 100).toFixed(1),
      s.jitterMs.toFixed(2),
      s.rttMs === undefined ? '-' : s.rttMs.toFixed(2),
      s.peerReport === undefined ? '-' : String(s.peerReport.lost),
      `${s.reportsSent.sr}/${s.reportsSent.rr}`,
      `${s.reportsReceived.sr}/${s.reportsReceived.rr}`,
      String(s.dropped + s.droppedForeign + s.droppedLooped),
      `${s.jitterBuffer.late}/${s.jitterBuffer.duplicates}`,
      s.jitterBuffer.depthMs.toFixed(0),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [`media summary for ${endpoint}`, line(header), ...rows.map(line)].join('\n');
}

/** One line on what the NAT probe learnt: the verdict, then each port's public address or error. */
export function formatNatReport(endpoint: string, nat: NatProbeOutput): string {
  if (nat.status === 'skipped') return `${endpoint} NAT probe: skipped (no --reflector)`;
  const ports = (nat.report?.results ?? []).map((r) =>
    r.ok ? `${r.localPort}→${r.external.address}:${r.external.port}` : `${r.localPort}: ${r.error.code}`,
  );
  const verdict = nat.report?.verdict ?? nat.problem?.code ?? nat.status;
  const mapping = nat.report?.mapping ? `; mapping ${nat.report.mapping}` : '';
  return `${endpoint} NAT probe: ${verdict}${ports.length ? ` (${ports.join(', ')}${mapping})` : ''}${nat.problem ? ` — ${problemText(nat.problem, false)}` : ''}`;
}
