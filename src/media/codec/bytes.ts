/** `a` followed by `b`, in a new array (stream parsers keep the unfinished tail of one chunk for the next). */
export function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
