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

/** Decide where a message we are about to send goes. */
export function routeOf(text: string): RoutingInfo {
  const message = readSipText(text);
  const { startLine } = message;
  const status = /^SIP\/2\.0\s+(\d{3})\b/.exec(startLine);
  if (status) {
    const via = headerOf(message, 'via');
    const parsed = via ? parseTopVia(via) : undefined;
    if (!parsed) return unroutable('response has no usable Via header');
    // RFC 3581 §4: answer to the source the request came from when received/rport are present.
    const address = parsed.received ?? parsed.sentBy.address;
    const port = parsed.rport ?? parsed.sentBy.port;
    return ok({ kind: 'response', status: Number(status[1]), destination: { address, port } });
  }
  const request = /^([A-Z]+)\s+(\S+)\s+SIP\/2\.0$/i.exec(startLine.trim());
  if (!request) return unroutable(`not a SIP start line: ${JSON.stringify(startLine.slice(0, 60))}`);
  const route = headerOf(message, 'route');
  const target = route ? sipUriAddress(route.split(',')[0]) : sipUriAddress(request[2]);
  if (!target) return unroutable(`cannot find a host in ${route ? 'Route' : 'Request-URI'} of ${request[1]}`);
  return ok({ kind: 'request', method: request[1].toUpperCase(), destination: target });
}

/**
 * Stamp the top Via of an incoming request with `received` and `rport` (RFC 3261 §18.2.1, RFC 3581),
 * so that responses go back to where the request really came from. Responses pass through unchanged.
 */
export function stampReceived(text: string, source: TransportAddress): string {
  if (/^SIP\/2\.0\s/.test(text)) return text;
  const end = text.indexOf('\r\n\r\n');
  const head = end >= 0 ? text.slice(0, end) : text;
  const m = /\r\n(Via|v)[ \t]*:[ \t]*([^\r\n]*)/i.exec(head);
  if (!m) return text;
  const [firstVia, ...rest] = m[2].split(',');
  let stamped = firstVia.replace(/;\s*received=[^;,\s]*/i, '');
  stamped = /;\s*rport(=\d*)?/i.test(stamped)
    ? stamped.replace(/;\s*rport(=\d*)?/i, `;rport=${source.port}`)
    : `${stamped};rport=${source.port}`;
  stamped = `${stamped};received=${source.address}`;
  const value = [stamped, ...rest].join(',');
  const start = m.index + 2;
  const lineEnd = start + m[0].length - 2;
  return `${text.slice(0, start)}${m[1]}: ${value}${text.slice(lineEnd)}`;
}
