import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Database } from '../store/database.js';
import { openDatabase, type StoreConfig } from '../store/open.js';
import { SqliteDatabase } from '../store/sqlite.js';
import { migrateAuditFile } from './audit-schema.js';
import { AuditLog } from './audit-log.js';

/**
 * Where the audit tables live. PostgreSQL: in the main database, since several Tessera processes share it
 * and must extend one chain (they serialise on an advisory lock). SQLite: in a file of its own, audit.db
 * next to tessera.db (mode 0600): SQLite has one writer per file, and sharing it would make every audited
 * read wait behind a bulk import's transaction; its own file keeps audit commits off the data writer's lock.
 */
export function auditFile(dataDir: string): string {
  return join(dataDir, 'audit.db');
}

async function openAuditFile(dataDir: string): Promise<Database> {
  const file = auditFile(dataDir);
  if (!existsSync(file)) {
    mkdirSync(dataDir, { recursive: true });
    closeSync(openSync(file, 'a', 0o600)); // SQLite gives its -wal and -shm files the database file's mode
  }
  const db = new SqliteDatabase(file);
  await migrateAuditFile(db);
  return db;
}

/** The audit log of a running server; `mainDb` is the store it serves (shared on PostgreSQL). */
export async function openAuditLog(config: StoreConfig, mainDb: Database): Promise<AuditLog> {
  if (mainDb.dialect.name === 'postgres') return new AuditLog(mainDb, false);
  return new AuditLog(await openAuditFile(config.dataDir), true);
}

/** The audit tables' database on its own, for the `tessera audit` commands and tests. */
export async function openAuditDatabase(config: StoreConfig): Promise<Database> {
  return config.databaseUrl?.startsWith('postgres') ? openDatabase(config) : openAuditFile(config.dataDir);
}
