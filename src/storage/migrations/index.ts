import type { Migration } from '../migrations.js';
import { migrations as boot } from './boot.js';
import { migrations as dhcp } from './dhcp.js';
import { migrations as inventory } from './inventory.js';
import { migrations as regionRpc } from './region-rpc.js';

/**
 * Every region migration, in version order. Each owner keeps its own file so nobody edits another's:
 *   inventory.ts   1–9    machines, interfaces, racks (minimal), subnets, events, boot resources, API keys
 *   region-rpc.ts  10–19  RPC channel, racks (extends the racks table), region workers
 *   boot.ts        20–29  boot images, boot configs, metadata
 *   dhcp.ts        30–39  DHCP
 * runMigrations checks the concatenation is strictly increasing.
 */
export const regionMigrations: readonly Migration[] = [...inventory, ...regionRpc, ...boot, ...dhcp];
