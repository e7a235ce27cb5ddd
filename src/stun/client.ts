import { randomBytes } from 'node:crypto';
import { stunWaits, udpExchange } from '../net/udpExchange.ts';
import type { UdpPort } from '../net/udpPort.ts';
import {
  encodeBindingRequest,
  METHOD_BINDING,
  parseStunMessage,
  TRANSACTION_ID_BYTES,
  unknownRequiredAttributes,
  type StunChangeRequest,
  type StunMessage,
} from './message.ts';
import { ok, type Result } from '../../machines/result.ts';
import type { TransportAddress } from '../../machines/types.ts';

/** Where the STUN server listens; `address` is an IPv4 literal (resolve host names first). */
export interface StunServer {
  readonly address: string;
  readonly port: number;
}

/** How to run one Binding transaction (RFC 8489 §6.2.1). */
export interface StunBindingOptions {
  /** Initial retransmission timeout; default 500 ms. */
  readonly rtoMs?: number;
  /** Rc, the number of requests sent in all; default 7. */
  readonly maxRequests?: number;
  /** Rm: after the last request, wait Rm × RTO for an answer; default 16. */
  readonly finalWaitFactor?: number;
  /** SOFTWARE to send in the request; none by default. */
  readonly software?: string;
  /**
   * CHANGE-REQUEST to send (RFC 5780 §7.2): the server is asked to answer from its other IP address
   * and/or port, so the answer is taken from any source (see {@link stunBinding}). None by default.
   */
  readonly changeRequest?: StunChangeRequest;
  readonly signal?: AbortSignal;
}

/** Why a Binding gave no address, with a message that names the cause and the fix. */
export interface StunBindingError {
  readonly code: 'TIMEOUT' | 'STUN_ERROR' | 'BAD_RESPONSE' | 'SEND_FAILED' | 'PORT_CLOSED' | 'BAD_SERVER' | 'ABORTED';
  readonly message: string;
  /** For STUN_ERROR: the ERROR-CODE the server sent. */
  readonly stunCode?: number;
}

/** What a Binding found: the public address the server saw the request come from, and more. */
export interface StunBinding {
  readonly mapped: TransportAddress;
  /** Where the answer came from, as our socket saw it (differs from the server for a CHANGE-REQUEST). */
  readonly from: TransportAddress;
  /** OTHER-ADDRESS (RFC 5780), or RFC 3489's CHANGED-ADDRESS: the server's alternate address and port. */
  readonly otherAddress?: TransportAddress;
  /** RESPONSE-ORIGIN (RFC 5780), or RFC 3489's SOURCE-ADDRESS: where the server says it answered from. */
  readonly responseOrigin?: TransportAddress;
  /** From the first request to the answer (so it includes the waits for lost requests). */
  readonly rttMs: number;
  /** Requests sent before the answer came. */
  readonly requests: number;
}

