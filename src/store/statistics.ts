import type { Database } from './database.js';
import { INDEX_KINDS, INDEX_TABLES } from './index-writer.js';

const TABLES = ['resource', 'resource_history', 'compartment', ...INDEX_KINDS.map((k) => INDEX_TABLES[k].table)];

/**
 * Brings the query planner up to date after a bulk load: otherwise it still believes the index tables are
 * empty and picks scans in id order. SQLite: ANALYZE. PostgreSQL: VACUUM (ANALYZE) of Tessera's tables,
 * because rows just written are not yet marked all-visible, so every "index-only" lookup would still
 * visit the table's pages until autovacuum gets round to them.
 *
 * SQLite keeps the per-index row counts (sqlite_stat1) but not the value samples (sqlite_stat4): with
 * samples, a prepared statement whose plan could depend on a bound value is compiled again on every
 * execution, and a search with the access policy's conditions cost 120 µs of compiling per query for a
 * 10 µs lookup (docs/decisions/0032).
 */
export async function refreshPlannerStatistics(db: Database): Promise<void> {
  if (db.dialect.name === 'postgres') {
    await db.exec(`VACUUM (ANALYZE) ${TABLES.join(', ')}`);
    return;
  }
  await db.exec('ANALYZE');
  await dropValueSamples(db);
}

/** Empties sqlite_stat4 (where the library keeps it) and makes the planner read the statistics again. */
export async function dropValueSamples(db: Database): Promise<void> {
  const [stat4] = await db.query<{ n: number }>("SELECT COUNT(*) AS n FROM sqlite_schema WHERE name = 'sqlite_stat4'");
  if (!stat4?.n) return;
  // `ANALYZE sqlite_schema` reloads the statistics into this connection; others load them when they next read the schema.
  await db.exec('DELETE FROM sqlite_stat4; ANALYZE sqlite_schema');
}
