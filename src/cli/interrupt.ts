/**
 * Ctrl-C (and SIGTERM): run `handler` once (hang up, stop); a second Ctrl-C leaves at once.
 * Returns the function that stops listening.
 */
export function onInterrupt(handler: () => void): () => void {
  let count = 0;
  const listener = () => {
    count += 1;
    if (count > 1) process.exit(130);
    handler();
  };
  process.on('SIGINT', listener);
  process.on('SIGTERM', listener);
  return () => {
    process.off('SIGINT', listener);
    process.off('SIGTERM', listener);
  };
}
