import type { NatProbeReport, PortReport } from '../probe/natReport.ts';
import { fixText } from './problemText.ts';
import { textTable } from './textTable.ts';

const PURPOSE = ['SIP', 'video RTP', 'video RTCP', 'audio RTP', 'audio RTCP'];

function seen(x: PortReport['reflector']): string {
  if (!x) return '-';
  return 'external' in x ? `${x.external.address}:${x.external.port}` : x.error.code;
}

/** `avchat probe`'s report for a terminal: the ports as a table, then behaviour, router, verdict. */
export function formatNatProbeReport(report: NatProbeReport): string {
  const servers = [
    report.reflector && `reflector ${report.reflector.server.address}:${report.reflector.server.port}`,
    report.stun && `STUN ${report.stun.server.address}:${report.stun.server.port}`,
  ].filter(Boolean);
  const header = ['port', 'purpose', 'reflector saw', 'STUN saw'];
  const rows = report.ports.map((p, i) => [String(p.localPort), PURPOSE[i] ?? '', seen(p.reflector), seen(p.stun)]);
  const lines = [
    `NAT probe from ${report.localAddress}${servers.length ? ` (${servers.join(', ')})` : ' (no --reflector, no --stun)'}`,
    ...textTable(header, rows).map((l) => `  ${l}`),
  ];

  const behaviour: string[] = [];
  if (report.reflector)
    behaviour.push(
      `reflector: ${report.reflector.verdict}${report.reflector.mapping ? `, mapping ${report.reflector.mapping}` : ''}`,
    );
  if (report.stun?.behaviour)
    behaviour.push(
      `STUN (RFC 5780): mapping ${report.stun.behaviour.mapping}, filtering ${report.stun.behaviour.filtering}`,
    );
  else if (report.stun?.problem)
    behaviour.push(`STUN (RFC 5780): not told — ${report.stun.problem.code}: ${report.stun.problem.message}`);
  lines.push(`NAT behaviour: ${behaviour.length ? behaviour.join('; ') : 'not probed'}`);

  if (report.upnp) {
    lines.push(
      'location' in report.upnp
        ? `UPnP IGD: ${report.upnp.location} (${report.upnp.service.replace(/^urn:schemas-upnp-org:service:/, '')})${report.upnp.externalAddress ? `, external address ${report.upnp.externalAddress}` : ''}`
        : `UPnP IGD: none (${report.upnp.problem.code}: ${report.upnp.problem.message})`,
    );
  }
  if (report.natPmp) {
    lines.push(
      'gateway' in report.natPmp
        ? `NAT-PMP: ${report.natPmp.gateway}, external address ${report.natPmp.externalAddress}`
        : `NAT-PMP: none (${report.natPmp.problem.code}: ${report.natPmp.problem.message})`,
    );
  }
  const { directCalls, summary, fix } = report.callability;
  lines.push(`Direct calls: ${directCalls} — ${summary}`);
  if (fix) lines.push(`To fix: ${fixText(fix)}`);
  return lines.join('\n');
}
