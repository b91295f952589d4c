import { join } from 'node:path';
import type { Database } from './database.js';
import { PostgresDatabase } from './postgres.js';
import { ensurePrivateDirectory } from './private-files.js';
import { migrate } from './schema.js';
import { dropValueSamples } from './statistics.js';
import { SqliteDatabase } from './sqlite.js';

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
  let db: Database;
  if (config.databaseUrl?.startsWith('postgres')) {
    const pg = new PostgresDatabase({ connectionString: config.databaseUrl, schema: config.schema, statementTimeoutMs: config.statementTimeoutMs });
    await pg.init();
    db = pg;
  } else {
    db = new SqliteDatabase(join(config.dataDir, 'tessera.db'));
  }
  await migrate(db, schemaVersion);
  // Stores analysed before value samples were dropped (statistics.ts) recompiled every search statement on every execution.
  if (db.dialect.name === 'sqlite') await dropValueSamples(db);
  return db;
}
