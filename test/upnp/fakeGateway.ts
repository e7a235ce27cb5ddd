/**
 * A scripted UPnP gateway on loopback for unit tests: an SSDP responder and an HTTP server that
 * serves a device description and answers SOAP actions from a table. Real-router behaviour is
 * tested against miniupnpd (miniupnpd.test.ts); this one exists to make failures happen on cue.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One SOAP request as the fake gateway saw it. */
export interface SeenAction {
  readonly action: string;
  readonly soapAction: string;
  readonly body: string;
}

/** How the fake answers one action: status and body, or nothing at all (to test time-outs). */
export type ActionAnswer = { readonly status: number; readonly body: string } | 'hang';

/** An answer, or a function of the request that picks one (to answer by argument, e.g. by lease). */
export type ActionReply = ActionAnswer | ((request: SeenAction) => ActionAnswer);

/** A SOAP success answer for `action` with the given out arguments. */
export function soapOk(serviceType: string, action: string, args: Record<string, string> = {}): ActionAnswer {
  const inner = Object.entries(args)
    .map(([k, v]) => `<${k}>${v}</${k}>`)
    .join('');
  return {
    status: 200,
    body:
      '<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">' +
      `<s:Body><u:${action}Response xmlns:u="${serviceType}">${inner}</u:${action}Response></s:Body></s:Envelope>`,
  };
}

/** A UPnP fault answer (HTTP 500) as UDA 1.1 §3.2.2 spells it. */
export function soapFault(errorCode: number, errorDescription: string): ActionAnswer {
  return {
    status: 500,
    body:
      '<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">' +
      '<s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail>' +
      `<UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>${errorCode}</errorCode><errorDescription>${errorDescription}</errorDescription></UPnPError>` +
      '</detail></s:Fault></s:Body></s:Envelope>',
  };
}

/** A running fake: its URLs, what it saw, and close(). */
export interface FakeGateway {
  readonly httpPort: number;
  readonly location: string;
  readonly seen: SeenAction[];
  /** How many times the device description was fetched. */
  readonly descriptionFetches: () => number;
  /** Replace the answer for an action. */
  answer(action: string, reply: ActionReply): void;
  close(): Promise<void>;
}

/**
 * Start an HTTP gateway on 127.0.0.1: GET /desc.xml serves `description` (with `{{BASE}}` replaced
 * by http://127.0.0.1:port), POST /ctl answers from the action table.
 */
export async function startFakeGateway(
  description: string,
  answers: Record<string, ActionReply> = {},
): Promise<FakeGateway> {
  const table = new Map(Object.entries(answers));
  const seen: SeenAction[] = [];
  let descriptionFetches = 0;
  const hanging = new Set<ServerResponse>();
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      if (req.method === 'GET' && req.url === '/desc.xml') {
        descriptionFetches += 1;
        res.writeHead(200, { 'Content-Type': 'text/xml' }).end(description.replaceAll('{{BASE}}', base));
        return;
      }
      if (req.method === 'POST' && req.url === '/ctl') {
        const soapAction = String(req.headers.soapaction ?? '');
        const action = soapAction.replace(/^"?[^#]*#/, '').replace(/"$/, '');
        const request = { action, soapAction, body };
        seen.push(request);
        const entry = table.get(action) ?? soapFault(401, 'Invalid Action');
        const reply = typeof entry === 'function' ? entry(request) : entry;
        if (reply === 'hang') {
          hanging.add(res);
          return;
        }
        res.writeHead(reply.status, { 'Content-Type': 'text/xml; charset="utf-8"' }).end(reply.body);
        return;
      }
      res.writeHead(404).end('not here');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const httpPort = (server.address() as AddressInfo).port;
  const base = `http://127.0.0.1:${httpPort}`;
  return {
    httpPort,
    location: `${base}/desc.xml`,
    seen,
    descriptionFetches: () => descriptionFetches,
    answer: (action, reply) => table.set(action, reply),
    close: async () => {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A running SSDP responder on loopback: its port, the M-SEARCH requests it got, and close(). */
export interface FakeSsdp {
  readonly port: number;
  readonly requests: string[];
  close(): Promise<void>;
}

/**
 * Listen for M-SEARCH on 127.0.0.1 and answer each with `reply(request, sender)` (undefined: stay
 * silent). Unicast only: nothing here joins a multicast group.
 */
export async function startFakeSsdp(
  reply: (request: string, from: RemoteInfo) => string | undefined,
): Promise<FakeSsdp> {
  const socket: Socket = createSocket('udp4');
  const requests: string[] = [];
  socket.on('message', (data, rinfo) => {
    const request = data.toString('utf8');
    requests.push(request);
    const answer = reply(request, rinfo);
    if (answer !== undefined) socket.send(answer, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return {
    port: socket.address().port,
    requests,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

/** The ST header of an M-SEARCH request. */
export function searchTargetOf(request: string): string {
  return /^ST:\s*(.*)$/im.exec(request)?.[1]?.trim() ?? '';
}

/** A search response as miniupnpd sends it. */
export function ssdpAnswer(location: string, st: string): string {
  return [
    'HTTP/1.1 200 OK',
    'CACHE-CONTROL: max-age=120',
    `ST: ${st}`,
    `USN: uuid:4d592869-4271-44fb-98e6-8ebc6892a6a6::${st}`,
    'EXT:',
    'SERVER: Debian/12 UPnP/1.1 MiniUPnPd/2.3.1',
    `LOCATION: ${location}`,
    'OPT: "http://schemas.upnp.org/upnp/1/0/"; ns=01',
    '01-NLS: 1732487236',
    'BOOTID.UPNP.ORG: 1732487236',
    'CONFIGID.UPNP.ORG: 1337',
    '',
    '',
  ].join('\r\n');
}
