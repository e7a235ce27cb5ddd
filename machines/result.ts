/**
 * The one result shape of every parser and I/O call in avchat: a value, or the typed error that
 * stopped it. Failures are values, not throws, so hostile input can never unwind a receive path.
 * Pure (no Node, no DOM), so charts and parsers in any runtime share it.
 *
 * Each module names its own error type (`Result<SipUri, SipUriError>`, `RtcpResult<T>` …); the shape
 * is always `{ ok: true, value }` or `{ ok: false, error }`, and the error always has a `code` and a
 * `message` that says what was wrong.
 */
export type Result<T, E extends Failure = Failure> = Ok<T> | Err<E>;

/** A success. */
export interface Ok<T> {
  readonly ok: true;
  readonly value: T;
}

/** A failure. */
export interface Err<E extends Failure = Failure> {
  readonly ok: false;
  readonly error: E;
}

/** What every error carries: a stable code for programs and a message for people. */
export interface Failure {
  readonly code: string;
  readonly message: string;
}

/** A success holding `value`. */
export function ok<T>(value: T): Ok<T> {
  return { ok: true, value };
}

/** A failure holding `error`. */
export function err<E extends Failure>(error: E): Err<E> {
  return { ok: false, error };
}

/** A failure built from its code and message. */
export function fail<C extends string>(code: C, message: string): Err<{ readonly code: C; readonly message: string }> {
  return { ok: false, error: { code, message } };
}
