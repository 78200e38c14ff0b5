import type Database from 'better-sqlite3';
import { NotFoundError, ValidationError } from '../lib/errors.js';
import { decodeCursor, encodeCursor, keyset, type Page, pageLimit } from './page.js';

/**
 * A machine's event log: its boot timeline (DHCP, TFTP, HTTP, metadata hops) and lifecycle
 * changes. Append-only: there is no update or single delete; events go only with their machine.
 */
export const EVENT_LEVELS = ['debug', 'info', 'warning', 'error'] as const;
export type EventLevel = (typeof EVENT_LEVELS)[number];

export interface EventInput {
  /** A short stable identifier, e.g. `dhcp.offer`, `tftp.sent`, `status.changed`. */
  type: string;
  level: EventLevel;
  /** One line for people. */
  text: string;
  /** Structured details (JSON-serialisable). */
  data?: Record<string, unknown> | undefined;
  /**
   * When it happened, if earlier than now (ISO 8601): boot hops reach the region late when they
   * are held until the machine exists. Ignored unless within the last day and not in the future.
   */
  at?: string | undefined;
}

const MAX_BACKDATE_MS = 86_400_000;

function eventTime(at: string | undefined, nowMs: number): string {
  if (at !== undefined) {
    const t = Date.parse(at);
    if (Number.isFinite(t) && t <= nowMs + 1000 && t >= nowMs - MAX_BACKDATE_MS)
      return new Date(t).toISOString();
  }
  return new Date(nowMs).toISOString();
}

export interface MachineEvent {
  id: number;
  type: string;
  level: EventLevel;
  text: string;
  data: Record<string, unknown> | null;
  created_at: string;
}

const TYPE = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;

/**
 * Appends one event to the machine with this numeric id (Machine.id, not system_id) and returns
 * it. Throws NotFoundError when the machine does not exist and ValidationError on a bad type/level.
 */
export function appendEvent(db: Database.Database, machineId: number, event: EventInput): MachineEvent {
  if (!TYPE.test(event.type)) {
    throw new ValidationError('event type must be 1–64 characters: letters, digits, _ . : -', {
      type: event.type,
    });
  }
  if (!(EVENT_LEVELS as readonly string[]).includes(event.level)) {
    throw new ValidationError(`event level must be one of ${EVENT_LEVELS.join(', ')}`, {
      level: event.level,
    });
  }
  const text = event.text.length > 2000 ? `${event.text.slice(0, 1999)}…` : event.text;
  const now = eventTime(event.at, Date.now());
  let id: number;
  try {
    const info = db
      .prepare(
        'INSERT INTO events (machine_id, type, level, text, data, created_at) VALUES (?, ?, ?, ?, ?, ?)',
      )
      .run(machineId, event.type, event.level, text, event.data ? JSON.stringify(event.data) : null, now);
    id = Number(info.lastInsertRowid);
  } catch (err) {
    if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
      throw new NotFoundError(`no machine with id ${machineId}`, { machine_id: machineId });
    }
    throw err;
  }
  return { id, type: event.type, level: event.level, text, data: event.data ?? null, created_at: now };
}

export interface EventListOptions {
  limit?: number | undefined;
  cursor?: string | undefined;
  /** `asc` (oldest first, the default: a timeline) or `desc` (newest first). */
  order?: 'asc' | 'desc' | undefined;
  level?: EventLevel | undefined;
  type?: string | undefined;
}

export function listEvents(
  db: Database.Database,
  machineId: number,
  opts: EventListOptions = {},
): Page<MachineEvent> {
  const limit = pageLimit(opts.limit);
  const sortKey = opts.order === 'desc' ? '-id' : 'id';
  const cursor = opts.cursor !== undefined ? decodeCursor(opts.cursor, sortKey) : undefined;
  const ks = keyset(undefined, 'id', opts.order === 'desc', cursor);
  const where = ['machine_id = ?'];
  const params: unknown[] = [machineId];
  if (opts.level !== undefined) {
    where.push('level = ?');
    params.push(opts.level);
  }
  if (opts.type !== undefined) {
    where.push('type = ?');
    params.push(opts.type);
  }
  if (ks.where) {
    where.push(ks.where);
    params.push(...ks.params);
  }
  const rows = db
    .prepare(
      `SELECT id, type, level, text, data, created_at FROM events WHERE ${where.join(' AND ')} ORDER BY ${ks.orderBy} LIMIT ?`,
    )
    .all(...params, limit + 1) as Array<Omit<MachineEvent, 'data'> & { data: string | null }>;
  const more = rows.length > limit;
  if (more) rows.length = limit;
  const last = rows[rows.length - 1];
  return {
    items: rows.map((r) => ({
      ...r,
      data: r.data === null ? null : (JSON.parse(r.data) as Record<string, unknown>),
    })),
    next: more && last ? encodeCursor({ sort: sortKey, id: last.id }) : null,
  };
}
