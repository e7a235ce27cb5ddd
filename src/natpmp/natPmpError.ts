import type { NatPmpResultName } from './codec.ts';
import { fail, type Failure, type Result } from '../../machines/result.ts';

/** What went wrong asking a NAT-PMP gateway, by kind; each error's message names the fix. */
export type NatPmpErrorCode =
  /** The gateway refused with a result code (RFC 6886 §3.5), by name. */
  | NatPmpResultName
  /** The gateway answered with another protocol version (a PCP-only gateway, version 2). */
  | 'BAD_VERSION'
  /** The caller passed a value the protocol cannot carry (a port of 0, a lifetime past 32 bits, …). */
  | 'BAD_ARGUMENT'
  /** No answer after every retransmission (RFC 6886 §3.1). */
  | 'TIMEOUT'
  /** The caller's AbortSignal fired. */
  | 'ABORTED'
  /** The UDP socket could not be opened, or a request could not be sent, or the socket closed. */
  | 'SOCKET';

/** A NAT-PMP failure as a value: a code, and a message that names the cause and the fix. */
export interface NatPmpError extends Failure {
  readonly code: NatPmpErrorCode;
}

/** A value or the {@link NatPmpError} that stopped it: failures are values, not throws. */
export type NatPmpResult<T> = Result<T, NatPmpError>;

/** A failed {@link NatPmpResult}: machines/result.ts's `fail`, its code narrowed to NAT-PMP's. */
export const natPmpFail: <T>(code: NatPmpErrorCode, message: string) => NatPmpResult<T> = fail;
