import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../lib/logger.js';
import { type Eventloops, parseDiscovery } from '../rpc/discovery.js';

/**
 * What the rack remembers about its region between starts, under `<data_dir>/rack/`:
 *   region.json     its system id and the last region workers discovery listed (offline start)
 *   region-ca.pem   the region CA pinned on first contact (after the shared secret proved it)
 */
export interface RegionState {
  system_id: string | null;
  eventloops: Eventloops | null;
}

function writeAtomic(path: string, data: string, mode: number): void {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, data, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

export class RegionStateStore {
  readonly dir: string;
  constructor(
    dataDir: string,
    private readonly logger: Logger,
  ) {
    this.dir = join(dataDir, 'rack');
  }

  get caPath(): string {
    return join(this.dir, 'region-ca.pem');
  }

  private get statePath(): string {
    return join(this.dir, 'region.json');
  }

  load(): RegionState {
    try {
      const raw = JSON.parse(readFileSync(this.statePath, 'utf8')) as Partial<RegionState>;
      const systemId = typeof raw.system_id === 'string' && raw.system_id.length <= 64 ? raw.system_id : null;
      let eventloops: Eventloops | null = null;
      try {
        eventloops = parseDiscovery({ eventloops: raw.eventloops ?? null }).eventloops;
      } catch {
        eventloops = null;
      }
      return { system_id: systemId, eventloops };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.logger.warn(
          { path: this.statePath, err: (err as Error).message },
          'rack region state unreadable; starting fresh',
        );
      }
      return { system_id: null, eventloops: null };
    }
  }

  save(state: RegionState): void {
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      writeAtomic(this.statePath, `${JSON.stringify(state, null, 2)}\n`, 0o600);
    } catch (err) {
      this.logger.warn(
        { path: this.statePath, err: (err as Error).message },
        'could not save rack region state',
      );
    }
  }

  loadCa(): string | null {
    try {
      return readFileSync(this.caPath, 'utf8');
    } catch {
      return null;
    }
  }

  saveCa(pem: string): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeAtomic(this.caPath, pem, 0o644);
  }
}
