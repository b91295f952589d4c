import type { IndexRows } from '../search/index-values.js';
import { fhirError } from '../fhir/outcome.js';
import type { Dialect, RowSet, SqlExecutor, SqlValue } from './database.js';
import { INDEX_ROWS_PER_RESOURCE } from './schema.js';

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
  /** The resource's integer key (resource.rk): its index rows take row ids from rowIdBase(rk). */
  rk: number;
  rows: IndexRows;
}

/** Tables holding a resource's derived rows, all keyed by rid = rowIdBase(rk) + n. */
const DERIVED_TABLES = [...INDEX_KINDS.map((k) => INDEX_TABLES[k].table), 'compartment'];

/**
 * The first row id of a resource's rows in every index table. Its rows are found, for an update or a
 * delete, by a range scan of the table's own primary key: no second index on (type, id) to maintain.
 */
export function rowIdBase(rk: number): number {
  return rk * INDEX_ROWS_PER_RESOURCE;
}

/**
 * SQL for the key of the resource that owns index row `rowAlias` (integer division: the row id is
 * rk * INDEX_ROWS_PER_RESOURCE + n), so a compartment or index row reaches its resource by primary key.
 */
export function ownerKey(rowAlias: string): string {
  return `(${rowAlias}.rid / ${INDEX_ROWS_PER_RESOURCE})`;
}

/**
 * SQL condition: `rowAlias` is one of the index rows of the resource whose key is the SQL expression `rk`
 * (e.g. `r.rk`): a range of the index table's primary key, so a correlated lookup seeks instead of scanning.
 */
export function ownIndexRows(rowAlias: string, rk: string): string {
  return `${rowAlias}.rid >= ${rk} * ${INDEX_ROWS_PER_RESOURCE} AND ${rowAlias}.rid < ${rk} * ${INDEX_ROWS_PER_RESOURCE} + ${INDEX_ROWS_PER_RESOURCE}`;
}

/**
 * SQL joining the index rows of `table` that belong to the resource whose key is the SQL expression `rk`.
 * On PostgreSQL a range against an outer column gets a default selectivity estimate, which can make the
 * planner prefer a hash join over a full scan; LATERAL makes it seek the range once per outer row. (The
 * same estimate multiplied out pushed such queries over jit_above_cost; JIT is off, see postgres.ts.)
 * SQLite plans the plain join as one rowid range seek per row.
 */
export function joinOwnIndexRows(dialect: Dialect, table: string, rowAlias: string, rk: string): string {
  if (dialect.name === 'postgres') {
    return `CROSS JOIN LATERAL (SELECT * FROM ${table} x WHERE ${ownIndexRows('x', rk)}) ${rowAlias}`;
  }
  return `JOIN ${table} ${rowAlias} ON ${ownIndexRows(rowAlias, rk)}`;
}

/**
 * Removes every index row of the given resources (before re-indexing an update, or on delete). On
 * PostgreSQL one statement (data-modifying CTEs) instead of one per table and resource: each round trip
 * costs about as much as the delete itself, and every update pays for nine of them.
 */
export async function deleteIndexRows(tx: SqlExecutor, dialect: Dialect, rks: number[]): Promise<void> {
  if (dialect.name === 'postgres') {
    for (let i = 0; i < rks.length; i += 50) {
      const chunk = rks.slice(i, i + 50);
      const ranges = chunk.map(() => '(rid >= ? AND rid < ?)').join(' OR ');
      const bounds = chunk.flatMap((rk) => [rowIdBase(rk), rowIdBase(rk + 1)]);
      const [last, ...rest] = [...DERIVED_TABLES].reverse();
      const ctes = rest.map((table, n) => `d${n} AS (DELETE FROM ${table} WHERE ${ranges})`).join(', ');
      await tx.run(`WITH ${ctes} DELETE FROM ${last} WHERE ${ranges}`, DERIVED_TABLES.flatMap(() => bounds));
    }
    return;
  }
  for (const table of DERIVED_TABLES) {
    for (const rk of rks) {
      await tx.run(`DELETE FROM ${table} WHERE rid >= ? AND rid < ?`, [rowIdBase(rk), rowIdBase(rk + 1)]);
    }
  }
}

/** The index and compartment rows of many resources, one set per table. */
export function indexRowSets(resources: IndexedResource[]): RowSet[] {
  const sets: RowSet[] = [];
  for (const kind of INDEX_KINDS) {
    const { table, columns } = INDEX_TABLES[kind];
    const batch: SqlValue[][] = [];
    for (const r of resources) {
      const base = rowIdBase(r.rk);
      const rows = r.rows[kind];
      checkRowCount(r, kind, rows.length);
      for (let n = 0; n < rows.length; n++) {
        batch.push([base + n, r.type, r.id, ...(rows[n] as SqlValue[])]);
      }
    }
    sets.push({ table, columns: INSERT_COLUMNS[kind], rows: batch });
  }
  const compartmentRows: SqlValue[][] = [];
  for (const r of resources) {
    const base = rowIdBase(r.rk);
    r.rows.compartment.forEach((patientId, n) => compartmentRows.push([base + n, patientId, r.type, r.id]));
  }
  sets.push({ table: 'compartment', columns: COMPARTMENT_COLUMNS, rows: compartmentRows });
  return sets;
}

/** The columns each index table's rows are inserted with: built once, so a backend can cache by them. */
const INSERT_COLUMNS = Object.fromEntries(INDEX_KINDS.map((kind) => [kind, ['rid', 'type', 'id', ...INDEX_TABLES[kind].columns]])) as Record<(typeof INDEX_KINDS)[number], string[]>;
const COMPARTMENT_COLUMNS = ['rid', 'patient_id', 'type', 'id'];

function checkRowCount(r: IndexedResource, kind: string, count: number): void {
  if (count >= INDEX_ROWS_PER_RESOURCE) {
    throw fhirError(422, 'too-costly', `${r.type}/${r.id} has ${count} ${kind} search values; at most ${INDEX_ROWS_PER_RESOURCE - 1} are indexed per resource`);
  }
}
