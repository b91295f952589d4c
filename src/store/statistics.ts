import type { Database } from './database.js';

/**
 * Refreshes the query planner's statistics (ANALYZE, the same statement on SQLite and PostgreSQL). After a
 * bulk load the planner otherwise still believes the index tables are empty and picks scans in id order.
 * PostgreSQL's autovacuum does this eventually; imports do it at once.
 */
export async function refreshPlannerStatistics(db: Database): Promise<void> {
  await db.exec('ANALYZE');
}
