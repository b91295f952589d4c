import type { Dialect, SqlExecutor } from './database.js';

/**
 * Allocates integer keys (resource.rk) for new resources inside a write transaction. SQLite serialises
 * writers, so the next keys follow the largest one stored (a seek to the end of the table's B-tree);
 * PostgreSQL takes them from a sequence, safe under concurrent writers.
 */
export async function allocateResourceKeys(tx: SqlExecutor, dialect: Dialect, count: number): Promise<number[]> {
  if (count === 0) {
    return [];
  }
  if (dialect.name === 'postgres') {
    const rows = await tx.query<{ k: number }>("SELECT nextval('resource_rk_seq') AS k FROM generate_series(1, ?)", [count]);
    return rows.map((r) => Number(r.k));
  }
  const [{ last }] = await tx.query<{ last: number | null }>('SELECT MAX(rk) AS last FROM resource');
  const first = Number(last ?? 0) + 1;
  return Array.from({ length: count }, (_, i) => first + i);
}
