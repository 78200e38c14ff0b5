import { z } from 'zod';
import { MAX_LIMIT } from '../../storage/page.js';

/** Query fields every paginated list takes. */
export const pageQuery = {
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_LIMIT)
    .optional()
    .describe(`Page size, 1–${MAX_LIMIT} (default 100)`),
  cursor: z.string().max(2000).optional().describe('The `next` value of the previous page'),
};

/** `true`/`false`/`1`/`0` in a query string (z.coerce.boolean would take "false" as true). */
export const queryBool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

/** Path ids that are integers: a non-number is a 404 for that id, not a 400 about the path. */
export function intId(raw: string | undefined): number {
  return raw !== undefined && /^[1-9][0-9]{0,15}$/.test(raw) ? Number(raw) : -1;
}