/** The public address the server saw the request come from, or why not. */
export type StunBindingResult = Result<StunBinding, StunBindingError>;

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function sameId(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

function errorAnswer(server: string, m: StunMessage, askedForChange: boolean): StunBindingError {
  const code = m.errorCode?.code;
  const said =
    code === undefined ? 'an error response without ERROR-CODE' : `${code} ${m.errorCode?.reason ?? ''}`.trim();
  const fix =
    code === 401 || code === 431
      ? 'it wants credentials, which avchat does not send; use a STUN server that answers anonymous Binding requests'
      : code === 300
        ? 'it redirects (ALTERNATE-SERVER), which avchat does not follow; use the alternate server directly'
        : code === 420 && askedForChange
          ? 'it does not do CHANGE-REQUEST (RFC 5780 NAT behaviour discovery); use a STUN server with two IP addresses, e.g. coturn with two --listening-ip'
          : 'check that --stun names a plain STUN server';
  return { code: 'STUN_ERROR', stunCode: code, message: `the STUN server ${server} answered ${said}; ${fix}` };
}

/**
 * Send one STUN Binding request from `port` (so the NAT mapping learnt is that port's own) and
 * resolve with the address the server saw. Retransmits over UDP as RFC 8489 §6.2.1 says: "a
 * client SHOULD retransmit a STUN request message starting with an interval of RTO, doubling
 * after each retransmission" — requests at 0, RTO, 3·RTO, 7·RTO, … — "Retransmissions continue
 * until a response is received, or until a total of Rc requests have been sent", then "a
 * duration equal to Rm times the RTO" is waited after the last one. Only an answer carrying our
 * transaction id counts, and only from the server's address and port unless a CHANGE-REQUEST was
 * sent; anything else on the port is ignored. Never rejects; nothing (timer, subscription, abort
 * listener) outlives the promise.
 *
 * With a CHANGE-REQUEST the server answers from elsewhere, RFC 5780 §6.1 (Table 1): "When both
 * flags are set, the source IP address of the Binding Response MUST be Ca and the source port of the
 * Binding Response MUST be Cp" (its other address and port; one flag changes only that one). The
 * client learns Ca:Cp only from an earlier answer's OTHER-ADDRESS, so such an answer is matched by
 * its 96-bit random transaction id alone (as RFC 8489 matches responses to requests) and reported
 * with `from`, for the caller to check against OTHER-ADDRESS.
 */
export function stunBinding(
  port: UdpPort,
  server: StunServer,
  opts: StunBindingOptions = {},
): Promise<StunBindingResult> {
  const rtoMs = Math.max(1, opts.rtoMs ?? 500);
  const maxRequests = Math.max(1, Math.floor(opts.maxRequests ?? 7));
  const finalWaitFactor = Math.max(0, opts.finalWaitFactor ?? 16);
  const where = `${server.address}:${server.port}`;
  if (!IPV4.test(server.address) || !Number.isInteger(server.port) || server.port < 1 || server.port > 0xffff) {
    return Promise.resolve({
      ok: false,
      error: {
        code: 'BAD_SERVER',
        message: `the STUN server ${where} is not an IPv4 address and port 1–65535; pass --stun a.b.c.d:port (resolve host names first)`,
      },
    });
  }
  const transactionId = new Uint8Array(randomBytes(TRANSACTION_ID_BYTES));
  const changeRequest =
    opts.changeRequest && (opts.changeRequest.changeIp || opts.changeRequest.changePort)
      ? opts.changeRequest
      : undefined;
  const request = encodeBindingRequest(transactionId, { software: opts.software, changeRequest, fingerprint: true });
  const waits = stunWaits(rtoMs, maxRequests, finalWaitFactor);
  const giveUpAfterMs = waits.reduce((sum, w) => sum + w, 0);
  const fail = (code: StunBindingError['code'], message: string): StunBindingResult => ({
    ok: false,
    error: { code, message },
  });

  return udpExchange<StunBindingResult>({
    port,
    to: server,
    request,
    waits,
    // With a CHANGE-REQUEST the answer comes from the server's other address (see above).
    fromAnywhere: changeRequest !== undefined,
    signal: opts.signal,
    read: (d, progress) => {
      const parsed = parseStunMessage(d.data);
      if (!parsed.ok) return undefined;
      const m = parsed.value;
      if (m.method !== METHOD_BINDING || !sameId(m.transactionId, transactionId)) return undefined;
      if (m.class === 'error') return { ok: false, error: errorAnswer(where, m, changeRequest !== undefined) };
      if (m.class !== 'success') return undefined;
      // RFC 8489 §6.3.3: unknown comprehension-required attributes fail the transaction.
      const unknown = unknownRequiredAttributes(m);
      if (unknown.length > 0) {
        const types = unknown.map((t) => `0x${t.toString(16).padStart(4, '0')}`).join(', ');
        return fail(
          'BAD_RESPONSE',
          `the STUN server ${where} answered with attributes avchat must understand but does not (${types}); use a plain STUN server`,
        );
      }
      const mapped = m.xorMappedAddress ?? m.mappedAddress;
      if (!mapped)
        return fail(
          'BAD_RESPONSE',
          `the STUN server ${where} answered without XOR-MAPPED-ADDRESS or MAPPED-ADDRESS; use an RFC 5389/8489 STUN server`,
        );
      const otherAddress = m.otherAddress ?? m.changedAddress;
      const responseOrigin = m.responseOrigin ?? m.sourceAddress;
      return ok({
        mapped: { address: mapped.address, port: mapped.port },
        from: { address: d.address, port: d.port },
        ...(otherAddress && { otherAddress: { address: otherAddress.address, port: otherAddress.port } }),
        ...(responseOrigin && { responseOrigin: { address: responseOrigin.address, port: responseOrigin.port } }),
        rttMs: performance.now() - progress.firstSentAt,
        requests: progress.sent,
      });
    },
    timedOut: ({ sent }) =>
      fail(
        'TIMEOUT',
        `no answer from the STUN server ${where} after ${sent} request${sent === 1 ? '' : 's'} (${seconds(giveUpAfterMs)}); check --stun host:port and that UDP to it is allowed`,
      ),
    aborted: () => fail('ABORTED', `the STUN Binding to ${where} was stopped before an answer came`),
    sendFailed: (err) =>
      fail(
        'SEND_FAILED',
        `could not send the STUN Binding to ${where} from UDP ${port.port} (${err.message}); check --stun and the local network`,
      ),
    portClosed: () =>
      fail(
        'PORT_CLOSED',
        `UDP ${port.port} closed during the STUN Binding to ${where}; keep the port open until the Binding ends`,
      ),
  });
}
