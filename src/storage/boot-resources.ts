import type Database from 'better-sqlite3';
import { NotFoundError, ValidationError } from '../lib/errors.js';
import { decodeCursor, encodeCursor, keyset, type Page, pageLimit } from './page.js';

/**
 * Boot resource metadata: what images the region holds (e.g. `ubuntu/noble` for `amd64/generic`,
 * kind `os`) and their files (kernel, initrd, squashfs) by sha256 and size. The image store writes
 * the files themselves and records them here; racks sync by sha256.
 */
export interface BootResourceFile {
  /** Name within the resource: `vmlinuz`, `initrd.img`, `squashfs`, `undionly.kpxe`... */
  name: string;
  /** What the file is for: `kernel`, `initrd`, `squashfs`, `bootloader`, ... */
  filetype: string;
  sha256: string;
  size: number;
  /** Where the image store keeps it, relative to data_dir (never sent to machines). */
  path: string;
  created_at: string;
}

export interface BootResource {
  id: number;
  name: string;
  architecture: string;
  kind: string;
  files: BootResourceFile[];
  created_at: string;
  updated_at: string;
}

export interface BootResourceFileInput {
  name: string;
  filetype: string;
  sha256: string;
  size: number;
  path: string;
}

export interface BootResourceInput {
  name: string;
  architecture: string;
  kind: string;
  files: BootResourceFileInput[];
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.:/+-]{0,127}$/;
const ARCH = /^[a-z0-9_]+\/[a-z0-9_.-]+$/;
const SHA256 = /^[0-9a-f]{64}$/;

function invalid(field: string, message: string): ValidationError {
  return new ValidationError(`${field}: ${message}`, { issues: [{ field, message }] });
}

function validate(input: BootResourceInput): void {
  if (!NAME.test(input.name)) throw invalid('name', 'must be 1–128 characters: letters, digits, _ . : / + -');
  if (!ARCH.test(input.architecture))
    throw invalid('architecture', 'must look like arch/subarch, e.g. amd64/generic');
  if (!NAME.test(input.kind)) throw invalid('kind', 'must be 1–128 characters');
  const names = new Set<string>();
  input.files.forEach((f, i) => {
    if (!NAME.test(f.name))
      throw invalid(`files.${i}.name`, 'must be 1–128 characters: letters, digits, _ . : / + -');
    if (names.has(f.name)) throw invalid(`files.${i}.name`, `${f.name} is listed twice`);
    names.add(f.name);
    if (!NAME.test(f.filetype)) throw invalid(`files.${i}.filetype`, 'must be 1–128 characters');
    if (!SHA256.test(f.sha256)) throw invalid(`files.${i}.sha256`, 'must be 64 lower-case hex digits');
    if (!Number.isSafeInteger(f.size) || f.size < 0)
      throw invalid(`files.${i}.size`, 'must be a non-negative integer');
    if (f.path === '' || f.path.length > 1024) throw invalid(`files.${i}.path`, 'must be 1–1024 characters');
  });
}

const SELECT = 'SELECT id, name, architecture, kind, created_at, updated_at FROM boot_resources';
type Row = Omit<BootResource, 'files'>;

function withFiles(db: Database.Database, rows: Row[]): BootResource[] {
  if (rows.length === 0) return [];
  const ids = rows.map((r) => r.id);
  const files = db
    .prepare(
      `SELECT resource_id, name, filetype, sha256, size, path, created_at FROM boot_resource_files
       WHERE resource_id IN (${ids.map(() => '?').join(',')}) ORDER BY resource_id, name`,
    )
    .all(...ids) as Array<BootResourceFile & { resource_id: number }>;
  const byId = new Map<number, BootResource>(rows.map((r) => [r.id, { ...r, files: [] }]));
  for (const { resource_id, ...f } of files) byId.get(resource_id)!.files.push(f);
  return rows.map((r) => byId.get(r.id)!);
}

/**
 * Creates or replaces the resource (name, architecture, kind) with exactly these files, in one
 * transaction: a re-import swaps the file set atomically, so a rack never sees half of each.
 */
