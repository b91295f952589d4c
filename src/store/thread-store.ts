import { join } from 'node:path';
import type { Database } from './database.js';
import type { StoreConfig } from './open.js';
import { PostgresDatabase } from './postgres.js';
import { SqliteDatabase } from './sqlite.js';

/**
 * A database as a worker thread names it (its workerData must be plain data): a SQLite file, or a
 * PostgreSQL connection string with the schema and statement timeout the server uses. The audit writer
 * and the match model's learner each open one for themselves, off the thread that answers requests.
 */
export type ThreadStore = { kind: 'sqlite'; file: string } | { kind: 'postgres'; connectionString: string; schema?: string; statementTimeoutMs?: number };

/** The running store's data: its PostgreSQL database, or its SQLite data file (tessera.db). */
export function threadStoreOf(config: StoreConfig): ThreadStore {
  return config.databaseUrl?.startsWith('postgres')
    ? { kind: 'postgres', connectionString: config.databaseUrl, schema: config.schema, statementTimeoutMs: config.statementTimeoutMs }
    : { kind: 'sqlite', file: join(config.dataDir, 'tessera.db') };
}

/**
 * The thread's own connection. `checkpoints`, for a SQLite file: the pace of the checkpointer this
 * connection runs, or false when another connection to the file checkpoints it.
 */
export async function openThreadDatabase(store: ThreadStore, checkpoints: false | { idleMs?: number; busyMs?: number }): Promise<Database> {
  if (store.kind === 'sqlite') return new SqliteDatabase(store.file, { checkpoints });
  const pg = new PostgresDatabase({ connectionString: store.connectionString, schema: store.schema, statementTimeoutMs: store.statementTimeoutMs });
  await pg.init();
  return pg;
}
