import { join } from 'node:path';
import type { Database } from './database.js';
import type { StoreConfig } from './open.js';
import { PostgresDatabase } from './postgres.js';
import { SqliteDatabase } from './sqlite.js';

/**
 * Where a store is, as plain data (a worker thread's workerData must be): a SQLite file, or a PostgreSQL
 * connection string with its schema and statement timeout. The server's connection (open.ts), the audit
 * writer's thread and the match model's learner each open their own from one.
 */
export type StoreAddress = { kind: 'sqlite'; file: string } | { kind: 'postgres'; connectionString: string; schema?: string; statementTimeoutMs?: number };

/**
 * The configured store's data: its PostgreSQL database, or its SQLite data file (tessera.db).
 * `statementTimeout: false` leaves the configured statement timeout out.
 */
export function storeAddressOf(config: StoreConfig, options: { statementTimeout?: boolean } = {}): StoreAddress {
  return config.databaseUrl?.startsWith('postgres')
    ? { kind: 'postgres', connectionString: config.databaseUrl, schema: config.schema, statementTimeoutMs: options.statementTimeout === false ? undefined : config.statementTimeoutMs }
    : { kind: 'sqlite', file: join(config.dataDir, 'tessera.db') };
}

/**
 * A connection of its own to the store. `checkpoints`, for a SQLite file: the pace of the checkpointer
 * this connection runs (absent: the default pace), or false when another connection to the file
 * checkpoints it.
 */
export async function connect(address: StoreAddress, checkpoints?: false | { idleMs?: number; busyMs?: number }): Promise<Database> {
  if (address.kind === 'sqlite') return new SqliteDatabase(address.file, { checkpoints });
  const pg = new PostgresDatabase({ connectionString: address.connectionString, schema: address.schema, statementTimeoutMs: address.statementTimeoutMs });
  await pg.init();
  return pg;
}
