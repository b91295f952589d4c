import type { SqlExecutor } from '../store/database.js';
import type { PersonFeatures } from './features.js';
import { canonicalGivenName } from './nicknames.js';

/**
 * The full name two records share when they bear the same person's name: the canonical first name
 * (nicknames folded, so Bill and William count as one name) and the first surname's parts. Empty when a
 * record lacks either. Stored in mpi_source.name_key, where counting it is an index lookup.
 */
export function fullNameKey(features: PersonFeatures): string {
  const first = features.firstNames[0];
  const surname = features.surnames[0];
  return first && surname && first.length > 1 ? `${canonicalGivenName(first)} ${surname.parts.join(' ')}` : '';
}

/** How long the population size is reused before it is counted again: it changes slowly. */
const TOTAL_TTL_MS = 60_000;

/**
 * How common a full name is among the people the index holds (enterprise identities, not source records: one person's five records are one bearer of the name), counted where it is needed
 * (one indexed count per matched record, and only when a candidate bears the same name). The number of
 * records is counted at most once a minute. "Two John Smiths born the same day" is weaker evidence than
 * two people of a rare name born the same day: the match model turns these counts into a weight.
 */
export class NameFrequencies {
  private total?: { records: number; complete: boolean; at: number };

  /**
   * People (enterprise identities) bearing this name other than `excludeEnterpriseId` (the record's own
   * person: its earlier records are not "others"), and the number of people; undefined while some
   * records carry no name key yet (written before migration 5: `tessera mpi rebuild` fills them).
   */
  async count(sql: SqlExecutor, key: string, excludeEnterpriseId: string, dateKey?: string, dateSharersEnough = Infinity): Promise<{ others: number; records: number; dateSharers?: number } | undefined> {
    const total = await this.population(sql);
    if (!total.complete) {
      return undefined;
    }
    const [{ n }] = await sql.query<{ n: number }>('SELECT COUNT(DISTINCT enterprise_id) AS n FROM mpi_source WHERE name_key = ? AND enterprise_id <> ?', [key, excludeEnterpriseId]);
    const dateSharers = dateKey === undefined ? undefined : await this.keySharers(sql, dateKey, excludeEnterpriseId, dateSharersEnough);
    return { others: Number(n), records: total.records, dateSharers };
  }

  /**
   * People (enterprise identities) with a first-name-and-birth-date key besides `excludeEnterpriseId`,
   * counted exactly below `enough` and as at least `enough` from there: the caller's decision does not
   * change past it (MatchModel.decisiveDateSharers). A key thousands share (one birth date, a common first
   * name) then costs reading a few of their rows, not all of them: counting them all grew each create's
   * time with the number of sharers (bench:mpi-shared).
   */
  async keySharers(sql: SqlExecutor, key: string, excludeEnterpriseId: string, enough = Infinity): Promise<number> {
    if (Number.isFinite(enough)) {
      // Rows are source records: a person's several records count once, so read a few more rows than people needed.
      const rowLimit = Math.max(1, enough) * 4;
      const rows = await sql.query<{ enterprise_id: string }>(
        'SELECT s.enterprise_id FROM mpi_block b JOIN mpi_source s ON s.patient_id = b.patient_id WHERE b.key = ? AND s.enterprise_id <> ? LIMIT ?',
        [key, excludeEnterpriseId, rowLimit],
      );
      const people = new Set(rows.map((r) => r.enterprise_id)).size;
      if (people >= enough || rows.length < rowLimit) return people;
    }
    return (await this.dateSharers(sql, [key], excludeEnterpriseId)).get(key) ?? 0;
  }

  /**
   * People (enterprise identities) sharing each first-name-and-birth-date key (blocking.ts
   * firstNameDateKey), besides `excludeEnterpriseId`: how common the birth date is among people of
   * that first name, for the namesake risk (match-model.ts expectedNamesakes).
   */
  async dateSharers(sql: SqlExecutor, keys: string[], excludeEnterpriseId = ''): Promise<Map<string, number>> {
    const byKey = new Map<string, number>();
    const unique = [...new Set(keys.filter(Boolean))];
    for (let i = 0; i < unique.length; i += 500) {
      const chunk = unique.slice(i, i + 500);
      const rows = await sql.query<{ key: string; n: number }>(
        `SELECT b.key, COUNT(DISTINCT s.enterprise_id) AS n FROM mpi_block b JOIN mpi_source s ON s.patient_id = b.patient_id
          WHERE b.key IN (${chunk.map(() => '?').join(',')}) AND s.enterprise_id <> ? GROUP BY b.key`,
        [...chunk, excludeEnterpriseId],
      );
      rows.forEach((r) => byKey.set(r.key, Number(r.n)));
    }
    return byKey;
  }

  /**
   * For re-clustering: how many people (enterprise identities) bear each of these names, and the number
   * of people; undefined while some records carry no name key yet.
   */
  async bearers(sql: SqlExecutor, keys: string[], dateKeys: string[] = []): Promise<{ byKey: Map<string, number>; byDateKey: Map<string, number>; records: number } | undefined> {
    const total = await this.population(sql);
    if (!total.complete) {
      return undefined;
    }
    const byKey = new Map<string, number>();
    const unique = [...new Set(keys.filter(Boolean))];
    for (let i = 0; i < unique.length; i += 500) {
      const chunk = unique.slice(i, i + 500);
      const rows = await sql.query<{ name_key: string; n: number }>(
        `SELECT name_key, COUNT(DISTINCT enterprise_id) AS n FROM mpi_source WHERE name_key IN (${chunk.map(() => '?').join(',')}) GROUP BY name_key`,
        chunk,
      );
      rows.forEach((r) => byKey.set(r.name_key, Number(r.n)));
    }
    return { byKey, byDateKey: await this.dateSharers(sql, dateKeys), records: total.records };
  }

  private async population(sql: SqlExecutor): Promise<{ records: number; complete: boolean }> {
    const now = Date.now();
    if (!this.total || now - this.total.at > TOTAL_TTL_MS) {
      const [row] = await sql.query<{ n: number; unkeyed: number }>('SELECT COUNT(DISTINCT enterprise_id) AS n, COUNT(*) - COUNT(name_key) AS unkeyed FROM mpi_source');
      this.total = { records: Number(row.n), complete: Number(row.unkeyed) === 0, at: now };
    }
    return this.total;
  }
}
