import type { IndexRows } from '../search/index-values.js';
import type { SqlExecutor, SqlValue } from './database.js';

/** Index tables and their columns after (type, id), in the order IndexRows holds them. */
export const INDEX_TABLES = {
  string: { table: 'sp_string', columns: ['code', 'value', 'exact'] },
  token: { table: 'sp_token', columns: ['code', 'system', 'value', 'text'] },
  reference: { table: 'sp_reference', columns: ['code', 'target_type', 'target_id', 'url'] },
  date: { table: 'sp_date', columns: ['code', 'lo', 'hi', 'wide'] },
  number: { table: 'sp_number', columns: ['code', 'value'] },
  quantity: { table: 'sp_quantity', columns: ['code', 'value', 'system', 'unit'] },
  uri: { table: 'sp_uri', columns: ['code', 'value'] },
  composite: { table: 'sp_composite', columns: ['code', 'system', 'value', 'c2_system', 'c2_value', 'c2_num', 'c2_lo', 'c2_hi'] },
} as const;

export type IndexKind = keyof typeof INDEX_TABLES;
export const INDEX_KINDS = Object.keys(INDEX_TABLES) as IndexKind[];

export interface IndexedResource {
  type: string;
  id: string;
  rows: IndexRows;
}

/** Removes every index row of the given resources (before re-indexing an update, or on delete). */
export async function deleteIndexRows(tx: SqlExecutor, type: string, ids: string[]): Promise<void> {
  for (const kind of INDEX_KINDS) {
    for (const id of ids) {
      await tx.run(`DELETE FROM ${INDEX_TABLES[kind].table} WHERE type = ? AND id = ?`, [type, id]);
    }
  }
  for (const id of ids) {
    await tx.run('DELETE FROM compartment WHERE type = ? AND id = ?', [type, id]);
  }
}

/** Writes the index rows of many resources, one batched insert per index table. */
export async function insertIndexRows(tx: SqlExecutor, resources: IndexedResource[]): Promise<void> {
  for (const kind of INDEX_KINDS) {
    const { table, columns } = INDEX_TABLES[kind];
    const batch: SqlValue[][] = [];
    for (const r of resources) {
      for (const row of r.rows[kind]) {
        batch.push([r.type, r.id, ...(row as SqlValue[])]);
      }
    }
    await tx.insertRows(table, ['type', 'id', ...columns], batch);
  }
  const compartmentRows: SqlValue[][] = [];
  for (const r of resources) {
    for (const patientId of r.rows.compartment) {
      compartmentRows.push([patientId, r.type, r.id]);
    }
  }
  await tx.insertRows('compartment', ['patient_id', 'type', 'id'], compartmentRows);
}
