/**
 * A mistake in what the user asked for (an option value, a config file): the CLI prints its message on
 * one line and exits 2, as it does for commander's own usage errors.
 */
export class UsageError extends Error {
  readonly exitCode = 2;
}
