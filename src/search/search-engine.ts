import type { IncludeTarget, SearchRequest } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { badRequest } from '../fhir/outcome.js';
import { joinOwnIndexRows, ownerKey } from '../store/index-writer.js';
import type { Repository } from '../store/repository.js';
import { derivedRecordsCondition } from './derived-records.js';
import { filtersCondition, NO_ROWS, paramRows, sortExpression, type Reach, type Sql } from './filter-sql.js';
import { getCompiledParam } from './parameters.js';

export const DEFAULT_COUNT = 20;
export const MAX_COUNT = 1000;
const MAX_INCLUDE_DEPTH = 4;

export interface SearchResult {
  matches: Resource[];
  included: Resource[];
  total?: number;
  offset: number;
  count: number;
  /** True when more matches follow this page. */
  hasMore: boolean;
  /** True when rows matching the search were withheld for their security labels. */
  suppressed?: boolean;
}

/** `base` AND each condition that is present. */
function and(base: Sql, ...more: (Sql | undefined)[]): Sql {
  const parts = [base, ...more.filter((m): m is Sql => !!m)];
  return { sql: parts.map((p) => p.sql).join(' AND '), params: parts.flatMap((p) => p.params) };
}

/**
 * The page query, driven from one filter's index lookup where drivenRows finds one (else the engine plans
 * the `r.id IN (lookup)` conditions). In id order with a single lookup listing its entries in id order (the
 * broad first page, `Observation?code=X`) the query stops after one page: with `r.id IN (lookup)` SQLite
 * first collected every match into a temporary table (35 ms at p50 at 1M), and PostgreSQL, whose estimate
 * for a common code was 8x too low, hashed and sorted all ~2,900 matches (40 ms at 100k) instead of
 * reading 21 (docs/performance.md).
 */
function pageQuery(repo: Repository, driven: DrivenRows | undefined, where: Sql, order: Sql[], limit: number, offset: number, also?: Sql): Sql {
  // A further column (evaluated once: it does not depend on the row), named `also`.
  const column = also ? { sql: `, (${also.sql}) AS also`, params: also.params } : { sql: '', params: [] };
  const orderBy = driven?.inIdOrder ? [{ sql: 'd.id', params: [] }] : order;
  const orderSql = { sql: orderBy.map((o) => o.sql).join(', '), params: orderBy.flatMap((o) => o.params) };
  if (driven) {
    // SQLite's lookup is a plain subquery (see drivenRows): one row per match again.
    const group = repo.db.dialect.name === 'sqlite' ? 'GROUP BY d.id' : '';
    return {
      sql: `SELECT r.content${column.sql} ${driven.sql} ${group} ORDER BY ${orderSql.sql} LIMIT ? OFFSET ?`,
      params: [...column.params, ...driven.params, ...orderSql.params, limit, offset],
    };
  }
  return {
    sql: `SELECT r.content${column.sql} FROM resource r WHERE ${where.sql} ORDER BY ${orderSql.sql} LIMIT ? OFFSET ?`,
    params: [...column.params, ...where.params, ...orderSql.params, limit, offset],
  };
}

/** `FROM (lookup) d JOIN resource r ... WHERE ...`; `inIdOrder` when the lookup lists the matches in id order. */
interface DrivenRows extends Sql {
  inIdOrder: boolean;
}

/**
 * `FROM ... WHERE ...` of the rows matching a search, driven from one filter's index table (its lookup rows
 * `d`, joined to `resource r` and kept by the other filters and `kept`), or undefined to leave the plan to
 * the engine. The driver is
 * - the only filter, when its lookup lists its entries in id order and no sort asks for another order:
 *   the page then reads no more than a page;
 * - else a filter naming the resources the matches point at (`patient=`, `subject=`, `encounter=`): it
 *   lists as many rows as those resources have, whatever the store holds, and the other filters probe each
 *   of those rows' own index rows (also sorted, or with OR values, where the engine might walk the whole
 *   type in the order asked, testing each row). Left to themselves, the engines listed every match of
 *   each filter store-wide (`Observation?patient=..&code=HbA1c&date=ge..` on PostgreSQL at 1M: past 8 s).
 * SQLite: INDEXED BY, or it may satisfy ORDER BY by scanning the whole (type, id) index; the lookup stays
 * a plain subquery (deduplicated by the caller's GROUP BY where it lists rows) so that SQLite flattens it
 * and streams it.
 */
