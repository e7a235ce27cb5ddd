/**
 * A plain-text table: each column as wide as its widest cell, cells left-aligned, two spaces between
 * columns, no trailing blanks; with `rule`, a line of dashes under the header. Returns the lines.
 */
export function textTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  opts: { readonly rule?: boolean } = {},
): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(header), ...(opts.rule ? [widths.map((w) => '-'.repeat(w)).join('  ')] : []), ...rows.map(line)];
}
