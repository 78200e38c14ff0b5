import Router from '@koa/router';
import type Database from 'better-sqlite3';
import type { Context } from 'koa';
import { z } from 'zod';
import { isKilnError } from '../../lib/errors.js';
import type { Logger } from '../../lib/logger.js';
import { isMac, parseMac } from '../../lib/mac.js';
import { machineIdForBootToken } from '../../storage/boot-tokens.js';
import { appendEvent } from '../../storage/events.js';
import { getMachineById, type Machine, updateMachine } from '../../storage/machines.js';
import { METADATA_HARDWARE_PATH } from '../boot-config.js';
import { unauthorized } from './errors.js';
import type { RoutePlugin } from './plugin.js';
import { parseWith, readJsonBody } from './validate.js';

/** A hardware summary is a few KiB; anything much larger is not one. */
export const METADATA_BODY_LIMIT = 64 * 1024;

/**
 * The hardware summary kiln's initramfs posts (images/README.md). Unknown fields are kept, not
 * refused: the image may report more than this region knows about, and the summary is stored as
 * it came. What kiln reads from it is checked.
 */
const Hardware = z.looseObject({
  schema: z.number().int().min(1).max(1000).optional(),
  arch: z.string().max(32),
  boot_mac: z.string().max(32).nullable().optional(),
  cpu: z
    .looseObject({
      count: z
        .number()
        .int()
        .min(0)
        .max(1 << 20)
        .optional(),
    })
    .optional(),
  memory_bytes: z.number().int().min(0).optional(),
  interfaces: z
    .array(z.looseObject({ name: z.string().max(64).optional(), mac: z.string().max(32) }))
    .max(256)
    .default([]),
  disks: z
    .array(z.looseObject({ name: z.string().max(64) }))
    .max(1024)
    .optional(),
});

export interface MetadataRoutesOptions {
  db: Database.Database;
  logger: Logger;
  now?: () => number;
}

/**
 * The metadata API booted machines talk to, outside /api/v1 (no API key: a machine holds only
 * the per-machine token from its kernel command line). `POST /metadata/v1/hardware` with
 * `Authorization: Bearer <kiln.token>` (or `?token=` for clients without custom headers) stores
 * the summary as the machine's hardware inventory, adds the NICs it reports, and logs an event.
 * A missing, unknown or expired token is 401; a body that is not a summary is 400, too large 413;
 * nothing is stored in either case.
 */
export function metadataRoutes(opts: MetadataRoutesOptions): RoutePlugin {
  const { db, logger } = opts;
  const now = opts.now ?? Date.now;
  const router = new Router();

  router.post(METADATA_HARDWARE_PATH, async (ctx) => {
    const machine = authenticate(ctx, db, now());
    // The body is JSON whatever it is labelled: busybox wget without --header sends form encoding.
    delete ctx.req.headers['content-type'];
    const body = parseWith('body', Hardware, await readJsonBody(ctx, METADATA_BODY_LIMIT));
    const stored = storeHardware(
      db,
      machine,
      body as Record<string, unknown> & z.output<typeof Hardware>,
      logger,
    );
    ctx.status = 200;
    ctx.body = { system_id: stored.system_id, hostname: stored.hostname, status: stored.status };
  });

  return { router };
}

function authenticate(ctx: Context, db: Database.Database, now: number): Machine {
  const header = ctx.get('Authorization');
  let token = '';
  if (header) {
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m)
      throw unauthorized(
        'Authorization must be "Bearer <token>" with the kiln.token from the kernel command line',
      );
    token = m[1]!;
  } else if (typeof ctx.query.token === 'string') {
    token = ctx.query.token;
  }
  if (!token) throw unauthorized('a machine token is required (Authorization: Bearer <kiln.token>)');
  const id = machineIdForBootToken(db, token, now);
  const machine = id === undefined ? undefined : getMachineById(db, id);
  if (!machine) throw unauthorized('unknown or expired machine token');
  return machine;
}

function storeHardware(
  db: Database.Database,
  machine: Machine,
  hw: z.output<typeof Hardware>,
  logger: Logger,
): Machine {
  const known = new Set(machine.interfaces.map((i) => i.mac));
  const added = hw.interfaces
    .filter((i) => isMac(i.mac))
    .map((i) => ({
      name: i.name && /^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,31}$/.test(i.name) ? i.name : undefined,
      mac: parseMac(i.mac),
    }))
    .filter((i) => !known.has(i.mac));
  let updated: Machine;
  let note = '';
  if (added.length > 0) {
    try {
      updated = updateMachine(db, machine.system_id, {
        hardware: hw,
        boot_mac: machine.boot_mac ?? undefined,
        interfaces: [...machine.interfaces.map((i) => ({ name: i.name, mac: i.mac })), ...added],
      });
    } catch (err) {
      // A reported NIC that another machine already owns: keep the inventory, say why the NICs were not added.
      if (!isKilnError(err, 'KILN_ERR_CONFLICT')) throw err;
      logger.warn(
        { system_id: machine.system_id, err: (err as Error).message },
        'reported interfaces not added',
      );
      note = ` (interfaces not added: ${(err as Error).message})`;
      updated = updateMachine(db, machine.system_id, { hardware: hw });
    }
  } else {
    updated = updateMachine(db, machine.system_id, { hardware: hw });
  }
  const cpus = hw.cpu?.count ?? 0;
  const mib = Math.round((hw.memory_bytes ?? 0) / 1048576);
  appendEvent(db, machine.id, {
    type: 'metadata.hardware',
    level: 'info',
    text: `Hardware inventory received: ${hw.arch}, ${cpus} CPU, ${mib} MiB, ${hw.interfaces.length} NIC, ${hw.disks?.length ?? 0} disk${note}`,
    data: { arch: hw.arch, cpus, memory_bytes: hw.memory_bytes ?? null, nics: hw.interfaces.length },
  });
  logger.info({ system_id: machine.system_id }, 'hardware inventory stored');
  return updated;
}
