import { z } from 'zod';
import { defineCommand } from '../command.js';

/**
 * rack → region: one hop of a machine's boot timeline (DHCP offer, TFTP file, HTTP script, kernel
 * fetch). The machine is found by system_id or, for machines the rack only knows by MAC, by MAC.
 */
export const SendEvent = defineCommand({
  name: 'SendEvent',
  servedBy: 'region',
  since: 1,
  summary: "Append an event to a machine's boot timeline.",
  args: z
    .strictObject({
      system_id: z.string().min(1).max(64).optional(),
      mac: z
        .string()
        .regex(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/)
        .optional(),
      /** Short machine-readable kind, e.g. `dhcp.offer`, `tftp.file`, `http.script`. */
      type: z.string().min(1).max(64),
      level: z.enum(['debug', 'info', 'warning', 'error']).default('info'),
      text: z.string().max(2000),
      data: z.record(z.string(), z.unknown()).optional(),
    })
    .refine((a) => a.system_id !== undefined || a.mac !== undefined, 'system_id or mac is required'),
  result: z.object({
    /** False when no machine matches (unknown MACs are not created by events). */
    recorded: z.boolean(),
  }),
  errors: [],
});
