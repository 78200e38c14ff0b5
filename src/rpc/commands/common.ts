import { z } from 'zod';
import { defineCommand } from '../command.js';

/** `Ping` is served by both ends: racks ping workers to keep connections alive, workers ping racks. */
export const Ping = defineCommand({
  name: 'Ping',
  servedBy: 'both',
  since: 1,
  summary: 'Liveness check; echoes a value so callers can match answers.',
  args: z.strictObject({ echo: z.unknown().optional() }),
  result: z.object({ echo: z.unknown().optional(), time: z.number() }),
  errors: [],
});
