import type { Migration } from '../migrations.js';

/**
 * Boot migrations, shared by two owners: images (versions 20–24) and boot policy (25–29: boot
 * tokens). Keep the list in version order.
 */
export const migrations: Migration[] = [
  {
    version: 25,
    name: 'boot: per-machine boot tokens (sha256 only) for the metadata API',
    up: `
      CREATE TABLE boot_tokens (
        token_hash TEXT PRIMARY KEY,
        machine_id INTEGER NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
      );
      CREATE INDEX boot_tokens_machine ON boot_tokens (machine_id);
      CREATE INDEX boot_tokens_expires ON boot_tokens (expires_at);
    `,
  },
];