function drivenRows(repo: Repository, type: string, filters: Sql[], kept: Sql | undefined, sorted = false): DrivenRows | undefined {
  const dialect = repo.db.dialect;
  const streams = filters.length === 1 && !!filters[0].driver?.inIdOrder && !sorted;
  const chosen = streams ? filters[0] : filters.find((f) => f.driver?.bounded);
  const driver = chosen?.driver;
  if (!driver) return undefined;
  // PostgreSQL: DISTINCT, or UNION between alternatives; SQLite: UNION ALL, and the caller groups by id.
  const sqlite = dialect.name === 'sqlite';
  const others = filters.filter((f) => f !== chosen).map((f) => f.probe?.(dialect, 'd.rk') ?? f);
  // With other filters, each lookup row carries its resource's key: their probes run before the resource row
  // is read. Not otherwise: the key is not in the lookup index, and PostgreSQL then sorted every match
  // (1.5 s for a common code at 1M) instead of streaming the index.
  const columns = others.length ? `id, ${ownerKey(driver.table)} AS rk` : 'id';
  const lookup = driver.alternatives
    .map((where, i) => (sqlite ? `SELECT ${columns} FROM ${driver.table} INDEXED BY ${driver.table}_lookup WHERE ${where.sql}` : `SELECT ${i ? '' : 'DISTINCT '}${columns} FROM ${driver.table} WHERE ${where.sql}`))
    .join(sqlite ? ' UNION ALL ' : ' UNION ');
  const rows = and({ sql: 'r.deleted = 0', params: [] }, ...others, kept);
  return {
    // CROSS JOIN: SQLite keeps the lookup outside (without statistics it scanned every row of the type instead).
    sql: `FROM (${lookup}) d ${sqlite ? 'CROSS JOIN' : 'JOIN'} resource r ON r.type = ? AND r.id = d.id WHERE ${rows.sql}`,
    params: [...driver.alternatives.flatMap((w) => w.params), type, ...rows.params],
    inIdOrder: streams,
  };
}

/**
 * `FROM ... WHERE ...` of the rows matching the search that the caller could reach but for their security
 * labels (undefined when labels withhold nothing from this caller): driven by the same index lookup as
 * the page where it has one (a join, not an IN list the engine first materialises).
 */
function withheldCheck(repo: Repository, request: SearchRequest, filters: Sql[], derived: Sql | undefined, access: SearchAccess | undefined): Sql | undefined {
  const withheld = access?.withheld(request.resourceType, 'r');
  if (!withheld) return undefined;
  const driven = drivenRows(repo, request.resourceType, filters, derived ? and(derived, withheld) : withheld);
  if (driven) return driven;
  const where = and({ sql: 'r.type = ? AND r.deleted = 0', params: [request.resourceType] }, ...filters, derived, withheld);
  return { sql: `FROM resource r WHERE ${where.sql}`, params: where.params };
}

/**
 * The rows a caller may reach (the access policy's row conditions, src/engine/access-policy.ts): `search`
 * for the matches, counts, chains and _has; `read` for what _include and _revinclude add.
 */
export interface SearchAccess {
  search: Reach;
  read: Reach;
  /** Rows the caller could reach but for their security labels (see AccessPolicy.withheldForLabels). */
  withheld: Reach;
}

