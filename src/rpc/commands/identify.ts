import { z } from 'zod';
import { defineCommand } from '../command.js';

/** region → rack: who are you? Used by the region to check a connection's rack. */
export const Identify = defineCommand({
  name: 'Identify',
  servedBy: 'rack',
  since: 1,
  summary: "The rack's id (null before its first registration), host name and version.",
  args: z.strictObject({}),
  result: z.object({ system_id: z.string().nullable(), hostname: z.string(), version: z.string() }),
  errors: [],
});
