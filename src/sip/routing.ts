/**
 * Just enough parsing of a SIP message's text to route it over UDP (RFC 3261 §18):
 * where a request goes (first Route, else Request-URI) and where a response goes (top Via's
 * received/rport, else its sent-by). Pure functions over text; they return values, never throw.
 */

import { fail, ok, type Result } from '../../machines/result.ts';
import type { TransportAddress } from '../../machines/types.ts';
import { parseHostPort } from '../net/hostPort.ts';
import { sipUriAddress } from './sipUri.ts';
import { headerOf, readSipText } from './sipText.ts';

/** What routing needs of one message, or why it could not be read. */
export type RoutingInfo = Result<Route, { readonly code: 'SIP_UNROUTABLE'; readonly message: string }>;

/** Where one message goes. */
export type Route =
  | { readonly kind: 'request'; readonly method: string; readonly destination: TransportAddress }
  | { readonly kind: 'response'; readonly status: number; readonly destination: TransportAddress };

const DEFAULT_SIP_PORT = 5060;

function unroutable(message: string): RoutingInfo {
  return fail('SIP_UNROUTABLE', message);
}

/** Parse the first value of a Via header: sent-by and the received/rport parameters. */
export function parseTopVia(
  value: string,
): { sentBy: TransportAddress; received?: string; rport?: number } | undefined {
  const first = value.split(',')[0].trim();
  const m = /^SIP\s*\/\s*2\.0\s*\/\s*[A-Za-z]+\s+([^;\s]+)\s*(.*)$/i.exec(first);
  if (!m) return undefined;
  const sentBy = parseHostPort(m[1], DEFAULT_SIP_PORT);
  if (!sentBy.ok) return undefined;
  const params = new Map<string, string>();
  for (const p of m[2].split(';')) {
    const [k, v] = p.split('=');
    if (k?.trim()) params.set(k.trim().toLowerCase(), (v ?? '').trim());
  }
  const rport = Number(params.get('rport'));
  return {
    sentBy: sentBy.value,
    received: params.get('received') || undefined,
    rport: Number.isInteger(rport) && rport > 0 && rport < 65536 ? rport : undefined,
  };
}

/** The parts of a message routing reads: what {@link checkSipMessage} gives (`SipMessageText`) has them. */
export interface RoutableMessage {
  readonly kind: 'request' | 'response';
  readonly method: string;
  readonly requestUri?: string;
  readonly status?: number;
  readonly headers: ReadonlyArray<readonly [string, string]>;
}

/** Decide where a message we are about to send goes, from the message as already read. */
export function routeOfMessage(message: RoutableMessage): RoutingInfo {
  if (message.kind === 'response') {
    const via = headerOf(message, 'via');
    const parsed = via ? parseTopVia(via) : undefined;
    if (!parsed) return unroutable('response has no usable Via header');
    // RFC 3581 §4: answer to the source the request came from when received/rport are present.
    const address = parsed.received ?? parsed.sentBy.address;
    const port = parsed.rport ?? parsed.sentBy.port;
    return ok({ kind: 'response', status: message.status ?? 0, destination: { address, port } });
  }
  const route = headerOf(message, 'route');
  const target = route ? sipUriAddress(route.split(',')[0]) : sipUriAddress(message.requestUri ?? '');
  if (!target) return unroutable(`cannot find a host in ${route ? 'Route' : 'Request-URI'} of ${message.method}`);
  return ok({ kind: 'request', method: message.method.toUpperCase(), destination: target });
}

/** Decide where a message we are about to send goes, from its text (when it could not be checked). */
export function routeOf(text: string): RoutingInfo {
  const { startLine, headers } = readSipText(text);
  const status = /^SIP\/2\.0\s+(\d{3})\b/.exec(startLine);
  if (status) return routeOfMessage({ kind: 'response', method: '', status: Number(status[1]), headers });
  const request = /^([A-Z]+)\s+(\S+)\s+SIP\/2\.0$/i.exec(startLine.trim());
  if (!request) return unroutable(`not a SIP start line: ${JSON.stringify(startLine.slice(0, 60))}`);
  return routeOfMessage({ kind: 'request', method: request[1], requestUri: request[2], headers });
}