export async function search(repo: Repository, request: SearchRequest, access?: SearchAccess): Promise<SearchResult> {
  const filters = filtersCondition(request.resourceType, 'r', request.filters ?? [], access?.search);
  const derived = derivedRecordsCondition(repo.db.dialect, request.resourceType, 'r.rk', request.filters ?? []);
  const reachable = access?.search(request.resourceType, 'r');
  // Rows left out whatever the filters say: derived records, and what the caller may not reach.
  const hidden = derived && reachable ? and(derived, reachable) : (derived ?? reachable);
  // The WHERE clause over alias `r` of the resource table.
  const where = and({ sql: 'r.type = ? AND r.deleted = 0', params: [request.resourceType] }, ...filters, hidden);
  const count = Math.min(request.count ?? DEFAULT_COUNT, MAX_COUNT);
  const offset = request.offset ?? 0;
  if (count < 0 || offset < 0 || !Number.isInteger(offset)) {
    throw badRequest('_count and _offset must be non-negative integers');
  }
  const order: Sql[] = [];
  for (const rule of request.sortRules ?? []) {
    const expr = sortExpression(request.resourceType, 'r', rule.code);
    const dir = rule.descending ? 'DESC' : 'ASC';
    // "(x IS NULL)" first makes missing values sort last on SQLite and PostgreSQL alike.
    order.push({ sql: `(${expr.sql} IS NULL), ${expr.sql} ${dir}`, params: [...expr.params, ...expr.params] });
  }
  order.push({ sql: 'r.id', params: [] });

  const driven = drivenRows(repo, request.resourceType, filters, hidden, !!request.sortRules?.length);
  // A driven search has one good plan whatever its values (index seeks, then per-row probes). Left to the
  // engine, a search's plan depends on them (a common code or a rare one), so it is planned for each execution.
  const planned = { planEachTime: filters.length > 0 && !driven };
  // Whether rows matching the search were withheld for their labels: asked with the page where there is one
  // (a column evaluated once; on PostgreSQL a round trip less), else on its own.
  const withheld = withheldCheck(repo, request, filters, derived, access);
  let suppressed: boolean | undefined;
  let matches: Resource[] = [];
  let hasMore = false;
  if (count > 0) {
    const page = pageQuery(repo, driven, where, order, count + 1, offset, withheld && { sql: `SELECT COUNT(*) FROM (SELECT 1 ${withheld.sql} LIMIT 1) w`, params: withheld.params });
    const rows = await repo.sql.query<{ content: string; also?: number | string }>(page.sql, page.params, planned);
    hasMore = rows.length > count;
    matches = rows.slice(0, count).map((r) => JSON.parse(r.content));
    if (withheld && rows.length) suppressed = Number(rows[0].also) > 0;
  }
  if (withheld && suppressed === undefined) {
    suppressed = (await repo.sql.query(`SELECT 1 AS x ${withheld.sql} LIMIT 1`, withheld.params, planned)).length > 0;
  }

  let total: number | undefined;
  if (request.total === 'accurate' || request.total === 'estimate' || count === 0) {
    const counted = driven ? { sql: `SELECT COUNT(DISTINCT d.id) AS n ${driven.sql}`, params: driven.params } : { sql: `SELECT COUNT(*) AS n FROM resource r WHERE ${where.sql}`, params: where.params };
    const [{ n }] = await repo.sql.query<{ n: number }>(counted.sql, counted.params, planned);
    total = Number(n);
  } else if (!hasMore) {
    total = offset + matches.length; // Known for free on the last page.
  }

  const included = await includes(repo, matches, request.include ?? [], request.revInclude ?? [], access?.read);
  return { matches, included, total, offset, count, hasMore, suppressed };
}

function key(r: Resource): string {
  return `${r.resourceType}/${r.id}`;
}

