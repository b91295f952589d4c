import type { Database, Dialect } from '../store/database.js';

/**
 * The audit log's tables, apart from the resource tables so that an append is two narrow inserts:
 * - `audit_event`: one row per event in chain order (`seq`), its stored content (stored-event.ts: the
 *   audit record as compact JSON, or the AuditEvent JSON of events stored before it) exactly as hashed, the
 *   previous event's hash and its own (audit-chain.ts); `recorded_at` (epoch ms) for date searches.
 * - `audit_ref`: the search keys of each event (kind p = patient, e = entity, a = agent), found by key.
 * - `audit_anchor`: the last event moved to archive files, so the chain continues across the boundary.
 */
export function auditTables(d: Dialect): string {
  return `
CREATE TABLE audit_event (
  seq ${d.bigint} PRIMARY KEY,
  recorded_at ${d.bigint} NOT NULL,
  content TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
);
CREATE INDEX audit_event_recorded ON audit_event (recorded_at);
CREATE TABLE audit_ref (
  kind TEXT NOT NULL,
  ref TEXT NOT NULL,
  seq ${d.bigint} NOT NULL,
  PRIMARY KEY (kind, ref, seq)
)${d.name === 'sqlite' ? ' WITHOUT ROWID' : ''};
CREATE INDEX audit_ref_seq ON audit_ref (seq);
CREATE TABLE audit_anchor (
  id INTEGER PRIMARY KEY,
  seq ${d.bigint} NOT NULL,
  hash TEXT NOT NULL,
  archived_at ${d.bigint} NOT NULL
);
`;
}

/**
 * Migrations of the SQLite audit file (audit.db), which has no resource tables. On PostgreSQL the same
 * tables are a migration of the main schema (src/store/schema.ts).
 */
const AUDIT_FILE_MIGRATIONS: ((d: Dialect) => string)[] = [auditTables, () => AUDIT_JOURNAL_MARKS];

/**
 * How far each journal file (audit-journal.ts) is committed: written in the same transaction as the
 * records, so that a file a crash left behind is replayed from there, never appended twice.
 */
export const AUDIT_JOURNAL_MARKS = 'CREATE TABLE audit_journal_mark (name TEXT PRIMARY KEY, committed_to BIGINT NOT NULL);';

export async function migrateAuditFile(db: Database): Promise<void> {
  await db.exec(`CREATE TABLE IF NOT EXISTS audit_schema (version INTEGER PRIMARY KEY, applied_at ${db.dialect.bigint} NOT NULL)`);
  await db.transaction(async (tx) => {
    const applied = new Set((await tx.query<{ version: number }>('SELECT version FROM audit_schema')).map((r) => Number(r.version)));
    for (let i = 0; i < AUDIT_FILE_MIGRATIONS.length; i++) {
      if (applied.has(i + 1)) continue;
      await tx.exec(AUDIT_FILE_MIGRATIONS[i](db.dialect));
      await tx.run('INSERT INTO audit_schema (version, applied_at) VALUES (?, ?)', [i + 1, Date.now()]);
    }
  });
}
