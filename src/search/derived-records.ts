import type { Filter } from '@medplum/core';
import { ownIndexRows } from '../store/index-writer.js';
import type { Dialect } from '../store/database.js';
import type { Sql } from './filter-sql.js';

/**
 * Records the server derives and maintains itself, such as the master patient index's golden Patients.
 * They are real resources (readable, versioned, referenced), but a participant's plain search must see
 * what participants sent: `Patient?family=smith` finding each source record plus a golden copy of it would
 * double every count, and a conditional create on an MRN would match the golden record that carries that
 * MRN among all its identifiers. So searches leave them out unless they ask for them by one of `shownBy`.
 */
export interface DerivedRecordKind {
  resourceType: string;
  /** The tag every such record carries (indexed as `_tag`). */
  tag: { system: string; code: string };
  /** Search parameters that ask for them: e.g. `_tag`, `_id`, `link`. */
  shownBy: ReadonlySet<string>;
}

const kinds = new Map<string, DerivedRecordKind>();

/** Declares a kind of derived record (at start-up). */
export function hideDerivedRecords(kind: DerivedRecordKind): void {
  kinds.set(kind.resourceType, kind);
}

/**
 * SQL leaving the derived records out of a search, where `rk` is the SQL key of the resource at hand
 * (e.g. `r.rk`); undefined when the type has none or the search asks for them. A seek into that resource's
 * own index rows, not a lookup of all tagged records, so its cost does not grow with their number.
 */
export function derivedRecordsCondition(dialect: Dialect, resourceType: string, rk: string, filters: readonly Filter[]): Sql | undefined {
  const kind = kinds.get(resourceType);
  if (!kind || filters.some((f) => kind.shownBy.has(f.code.split(/[.:]/)[0]))) {
    return undefined;
  }
  return {
    // SQLite: NOT INDEXED keeps it on the row-id range. With planner statistics it preferred a skip-scan of
    // the lookup index over every type's golden tags (Patient?identifier at 1M: p50 0.8 -> 6.4 ms).
    sql: `NOT EXISTS (SELECT 1 FROM sp_token h ${dialect.name === 'sqlite' ? 'NOT INDEXED' : ''} WHERE ${ownIndexRows('h', rk)} AND h.code = '_tag' AND h.system = ? AND h.value = ?)`,
    params: [kind.tag.system, kind.tag.code],
  };
}
