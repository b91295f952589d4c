import type { Database } from './database.js';
import { ensurePrivateDirectory } from './private-files.js';
import { migrate } from './schema.js';
import { dropValueSamples } from './statistics.js';
import { connect, storeAddressOf } from './store-address.js';

export interface StoreConfig {
  /** postgres://... selects PostgreSQL; otherwise SQLite in `dataDir`. */
  databaseUrl?: string;
  dataDir: string;
  /** PostgreSQL schema to use (tests isolate themselves with one each). */
  schema?: string;
  /** PostgreSQL statement_timeout in ms (0 or absent: none). */
  statementTimeoutMs?: number;
}

/** Opens the configured backend and applies pending schema migrations (up to `schemaVersion`: tests of upgrades). */
export async function openDatabase(config: StoreConfig, schemaVersion?: number): Promise<Database> {
  // Private even with PostgreSQL: the directory holds the token-signing key.
  ensurePrivateDirectory(config.dataDir);
  const db = await connect(storeAddressOf(config));
  await migrate(db, schemaVersion);
  // Stores analysed before value samples were dropped (statistics.ts) recompiled every search statement on every execution.
  if (db.dialect.name === 'sqlite') await dropValueSamples(db);
  return db;
}
