import { z } from 'zod';
import { defineCommand } from '../command.js';

export const RackInterface = z.strictObject({
  name: z.string().min(1).max(64),
  mac: z
    .string()
    .regex(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/, 'lower-case colon-separated MAC')
    .nullable(),
  /** CIDR strings, e.g. 10.0.0.2/24 or fe80::1/64. */
  addresses: z.array(z.string().max(64)).max(64),
});
export type RackInterface = z.infer<typeof RackInterface>;

/** rack → region, once per connection right after the handshake. */
export const RegisterRack = defineCommand({
  name: 'RegisterRack',
  servedBy: 'region',
  since: 1,
  summary:
    'Record the rack (create on first contact) and bind this connection to it. Returns its id and a token for the region HTTP endpoints it uses (image downloads).',
  args: z.strictObject({
    /** The id this rack was given before; absent on first contact. */
    system_id: z.string().min(1).max(64).nullable(),
    hostname: z.string().min(1).max(255),
    /** Display name; defaults to the hostname. */
    name: z.string().min(1).max(255).nullable(),
    version: z.string().max(64),
    interfaces: z.array(RackInterface).max(256),
  }),
  result: z.object({
    system_id: z.string(),
    /** Bearer token for the region's HTTP endpoints racks use (image downloads). */
    http_token: z.string(),
    /** The worker that answered, as /rpc lists it. */
    worker_id: z.string(),
  }),
  errors: ['KILN_ERR_NOT_FOUND'],
});
