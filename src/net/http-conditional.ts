/**
 * Validators for one file and the conditional request headers that use them (RFC 9110 §8.8, §13).
 * Pure: header strings and file facts in, decisions out.
 */

/** A strong ETag from size and mtime, as nginx does; image files are content-addressed, so both change together with the bytes. */
export function fileEtag(size: number, mtimeMs: number): string {
  return `"${size.toString(16)}-${Math.floor(mtimeMs).toString(16)}"`;
}

/** HTTP-date (§5.6.7) of the mtime, whole seconds. */
export function lastModified(mtimeMs: number): string {
  return new Date(Math.floor(mtimeMs / 1000) * 1000).toUTCString();
}

function opaque(tag: string): string {
  return tag.startsWith('W/') ? tag.slice(2) : tag;
}

/** If-None-Match uses the weak comparison (§13.1.2): W/ prefixes are ignored; `*` matches any file. */
export function noneMatchHits(header: string, etag: string): boolean {
  const want = opaque(etag);
  return header.split(',').some((t) => {
    const tag = t.trim();
    return tag === '*' || opaque(tag) === want;
  });
}

function parseDate(header: string): number | null {
  // Date.parse accepts the three HTTP-date forms (IMF-fixdate, RFC 850, asctime).
  const t = Date.parse(header);
  return Number.isFinite(t) ? t : null;
}

/**
 * Whether a GET/HEAD gets 304 Not Modified (§13.2.2: If-None-Match first; If-Modified-Since only
 * when there is no If-None-Match; an unparseable date is ignored).
 */
export function isNotModified(
  headers: { 'if-none-match'?: string | undefined; 'if-modified-since'?: string | undefined },
  etag: string,
  mtimeMs: number,
): boolean {
  const inm = headers['if-none-match'];
  if (inm !== undefined) return noneMatchHits(inm, etag);
  const ims = headers['if-modified-since'];
  if (ims === undefined) return false;
  const since = parseDate(ims);
  if (since === null) return false;
  return Math.floor(mtimeMs / 1000) * 1000 <= since;
}

/**
 * Whether If-Range lets the Range header apply (§13.1.5): an entity tag must match strongly (weak
 * tags never do), a date must equal Last-Modified exactly. Absent: yes.
 */
export function ifRangeAllows(header: string | undefined, etag: string, mtimeMs: number): boolean {
  if (header === undefined) return true;
  const v = header.trim();
  if (v.startsWith('"') || v.startsWith('W/')) return v === etag;
  const d = parseDate(v);
  return d !== null && d === Math.floor(mtimeMs / 1000) * 1000;
}
