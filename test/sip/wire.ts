/** Reading SIP text as it came off the wire, for the tests that send raw datagrams to a real agent. */

/** The status code of a response (NaN for a request). */
export const statusOf = (text: string) => Number(/^SIP\/2\.0 (\d{3}) /.exec(text)?.[1]);

/** The first value of a header, by its full name. */
export const headerIn = (text: string, name: string) =>
  new RegExp(`\\r\\n${name}[ \\t]*:[ \\t]*([^\\r\\n]*)`, 'i').exec(text)?.[1];

/** Wait until `test` holds or `ms` have passed (a bounded loop; no time is asserted). */
export async function settle(test: () => boolean, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  while (!test() && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
}
