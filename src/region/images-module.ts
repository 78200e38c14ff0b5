import type Database from 'better-sqlite3';
import type { BootImage } from '../rpc/commands/images.js';
import { ListBootImages, SyncBootImages } from '../rpc/commands/images.js';
import { listBootResources } from '../storage/boot-resources.js';
import { imageRoutes } from './http/images.js';
import { ImageStore } from './image-store.js';
import type { RegionModule } from './modules.js';

/** Every boot resource with its files, as ListBootImages answers (all pages). */
export function listBootImages(db: Database.Database): BootImage[] {
  const out: BootImage[] = [];
  let cursor: string | undefined;
  do {
    const page = listBootResources(db, { limit: 1000, cursor });
    for (const r of page.items) {
      out.push({
        name: r.name,
        architecture: r.architecture,
        kind: r.kind,
        files: r.files.map((f) => ({ name: f.name, filetype: f.filetype, sha256: f.sha256, size: f.size })),
      });
    }
    cursor = page.next ?? undefined;
  } while (cursor !== undefined);
  return out;
}

/**
 * The region's image module, run in every worker: the image store under data_dir, the
 * ListBootImages handler racks sync from, and the upload/import/download routes. After an import it
 * asks each rack connected to this worker (every rack holds a connection to every worker) to sync.
 */
export const imagesModule: RegionModule = (ctx) => {
  const logger = ctx.logger.child({ module: 'images' });
  const store = new ImageStore({ dataDir: ctx.config.data_dir, logger });
  store.removeStrayTempFiles();
  if (listBootImages(ctx.db).length === 0) {
    logger.warn(
      'no boot images yet: machines cannot network-boot. Run `npm run images:build` or `kiln images import`.',
    );
  }
  ctx.handlers.register(ListBootImages, () => ({ images: listBootImages(ctx.db) }));
  ctx.plugins.push(
    imageRoutes({
      db: ctx.db,
      store,
      logger,
      secret: ctx.secret,
      onImported: async () => {
        const rpc = ctx.rpc();
        if (!rpc) return;
        const racks = new Set<string>();
        for (const link of rpc.links) if (link.peer.system_id) racks.add(link.peer.system_id);
        await Promise.allSettled(
          [...racks].map((id) =>
            rpc.callRack(id, SyncBootImages, {}, { timeout: 10_000 }).catch((err: unknown) => {
              logger.info({ rack: id, err: (err as Error).message }, 'could not ask rack to sync images');
            }),
          ),
        );
      },
    }),
  );
};
