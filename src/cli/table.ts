/**
 * Plain-text tables for people: a header row, columns padded to their widest cell, no borders, so
 * the output reads well in a terminal and still greps and cuts cleanly.
 */
export function formatTable(
  headers: string[],
  rows: Array<Array<string | number | boolean | null | undefined>>,
): string {
  const cells = rows.map((r) => r.map((c) => (c === null || c === undefined || c === '' ? '-' : String(c))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]?.length ?? 0)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...cells.map(line)].join('\n');
}

/** Key/value lines for one record (`kiln machines show`). */
export function formatRecord(pairs: Array<[string, unknown]>): string {
  const width = Math.max(...pairs.map(([k]) => k.length));
  return pairs
    .map(([k, v]) => {
      const text =
        v === null || v === undefined || v === ''
          ? '-'
          : typeof v === 'object'
            ? JSON.stringify(v)
            : String(v);
      return `${`${k}:`.padEnd(width + 1)}  ${text}`;
    })
    .join('\n');
}
