import type { PcpResultName } from './codec.ts';
import { fail, type Failure, type Result } from '../../machines/result.ts';

/** What went wrong asking a PCP server, by kind; each error's message names the fix. */
export type PcpErrorCode =
  /** The server refused with a result code (RFC 6887 §7.4), by name. */
  | Exclude<PcpResultName, 'SUCCESS' | 'UNSUPP_VERSION'>
  /**
   * The gateway speaks NAT-PMP but not PCP version 2: it answered with a NAT-PMP (version 0)
   * "Unsupported Version", or with PCP's UNSUPP_VERSION (RFC 6887 §9). Use the NAT-PMP client.
   */
  | 'NAT_PMP_ONLY'
  /** The server answered in a PCP version other than 2 (an early draft's version 1). */
  | 'BAD_VERSION'
  /** The caller passed a value the protocol cannot carry (a port of 0, a lifetime past 32 bits, …). */
  | 'BAD_ARGUMENT'
  /** No local IPv4 address routes to the gateway (or `localAddress` is not one of ours). */
  | 'NO_ROUTE'
  /** No answer after every retransmission (RFC 6887 §8.1.1). */
  | 'TIMEOUT'
  /** The caller's AbortSignal fired. */
  | 'ABORTED'
  /** The UDP socket could not be opened, a request could not be sent, or the socket closed. */
  | 'SOCKET';

/** A PCP failure as a value: a code, and a message that names the cause and the fix. */
export interface PcpError extends Failure {
  readonly code: PcpErrorCode;
}

/** A value or the {@link PcpError} that stopped it: failures are values, not throws. */
export type PcpResult<T> = Result<T, PcpError>;

/** A failed {@link PcpResult}: machines/result.ts's `fail`, its code narrowed to PCP's. */
export const pcpFail: <T>(code: PcpErrorCode, message: string) => PcpResult<T> = fail;
