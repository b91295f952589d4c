import type { Database } from './database.js';
import { INDEX_KINDS, INDEX_TABLES } from './index-writer.js';

const TABLES = ['resource', 'resource_history', 'compartment', ...INDEX_KINDS.map((k) => INDEX_TABLES[k].table)];

/**
 * Brings the query planner up to date after a bulk load: otherwise it still believes the index tables are
 * empty and picks scans in id order. SQLite: ANALYZE. PostgreSQL: VACUUM (ANALYZE) of Tessera's tables,
 * because rows just written are not yet marked all-visible, so every "index-only" lookup would still
 * visit the table's pages until autovacuum gets round to them.
 */
export async function refreshPlannerStatistics(db: Database): Promise<void> {
  await db.exec(db.dialect.name === 'postgres' ? `VACUUM (ANALYZE) ${TABLES.join(', ')}` : 'ANALYZE');
}