export function putBootResource(db: Database.Database, input: BootResourceInput): BootResource {
  validate(input);
  const run = db.transaction((): number => {
    const now = new Date().toISOString();
    const existing = db
      .prepare('SELECT id FROM boot_resources WHERE name = ? AND architecture = ? AND kind = ?')
      .get(input.name, input.architecture, input.kind) as { id: number } | undefined;
    let id: number;
    if (existing) {
      id = existing.id;
      db.prepare('UPDATE boot_resources SET updated_at = ? WHERE id = ?').run(now, id);
      db.prepare('DELETE FROM boot_resource_files WHERE resource_id = ?').run(id);
    } else {
      const info = db
        .prepare(
          'INSERT INTO boot_resources (name, architecture, kind, created_at, updated_at) VALUES (?, ?, ?, ?, ?)',
        )
        .run(input.name, input.architecture, input.kind, now, now);
      id = Number(info.lastInsertRowid);
    }
    const ins = db.prepare(
      `INSERT INTO boot_resource_files (resource_id, name, filetype, sha256, size, path, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    );
    for (const f of input.files) ins.run(id, f.name, f.filetype, f.sha256, f.size, f.path, now);
    return id;
  });
  return getBootResource(db, run.immediate())!;
}

export function getBootResource(db: Database.Database, id: number): BootResource | undefined {
  const row = db.prepare(`${SELECT} WHERE id = ?`).get(id) as Row | undefined;
  return row ? withFiles(db, [row])[0] : undefined;
}

export function requireBootResource(db: Database.Database, id: number): BootResource {
  const r = getBootResource(db, id);
  if (!r) throw new NotFoundError(`no boot resource with id ${id}`, { id });
  return r;
}

/** The resource by its natural key, e.g. ('ubuntu/noble', 'amd64/generic', 'os'). */
export function findBootResource(
  db: Database.Database,
  name: string,
  architecture: string,
  kind: string,
): BootResource | undefined {
  const row = db
    .prepare(`${SELECT} WHERE name = ? AND architecture = ? AND kind = ?`)
    .get(name, architecture, kind) as Row | undefined;
  return row ? withFiles(db, [row])[0] : undefined;
}

export function deleteBootResource(db: Database.Database, id: number): void {
  if (db.prepare('DELETE FROM boot_resources WHERE id = ?').run(id).changes === 0) {
    throw new NotFoundError(`no boot resource with id ${id}`, { id });
  }
}

/** Every file record with this content hash (a file may be shared by several resources). */
export function findBootFilesBySha256(
  db: Database.Database,
  sha256: string,
): Array<BootResourceFile & { resource_id: number }> {
  return db
    .prepare(
      'SELECT resource_id, name, filetype, sha256, size, path, created_at FROM boot_resource_files WHERE sha256 = ?',
    )
    .all(sha256) as Array<BootResourceFile & { resource_id: number }>;
}

export interface BootResourceListOptions {
  limit?: number | undefined;
  cursor?: string | undefined;
  architecture?: string | undefined;
  kind?: string | undefined;
  name?: string | undefined;
}

export function listBootResources(
  db: Database.Database,
  opts: BootResourceListOptions = {},
): Page<BootResource> {
  const limit = pageLimit(opts.limit);
  const cursor = opts.cursor !== undefined ? decodeCursor(opts.cursor, 'id') : undefined;
  const ks = keyset(undefined, 'id', false, cursor);
  const where: string[] = [];
  const params: unknown[] = [];
  for (const f of ['architecture', 'kind', 'name'] as const) {
    if (opts[f] !== undefined) {
      where.push(`${f} = ?`);
      params.push(opts[f]);
    }
  }
  if (ks.where) {
    where.push(ks.where);
    params.push(...ks.params);
  }
  const rows = db
    .prepare(`${SELECT}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY ${ks.orderBy} LIMIT ?`)
    .all(...params, limit + 1) as Row[];
  const more = rows.length > limit;
  if (more) rows.length = limit;
  const last = rows[rows.length - 1];
  return {
    items: withFiles(db, rows),
    next: more && last ? encodeCursor({ sort: 'id', id: last.id }) : null,
  };
}
