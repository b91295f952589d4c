import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Database } from '../store/database.js';
import { openDatabase, type StoreConfig } from '../store/open.js';
import { SqliteDatabase } from '../store/sqlite.js';
import { migrateAuditFile } from './audit-schema.js';
import { AuditLog } from './audit-log.js';
import { AuditJournal } from './audit-journal.js';
import { storeAddressOf, type StoreAddress } from '../store/store-address.js';
import { AUDIT_CHECKPOINTS, InlineAuditWriter, ThreadAuditWriter } from './audit-writer.js';

/**
 * Where the audit tables live. PostgreSQL: in the main database, since several Tessera processes share it
 * and must extend one chain (they serialise on a writer lock). SQLite: in a file of its own, audit.db
 * next to tessera.db (mode 0600): SQLite has one writer per file, and sharing it would make every audited
 * read wait behind a bulk import's transaction; its own file keeps audit commits off the data writer's lock.
 */
export function auditFile(dataDir: string): string {
  return join(dataDir, 'audit.db');
}

/** `checkpointed`: this connection runs the file's checkpointer (false: the writer thread's does). */
async function openAuditFile(dataDir: string, checkpointed = true): Promise<Database> {
  const file = auditFile(dataDir);
  if (!existsSync(file)) {
    mkdirSync(dataDir, { recursive: true });
    closeSync(openSync(file, 'a', 0o600)); // SQLite gives its -wal and -shm files the database file's mode
  }
  const db = new SqliteDatabase(file, { checkpoints: checkpointed && AUDIT_CHECKPOINTS });
  await migrateAuditFile(db);
  return db;
}

/** The audit journal's directory (audit-journal.ts), in the data directory on either backend. */
export function auditJournalDir(dataDir: string): string {
  return join(dataDir, 'audit-journal');
}

/**
 * The audit log of a running server; `mainDb` is the store it serves (shared on PostgreSQL). Records
 * that a process killed before committing left in this data directory's journal are appended first.
 * With `thread`, commits run on a writer thread of their own (a server); without, on this one (a CLI command).
 */
export async function openAuditLog(config: StoreConfig, mainDb: Database, options: { onError?: (err: unknown) => void; thread?: boolean } = {}): Promise<AuditLog> {
  const journal = new AuditJournal(auditJournalDir(config.dataDir));
  const postgres = mainDb.dialect.name === 'postgres';
  // With a writer thread, its connection checkpoints the file; this one reads (searches) and recovers.
  const db = postgres ? mainDb : await openAuditFile(config.dataDir, !options.thread);
  const inline = new InlineAuditWriter(db);
  // Without the server's statement timeout: waiting for the chain lock counts towards it on PostgreSQL,
  // and a commit of a large journal (after an outage) may rightly take longer.
  const target: StoreAddress = postgres ? storeAddressOf(config, { statementTimeout: false }) : { kind: 'sqlite', file: auditFile(config.dataDir) };
  // Should the thread stop, this connection commits and must checkpoint the file in its place.
  const takeOverCheckpoints = () => (db instanceof SqliteDatabase ? db.startCheckpoints(AUDIT_CHECKPOINTS) : undefined);
  const writer = options.thread ? new ThreadAuditWriter(target, inline, takeOverCheckpoints) : inline;
  const log = new AuditLog(db, !postgres, journal, writer, options.onError);
  await log.recover();
  return log;
}

/** The audit tables' database on its own, for the `tessera audit` commands and tests. */
export async function openAuditDatabase(config: StoreConfig): Promise<Database> {
  return config.databaseUrl?.startsWith('postgres') ? openDatabase(config) : openAuditFile(config.dataDir);
}
