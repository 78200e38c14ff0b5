import { z } from 'zod';
import { defineCommand } from '../command.js';

const ip = z.string().regex(/^\d{1,3}(\.\d{1,3}){3}$/, 'dotted-quad IPv4 address');
const mac = z.string().regex(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/, 'lower-case colon-separated MAC');

/** One subnet a rack serves: managed and assigned to that rack (nothing else is ever sent). */
export const DhcpSubnetConfig = z.object({
  id: z.number().int().positive(),
  cidr: z.string().max(18),
  /** true: another server owns the addresses; answer PXE clients with boot information only. */
  proxy_mode: z.boolean(),
  gateway: ip.nullable(),
  dns_servers: z.array(ip).max(8),
  domain: z.string().max(253).nullable().optional(),
  lease_seconds: z
    .number()
    .int()
    .min(60)
    .max(365 * 86400)
    .default(3600),
  dynamic_ranges: z.array(z.object({ start: ip, end: ip })).max(64),
  reservations: z.array(z.object({ mac, ip, hostname: z.string().max(63).nullable().optional() })).max(65536),
});
export type DhcpSubnetConfig = z.infer<typeof DhcpSubnetConfig>;

export const DhcpConfig = z.object({
  subnets: z.array(DhcpSubnetConfig).max(1024),
});
export type DhcpConfig = z.infer<typeof DhcpConfig>;

/**
 * rack → region: the DHCP configuration for the calling rack. The rack asks at connect and again when
 * the region's `DhcpConfigChanged` notice arrives (or on its own poll); it re-applies only on change.
 */
export const GetDhcpConfig = defineCommand({
  name: 'GetDhcpConfig',
  servedBy: 'region',
  since: 1,
  summary: 'Subnets this rack serves DHCP on (managed and assigned to it), with ranges and reservations.',
  args: z.strictObject({ rack_system_id: z.string().max(64).nullable().optional() }),
  result: DhcpConfig,
  /** The connection has not registered a rack (RegisterRack) and named none the region knows. */
  errors: ['KILN_ERR_RACK_NOT_REGISTERED'],
});

export const LeaseRecord = z.object({
  subnet_id: z.number().int().positive(),
  ip,
  mac,
  state: z.enum(['active', 'released', 'declined']),
  /** Milliseconds since the epoch. */
  expires_at: z.number().int(),
  hostname: z.string().max(63).nullable(),
  /** The rack's change stamp; the region keeps the newest per (subnet, ip). */
  updated_at: z.number().int(),
});
export type LeaseRecord = z.infer<typeof LeaseRecord>;

/**
 * rack → region: lease changes since the last successful call, oldest first, in batches. The region
 * stores them per subnet and records a discovery for every MAC it has no machine for.
 */
export const UpdateLeases = defineCommand({
  name: 'UpdateLeases',
  servedBy: 'region',
  since: 1,
  summary: 'Report a batch of DHCP lease changes; unknown MACs become discoveries.',
  args: z.strictObject({
    rack_system_id: z.string().max(64).nullable().optional(),
    leases: z.array(LeaseRecord).max(5000),
  }),
  result: z.object({ stored: z.number().int(), discoveries: z.number().int() }),
  errors: ['KILN_ERR_RACK_NOT_REGISTERED'],
});

/** region → rack: the DHCP configuration changed; the rack calls GetDhcpConfig again. */
export const DhcpConfigChanged = defineCommand({
  name: 'DhcpConfigChanged',
  servedBy: 'rack',
  since: 1,
  summary: 'Tell a rack its DHCP configuration changed.',
  args: z.strictObject({}),
  result: z.object({ ok: z.boolean() }),
  errors: [],
});
