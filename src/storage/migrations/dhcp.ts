import type { Migration } from '../migrations.js';

export const migrations: Migration[] = [];
