import { z } from 'zod';
import { DecodeError } from '../lib/errors.js';

/**
 * Region discovery, MAAS's shape: `GET /rpc` →
 *   {"eventloops": {"<host>:pid=<pid>": [["<ip>", <port>], ...], ...}}
 * one entry per live region worker, or `{"eventloops": null}` while the region cannot tell yet
 * (the rack then keeps the connections it has and asks again).
 */
export type Eventloops = Record<string, Array<[string, number]>>;

export interface DiscoveryDocument {
  eventloops: Eventloops | null;
}

const Schema = z.object({
  eventloops: z
    .record(
      z.string().min(1).max(300),
      z.array(z.tuple([z.string().min(1).max(64), z.number().int().min(1).max(65535)])).max(32),
    )
    .nullable(),
});

/** Validate a discovery answer (from the network): a DecodeError names what is wrong. */
export function parseDiscovery(value: unknown): DiscoveryDocument {
  const r = Schema.safeParse(value);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new DecodeError(`not a kiln/MAAS /rpc discovery document: ${i?.path.join('.')}: ${i?.message}`);
  }
  if (r.data.eventloops !== null && Object.keys(r.data.eventloops).length > 1024) {
    throw new DecodeError('discovery document lists more than 1024 region workers');
  }
  return r.data as DiscoveryDocument;
}

export function workerKey(host: string, pid: number): string {
  return `${host}:pid=${pid}`;
}