/** _include and _revinclude (with :iterate) over the page of matches (also over a merged search's source records). */
export async function includes(repo: Repository, matches: Resource[], include: IncludeTarget[], revInclude: IncludeTarget[], reach?: Reach): Promise<Resource[]> {
  if (!matches.length || (!include.length && !revInclude.length)) {
    return [];
  }
  const seen = new Set(matches.map(key));
  const included: Resource[] = [];
  let frontier = matches;
  for (let depth = 0; depth < MAX_INCLUDE_DEPTH && frontier.length; depth++) {
    const found: Resource[] = [];
    for (const target of include) {
      if (depth > 0 && target.modifier !== 'iterate') {
        continue;
      }
      found.push(...(await forwardInclude(repo, frontier, target, reach)));
    }
    for (const target of revInclude) {
      if (depth > 0 && target.modifier !== 'iterate') {
        continue;
      }
      found.push(...(await reverseInclude(repo, frontier, target, reach)));
    }
    frontier = found.filter((r) => !seen.has(key(r)) && (seen.add(key(r)), true));
    included.push(...frontier);
  }
  return included;
}

function checkReferenceParam(target: IncludeTarget): void {
  const param = getCompiledParam(target.resourceType, target.searchParam);
  if (!param || param.type !== 'reference') {
    throw badRequest(`Invalid include: ${target.resourceType}:${target.searchParam} is not a reference search parameter`);
  }
}

/** Resources of `type` by id that the caller may reach: missing, deleted and unreachable ones left out. */
async function readReachable(repo: Repository, type: string, ids: string[], reach?: Reach): Promise<Resource[]> {
  const rows = reach?.(type, 'r');
  if (rows === NO_ROWS) {
    return [];
  }
  return repo.readMany(type, ids, rows);
}

async function forwardInclude(repo: Repository, sources: Resource[], target: IncludeTarget, reach?: Reach): Promise<Resource[]> {
  checkReferenceParam(target);
  const ids = sources.filter((r) => r.resourceType === target.resourceType).map((r) => r.id as string);
  const byType = new Map<string, Set<string>>();
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500);
    const param = paramRows(target.resourceType, target.searchParam, 's');
    const rows = await repo.sql.query<{ target_type: string; target_id: string }>(
      `SELECT DISTINCT s.target_type, s.target_id FROM resource r ${joinOwnIndexRows(repo.db.dialect, 'sp_reference', 's', 'r.rk')}
       WHERE r.type = ? AND r.id IN (${chunk.map(() => '?').join(',')}) AND ${param.sql} AND s.target_id IS NOT NULL`,
      [target.resourceType, ...chunk, ...param.params],
    );
    for (const row of rows) {
      if (row.target_type && (!target.targetType || row.target_type === target.targetType)) {
        const set = byType.get(row.target_type) ?? new Set<string>();
        set.add(row.target_id);
        byType.set(row.target_type, set);
      }
    }
  }
  const out: Resource[] = [];
  for (const [type, set] of byType) {
    out.push(...(await readReachable(repo, type, [...set], reach)));
  }
  return out;
}

async function reverseInclude(repo: Repository, targets: Resource[], target: IncludeTarget, reach?: Reach): Promise<Resource[]> {
  checkReferenceParam(target);
  if (reach?.(target.resourceType, 'r') === NO_ROWS) {
    return [];
  }
  const ids = new Set<string>();
  for (let i = 0; i < targets.length; i += 500) {
    const chunk = targets.slice(i, i + 500);
    const cond = chunk.map(() => '(target_type = ? AND target_id = ?)').join(' OR ');
    const param = paramRows(target.resourceType, target.searchParam);
    const rows = await repo.sql.query<{ id: string }>(
      `SELECT DISTINCT id FROM sp_reference WHERE type = ? AND ${param.sql} AND (${cond})`,
      [target.resourceType, ...param.params, ...chunk.flatMap((r) => [r.resourceType, r.id as string])],
    );
    rows.forEach((r) => ids.add(r.id));
  }
  return readReachable(repo, target.resourceType, [...ids], reach);
}
