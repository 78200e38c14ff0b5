import { ValidationError } from '../lib/errors.js';

/**
 * Keyset ("cursor") pagination shared by every list. A cursor is opaque to clients: base64url of a
 * small JSON naming the sort and the last row's sort value and id. Keyset rather than OFFSET because
 * page N costs the same as page 1 (an index seek), and rows inserted meanwhile neither repeat nor vanish.
 */
export interface Page<T> {
  items: T[];
  /** Cursor for the next page, or null when this page is the last. */
  next: string | null;
}

export interface CursorState {
  /** The sort the cursor was made for (`hostname`, `-created_at`...); reusing it with another sort is refused. */
  sort: string;
  /** The last row's value of the sort column (absent when sorting by id alone). */
  value?: string | number | null;
  id: number;
}

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;

export function encodeCursor(c: CursorState): string {
  return Buffer.from(JSON.stringify([c.sort, c.value ?? null, c.id]), 'utf8').toString('base64url');
}

export function decodeCursor(text: string, sort: string): CursorState {
  let parsed: unknown;
  try {
    if (!/^[A-Za-z0-9_-]{1,2000}$/.test(text)) throw new Error('not base64url');
    parsed = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw new ValidationError('invalid cursor: pass back the `next` value of a previous page unchanged', {
      field: 'cursor',
    });
  }
  if (
    !Array.isArray(parsed) ||
    parsed.length !== 3 ||
    typeof parsed[0] !== 'string' ||
    !(typeof parsed[1] === 'string' || typeof parsed[1] === 'number' || parsed[1] === null) ||
    !Number.isSafeInteger(parsed[2])
  ) {
    throw new ValidationError('invalid cursor: pass back the `next` value of a previous page unchanged', {
      field: 'cursor',
    });
  }
  if (parsed[0] !== sort) {
    throw new ValidationError(
      `cursor was made for sort '${parsed[0]}', not '${sort}': keep the same sort while paging`,
      {
        field: 'cursor',
      },
    );
  }
  return { sort: parsed[0], value: parsed[1] as string | number | null, id: parsed[2] as number };
}

/** Clamps and checks a page size. */
export function pageLimit(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    throw new ValidationError(`limit must be an integer from 1 to ${MAX_LIMIT}`, { field: 'limit' });
  }
  return limit;
}

/**
 * The WHERE fragment and ORDER BY for a keyset page over `column` (tie-broken by `idColumn`).
 * Row-value comparison `(a, b) > (?, ?)` reads the same in SQLite and PostgreSQL and uses the
 * (column, id) index.
 */
export function keyset(
  column: string | undefined,
  idColumn: string,
  descending: boolean,
  cursor: CursorState | undefined,
): { where: string | undefined; params: unknown[]; orderBy: string } {
  const dir = descending ? 'DESC' : 'ASC';
  const op = descending ? '<' : '>';
  const orderBy = column ? `${column} ${dir}, ${idColumn} ${dir}` : `${idColumn} ${dir}`;
  if (!cursor) return { where: undefined, params: [], orderBy };
  if (!column) return { where: `${idColumn} ${op} ?`, params: [cursor.id], orderBy };
  return { where: `(${column}, ${idColumn}) ${op} (?, ?)`, params: [cursor.value, cursor.id], orderBy };
}
