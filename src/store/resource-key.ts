import type { Dialect, SqlExecutor } from './database.js';

/** PostgreSQL keys fetched from the sequence at a time beyond what a write needs. */
const KEY_BLOCK = 100;
/** Keys taken from each database's sequence and not handed out yet (per Database object: one per store). */
const reserved = new WeakMap<object, number[]>();

/**
 * Allocates integer keys (resource.rk) for new resources inside a write transaction. SQLite serialises
 * writers, so the next keys follow the largest one stored (a seek to the end of the table's B-tree).
 * PostgreSQL takes them from a sequence, safe under concurrent writers and processes, a block at a time:
 * one round trip per hundred resources instead of one per write (a single-resource write or an HL7
 * message's five resources each paid one). Keys of a rolled-back transaction or of a stopped process are
 * gaps; nothing relies on keys being dense or in time order (they are join keys: docs/decisions/0010).
 */
export async function allocateResourceKeys(tx: SqlExecutor, dialect: Dialect, count: number, store: object): Promise<number[]> {
  if (count === 0) {
    return [];
  }
  if (dialect.name === 'postgres') {
    let pool = reserved.get(store);
    if (!pool) reserved.set(store, (pool = []));
    if (pool.length < count) {
      const rows = await tx.query<{ k: number }>("SELECT nextval('resource_rk_seq') AS k FROM generate_series(1, ?)", [count - pool.length + KEY_BLOCK]);
      pool.push(...rows.map((r) => Number(r.k)));
    }
    return pool.splice(0, count);
  }
  const [{ last }] = await tx.query<{ last: number | null }>('SELECT MAX(rk) AS last FROM resource');
  const first = Number(last ?? 0) + 1;
  return Array.from({ length: count }, (_, i) => first + i);
}
