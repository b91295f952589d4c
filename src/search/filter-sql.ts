import { splitToken } from './token-value.js';
import type { Filter } from '@medplum/core';
import { badRequest, forbidden } from '../fhir/outcome.js';
import { subsumption } from '../fhir/code-hierarchy.js';
import { isKnownResourceType } from '../fhir/resource-types.js';
import type { Dialect, SqlValue } from '../store/database.js';
import { INDEX_TABLES, ownIndexRows } from '../store/index-writer.js';
import { NARROW_SPAN_MS, parseDateRange, type DateRange } from './date-range.js';
import { escapeLike, normalizeString } from './normalize.js';
import { getCompiledParam, type CompiledParam, type ParamType } from './parameters.js';

/**
 * Turns one FHIR search filter into a SQL condition on a resource-table alias. Every user value travels as
 * a bound parameter; only identifiers we generate (aliases, table names from INDEX_TABLES) enter the text.
 */
export interface Sql {
  sql: string;
  params: SqlValue[];
  /**
   * For a plain index lookup: the same condition as a WHERE clause over one index table, which a search
   * can be driven from (see search-engine.ts), one per OR alternative: each is a seek of the lookup index,
   * where an OR inside one WHERE made SQLite scan every row of the parameter. `inIdOrder`: the entries of
   * the one alternative come out of the lookup index in id order; `bounded`: it lists the records that
   * point at given resources, so its size follows theirs, not the store's.
   */
  driver?: { table: string; alternatives: Sql[]; inIdOrder: boolean; bounded: boolean };
  /** Set on a value condition that pins every lookup-index column before `id`, so matches come in id order. */
  inIdOrder?: boolean;
  /** Set on a reference value condition naming its target by id: the target's type where the value gives it, else ''. */
  pinsTarget?: string;
  /**
   * The same condition as a probe of the row's own index rows (EXISTS over the range of the index table's
   * key that holds them), for a query that holds few rows already. `rk`: SQL for the row's resource key,
   * by default the alias's `rk` (a query listing index rows has it without reading the resource row).
   */
  probe?: (dialect: Dialect, rk?: string) => Sql;
}

export class UnknownParameterError extends Error {}

/** A condition no row meets: the rows of a type the caller may not reach at all. */
export const NO_ROWS: Sql = Object.freeze({ sql: '1 = 0', params: [] }) as Sql;

/**
 * Which rows of other types a search may look into through a chain or `_has` (the access policy's row
 * condition, src/engine/access-policy.ts): SQL over a resource-table alias, undefined for every row,
 * NO_ROWS for none. Without it (the server's own searches) every row is reachable.
 */
export type Reach = (type: string, alias: string) => Sql | undefined;

const PREFIXES = new Set(['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap']);
const TABLE_OF: Partial<Record<ParamType, string>> = {
  string: INDEX_TABLES.string.table,
  token: INDEX_TABLES.token.table,
  reference: INDEX_TABLES.reference.table,
  date: INDEX_TABLES.date.table,
  number: INDEX_TABLES.number.table,
  quantity: INDEX_TABLES.quantity.table,
  uri: INDEX_TABLES.uri.table,
  composite: INDEX_TABLES.composite.table,
};

let aliasCounter = 0;
function nextAlias(): string {
  aliasCounter = (aliasCounter + 1) % 1_000_000;
  return `x${aliasCounter}`;
}

function or(parts: Sql[]): Sql {
  if (parts.length === 1) {
    return parts[0];
  }
  return { sql: `(${parts.map((p) => p.sql).join(' OR ')})`, params: parts.flatMap((p) => p.params) };
}

/** Splits comma-separated OR values (`\,` is a literal comma). An empty value is an error, not "match all". */
function values(raw: string): string[] {
  const out: string[] = [];
  let current = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (c === '\\' && i + 1 < raw.length && ',$|\\'.includes(raw[i + 1])) {
      current += raw[++i];
    } else if (c === ',') {
      out.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  out.push(current);
  if (out.some((v) => v === '')) {
    throw badRequest(`Empty search value in "${raw}"`);
  }
  return out;
}

/** A condition that `alias` (a resource-table alias of `resourceType`) matches the filter. */
export function filterCondition(resourceType: string, alias: string, filter: Filter, reach?: Reach): Sql {
  const { code } = filter;
  if (code.startsWith('_has:')) {
    return reverseChainCondition(resourceType, alias, filter, reach);
  }
  const dot = code.indexOf('.');
  if (dot > 0) {
    return chainCondition(resourceType, alias, filter, code.slice(0, dot), code.slice(dot + 1), reach);
  }
  if (code === '_id') {
    return idCondition(alias, filter);
  }
  if (code === '_lastUpdated') {
    return lastUpdatedCondition(alias, filter);
  }
  const param = getCompiledParam(resourceType, code);
  if (!param || param.type === 'special') {
    throw new UnknownParameterError(`Unknown search parameter "${code}" for ${resourceType}`);
  }
  if (filter.operator === 'missing') {
    return missingCondition(resourceType, alias, param, filter.value);
  }
  if (param.type === 'date') {
    const alternatives = values(filter.value).map((v) => [splitPrefix('date', filter.operator, v)]);
    return dateLookup(resourceType, alias, param.code, alternatives);
  }
  const { table, where, alternatives, negate, inIdOrder, bounded } = valueLookup(resourceType, param, filter);
  const sql = `${alias}.id ${negate ? 'NOT IN' : 'IN'} (SELECT id FROM ${table} WHERE ${where.sql})`;
  return { sql, params: where.params, driver: negate ? undefined : { table, alternatives, inIdOrder, bounded }, probe: (dialect, rk = `${alias}.rk`) => ownRowsProbe(dialect, rk, table, where, negate) };
}

/**
 * An EXISTS over the row's own index rows of `table` meeting `where`: one key-range seek per row, whatever
 * the planner estimates. SQLite: NOT INDEXED, else it takes the lookup index for an OR of codes and reads
 * each code's rows in the store per row. PostgreSQL: the rows are read by the key range inside a subquery
 * with OFFSET 0, which no condition enters, and `where` filters them; the outer OFFSET 0 keeps the EXISTS a
 * subplan run per row. Without the fences PostgreSQL made a semi-join of it (estimating 936 rows of a code
 * that had 28,000: each of one person's 1,872 rows matched against every row of the code, 2-4 s at 1M), and
 * its generic plan of a named statement read the code's 28,000 lookup rows on every probe (13-21 s).
 */
function ownRowsProbe(dialect: Dialect, rk: string, table: string, where: Sql, negate = false): Sql {
  const rows = ownIndexRows('x', rk);
  const sql =
    dialect.name === 'sqlite'
      ? `EXISTS (SELECT 1 FROM ${table} x NOT INDEXED WHERE ${rows} AND ${where.sql})`
      : `EXISTS (SELECT 1 FROM (SELECT * FROM ${table} x WHERE ${rows} OFFSET 0) x WHERE ${where.sql} OFFSET 0)`;
  return { sql: negate ? `NOT ${sql}` : sql, params: where.params };
}

/** The index rows a filter on a parameter's values picks (not dates or :missing): table, condition, negated. */
function valueLookup(resourceType: string, param: CompiledParam, filter: Filter): { table: string; where: Sql; alternatives: Sql[]; negate: boolean; inIdOrder: boolean; bounded: boolean } {
  const table = TABLE_OF[param.type] as string;
  const operator = filter.operator;
  const negate = operator === 'not' || (operator === 'ne' && !ORDERED_TYPES.has(param.type));
  const alternatives = values(filter.value).map((v) => valueCondition(param, ...splitPrefix(param.type, operator, v)));
  const rows = paramRows(resourceType, param.code);
  const rowsMeeting = (c: Sql): Sql => ({ sql: `type = ? AND ${rows.sql} AND ${c.sql}`, params: [resourceType, ...rows.params, ...c.params] });
  const where = rowsMeeting(or(alternatives));
  // Rows of two codes do not come out of the lookup index in one id order.
  const inIdOrder = alternatives.length === 1 && !!alternatives[0].inIdOrder && (param.storedAs?.codes.length ?? 1) === 1;
  const bounded = alternatives.every((a) => a.pinsTarget !== undefined && RECORD_OWNERS.has(a.pinsTarget || param.storedAs?.targetType || (param.targets.length === 1 ? param.targets[0] : '')));
  return { table, where, alternatives: alternatives.map(rowsMeeting), negate, inIdOrder, bounded };
}

/**
 * Resources whose referrers make one person's or one visit's record: a search naming them lists a bounded
 * number of rows. (An Organization's or a Practitioner's referrers grow with the store.)
 */
const RECORD_OWNERS = new Set(['Patient', 'Encounter']);

/**
 * filterCondition as a probe of the row's own index rows (ownRowsProbe; `rk` the row's resource key, by
 * default the alias's), where filterCondition lists every id the lookup matches in the store: for a query
 * that holds few rows already (one person's records of a type), where that list grows with the store (at
 * 1M resources SQLite built the ~30,000 ids of one lab code for each listing). Chains, `_has`, `_id`,
 * `_lastUpdated` and `:missing` keep filterCondition's own forms.
 */
export function ownRowsCondition(dialect: Dialect, resourceType: string, alias: string, filter: Filter, reach?: Reach, rk?: string): Sql {
  const condition = filterCondition(resourceType, alias, filter, reach);
  return condition.probe?.(dialect, rk) ?? condition;
}

const ORDERED_TYPES = new Set<ParamType>(['date', 'number', 'quantity']);

/**
 * SQL picking a parameter's index rows by their `code` column (alias `rowAlias`): its own code, or for a
 * parameter stored as others (combo-code as code + component-code, patient as subject rows that point at
 * a Patient: CompiledParam.storedAs) theirs.
 */
export function paramRows(resourceType: string, code: string, rowAlias?: string): Sql {
  const column = (name: string) => (rowAlias ? `${rowAlias}.${name}` : name);
  const storedAs = getCompiledParam(resourceType, code)?.storedAs;
  if (!storedAs) {
    return { sql: `${column('code')} = ?`, params: [code] };
  }
  const codes: Sql = {
    sql: storedAs.codes.length === 1 ? `${column('code')} = ?` : `${column('code')} IN (${storedAs.codes.map(() => '?').join(',')})`,
    params: storedAs.codes,
  };
  return storedAs.targetType ? { sql: `${codes.sql} AND ${column('target_type')} = ?`, params: [...codes.params, storedAs.targetType] } : codes;
}

/**
 * Each OR value of a date, number or quantity may carry its own prefix (ge2020,le2010). Medplum's parser
 * only lifts the first one, and none for chained targets, so the prefix is read per value here.
 */
function splitPrefix(type: ParamType, operator: string, value: string): [string, string] {
  if (ORDERED_TYPES.has(type) && /^[a-z]{2}[-+.\d]/.test(value) && PREFIXES.has(value.slice(0, 2))) {
    return [value.slice(0, 2), value.slice(2)];
  }
  return [operator, value];
}

function valueCondition(param: CompiledParam, operator: string, value: string): Sql {
  switch (param.type) {
    case 'string':
      return stringCondition(operator, value);
    case 'token':
      return tokenCondition(operator, value);
    case 'reference':
      return referenceCondition(operator, value);
    case 'date':
      throw badRequest(`Date parameter ${param.code} is searched through its own index lookup`);
    case 'number':
      return numberCondition('value', operator, value, param.code);
    case 'quantity':
      return quantityCondition(operator, value, param.code);
    case 'uri':
      return uriCondition(operator, value);
    case 'composite':
      return compositeCondition(param, operator, value);
    default:
      throw badRequest(`Search parameter type ${param.type} is not supported`);
  }
}

function stringCondition(operator: string, value: string): Sql {
  const norm = normalizeString(value);
  switch (operator) {
    case 'exact':
      return { sql: 'exact = ?', params: [value] };
    case 'contains':
      return { sql: "value LIKE ? ESCAPE '\\'", params: [`%${escapeLike(norm)}%`] };
    case 'eq':
    case 'text':
    case 'ne':
      return { sql: "value LIKE ? ESCAPE '\\'", params: [`${escapeLike(norm)}%`] };
    default:
      throw badRequest(`Modifier :${operator} is not supported on string parameters`);
  }
}

function tokenCondition(operator: string, value: string, valueColumn = 'value', systemColumn = 'system'): Sql {
  if (operator === 'text') {
    return { sql: "text LIKE ? ESCAPE '\\'", params: [`${escapeLike(normalizeString(value))}%`] };
  }
  if (operator === 'below' || operator === 'above') {
    return subsumedTokenCondition(operator, value, valueColumn, systemColumn);
  }
  if (operator !== 'eq' && operator !== 'not' && operator !== 'ne') {
    throw badRequest(`Modifier :${operator} is not supported on token parameters`);
  }
  const { system, code } = splitToken(value);
  if (system === undefined) {
    return { sql: `${valueColumn} = ?`, params: [code] };
  }
  if (!system) {
    return { sql: `${valueColumn} = ? AND ${systemColumn} IS NULL`, params: [code] };
  }
  if (!code) {
    return { sql: `${systemColumn} = ?`, params: [system] };
  }
  return { sql: `${valueColumn} = ? AND ${systemColumn} = ?`, params: [code, system], inIdOrder: valueColumn === 'value' };
}

/** `:below` / `:above` on a token: the code and what it subsumes (or what subsumes it) in its code system. */
function subsumedTokenCondition(operator: 'below' | 'above', value: string, valueColumn: string, systemColumn: string): Sql {
  const { system, code } = splitToken(value);
  if (!system || !code) {
    throw badRequest(`:${operator} needs a system and a code (system|code)`);
  }
  const codes = subsumption(system, code, operator);
  if (!codes) {
    throw badRequest(
      `:${operator} is answered from the hierarchies of the code systems in the R4 specification; ${system} has none here, or does not define "${code}" (SNOMED CT, LOINC and the like need a terminology server)`,
    );
  }
  return { sql: `${valueColumn} IN (${codes.map(() => '?').join(', ')}) AND ${systemColumn} = ?`, params: [...codes, system] };
}

function referenceCondition(operator: string, value: string): Sql {
  const typeModifier = isKnownResourceType(operator) ? operator : undefined;
  if (!typeModifier && operator !== 'eq') {
    throw badRequest(`Modifier :${operator} is not supported on reference parameters`);
  }
  if (/^[a-z][a-z0-9+.-]*:/i.test(value)) {
    return { sql: 'url = ?', params: [value] };
  }
  const parts = value.split('/');
  if (parts.length === 2) {
    if (typeModifier && parts[0] !== typeModifier) {
      return { sql: '1 = 0', params: [] };
    }
    return { sql: 'target_type = ? AND target_id = ?', params: [parts[0], parts[1]], inIdOrder: true, pinsTarget: parts[0] };
  }
  if (typeModifier) {
    return { sql: 'target_type = ? AND target_id = ?', params: [typeModifier, value], inIdOrder: true, pinsTarget: typeModifier };
  }
  return { sql: 'target_id = ?', params: [value], pinsTarget: '' };
}

function dateRange(code: string, value: string): DateRange {
  const range = parseDateRange(value);
  if (!range) {
    throw badRequest(`Invalid date "${value}" for search parameter ${code}`);
  }
  return range;
}

/** `ap` on dates: the value widened by 10 % of its distance from now, and by at least a day. */
function approximately(s: DateRange): [number, number] {
  const margin = Math.max(Math.round(Math.abs(Date.now() - s.lo) * 0.1), 86_400_000);
  return [s.lo - margin, s.hi + margin];
}

/** FHIR date/number comparison semantics on ranges: the index row holds [lo, hi], the search value [s.lo, s.hi]. */
function rangeCondition(lo: string, hi: string, operator: string, s: DateRange): Sql {
  switch (operator) {
    case 'eq':
      return { sql: `${lo} >= ? AND ${hi} <= ?`, params: [s.lo, s.hi] };
    case 'ne':
      return { sql: `(${lo} < ? OR ${hi} > ?)`, params: [s.lo, s.hi] };
    case 'gt':
      return { sql: `${hi} > ?`, params: [s.hi] };
    case 'ge':
      return { sql: `${hi} >= ?`, params: [s.lo] };
    case 'lt':
      return { sql: `${lo} < ?`, params: [s.lo] };
    case 'le':
      return { sql: `${lo} <= ?`, params: [s.hi] };
    case 'sa':
      return { sql: `${lo} > ?`, params: [s.hi] };
    case 'eb':
      return { sql: `${hi} < ?`, params: [s.lo] };
    case 'ap': {
      const [a, b] = approximately(s);
      return { sql: `${hi} >= ? AND ${lo} <= ?`, params: [a, b] };
    }
    default:
      throw badRequest(`Prefix or modifier "${operator}" is not supported on date parameters`);
  }
}

/** A date comparison as conditions on narrow rows (span <= NARROW_SPAN_MS) and on wide rows. */
interface DateBranches {
  narrow: Sql;
  wide: Sql;
}

/**
 * The comparisons on sp_date rows, written so that an index on (type, code, wide, lo) bounds the scan:
 * for narrow rows, `hi >= x` implies `lo >= x - NARROW_SPAN_MS`.
 */
function dateBranches(operator: string, s: DateRange): DateBranches {
  const same = (c: Sql): DateBranches => ({ narrow: c, wide: c });
  switch (operator) {
    case 'eq':
      return same({ sql: 'lo >= ? AND lo <= ? AND hi <= ?', params: [s.lo, s.hi, s.hi] });
    case 'gt':
      return { narrow: { sql: 'lo > ? AND hi > ?', params: [s.hi - NARROW_SPAN_MS, s.hi] }, wide: { sql: 'hi > ?', params: [s.hi] } };
    case 'ge':
      return { narrow: { sql: 'lo >= ? AND hi >= ?', params: [s.lo - NARROW_SPAN_MS, s.lo] }, wide: { sql: 'hi >= ?', params: [s.lo] } };
    case 'eb':
      return same({ sql: 'lo < ? AND hi < ?', params: [s.lo, s.lo] });
    case 'ap': {
      const [a, b] = approximately(s);
      return {
        narrow: { sql: 'lo >= ? AND lo <= ? AND hi >= ?', params: [a - NARROW_SPAN_MS, b, a] },
        wide: { sql: 'hi >= ? AND lo <= ?', params: [a, b] },
      };
    }
    default:
      return same(rangeCondition('lo', 'hi', operator, s));
  }
}

/**
 * `alias.id IN` the union of clean index range scans: for each OR alternative (a list of comparisons that
 * must all hold on the same indexed value), one scan over narrow rows and one over wide rows.
 */
function dateLookup(resourceType: string, alias: string, code: string, alternatives: [string, string][][]): Sql {
  const selects: Sql[] = [];
  for (const comparisons of alternatives) {
    const branches = comparisons.map(([operator, value]) => dateBranches(operator, dateRange(code, value)));
    for (const kind of ['narrow', 'wide'] as const) {
      const conditions = branches.map((b) => b[kind]);
      const rows = paramRows(resourceType, code);
      selects.push({
        sql: `SELECT id FROM sp_date WHERE type = ? AND ${rows.sql} AND wide = ${kind === 'wide' ? 1 : 0} AND ${conditions.map((c) => `(${c.sql})`).join(' AND ')}`,
        params: [resourceType, ...rows.params, ...conditions.flatMap((c) => c.params)],
      });
    }
  }
  return {
    sql: `${alias}.id IN (${selects.map((x) => x.sql).join(' UNION ALL ')})`,
    params: selects.flatMap((x) => x.params),
    probe: (dialect, rk = `${alias}.rk`) => ownRowsProbe(dialect, rk, 'sp_date', dateRowsCondition(resourceType, code, alternatives)),
  };
}

/** The sp_date rows of a parameter meeting any alternative (all of its comparisons on one row): no index bounds, for a probe. */
function dateRowsCondition(resourceType: string, code: string, alternatives: [string, string][][]): Sql {
  const matches = or(
    alternatives.map((comparisons) => {
      const parts = comparisons.map(([operator, value]) => rangeCondition('x.lo', 'x.hi', operator, dateRange(code, value)));
      return { sql: parts.map((c) => `(${c.sql})`).join(' AND '), params: parts.flatMap((c) => c.params) };
    }),
  );
  const rows = paramRows(resourceType, code, 'x');
  return { sql: `x.type = ? AND ${rows.sql} AND ${matches.sql}`, params: [resourceType, ...rows.params, ...matches.params] };
}

/**
 * Conditions for all the filters of a search. Repeated single-valued comparisons on one date parameter
 * (date=ge2024-01-01&date=lt2024-02-01) must hold on the same indexed value, so they become one index
 * lookup; FHIR lets each hold on any value, which differs only for elements that repeat (see
 * docs/decisions/0003-search-index.md).
 */
export function filtersCondition(resourceType: string, alias: string, filters: Filter[], reach?: Reach): Sql[] {
  const out: Sql[] = [];
  const dateGroups = new Map<string, Filter[]>();
  for (const filter of filters) {
    const param = filter.code.includes('.') || filter.code.startsWith('_') ? undefined : getCompiledParam(resourceType, filter.code);
    const mergeable = param?.type === 'date' && filter.operator !== 'missing' && !filter.value.includes(',');
    if (mergeable) {
      dateGroups.set(filter.code, [...(dateGroups.get(filter.code) ?? []), filter]);
    } else {
      out.push(filterCondition(resourceType, alias, filter, reach));
    }
  }
  for (const [code, group] of dateGroups) {
    out.push(dateLookup(resourceType, alias, code, [group.map((f) => splitPrefix('date', f.operator, f.value))]));
  }
  return out;
}

function parseNumber(code: string, value: string): { n: number; range: DateRange } {
  if (!/^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/.test(value)) {
    throw badRequest(`Invalid number "${value}" for search parameter ${code}`);
  }
  const n = Number(value);
  // Implicit precision (FHIR search 3.1.1.4.2): "100" matches [99.5, 100.5), "100.0" matches [99.95, 100.05).
  const decimals = /\.(\d+)/.exec(value.replace(/[eE].*$/, ''))?.[1].length ?? 0;
  const half = 0.5 * 10 ** -decimals;
  return { n, range: { lo: n - half, hi: n + half } };
}

function numberCondition(column: string, operator: string, value: string, code: string): Sql {
  const { n, range } = parseNumber(code, value);
  switch (operator) {
    case 'eq':
      return { sql: `${column} >= ? AND ${column} < ?`, params: [range.lo, range.hi] };
    case 'ne':
      return { sql: `(${column} < ? OR ${column} >= ?)`, params: [range.lo, range.hi] };
    case 'gt':
    case 'sa':
      return { sql: `${column} > ?`, params: [n] };
    case 'ge':
      return { sql: `${column} >= ?`, params: [n] };
    case 'lt':
    case 'eb':
      return { sql: `${column} < ?`, params: [n] };
    case 'le':
      return { sql: `${column} <= ?`, params: [n] };
    case 'ap':
      return { sql: `${column} >= ? AND ${column} <= ?`, params: [n - Math.abs(n) * 0.1, n + Math.abs(n) * 0.1] };
    default:
      throw badRequest(`Prefix or modifier "${operator}" is not supported on number parameters`);
  }
}

function quantityCondition(operator: string, value: string, code: string, columns = { value: 'value', system: 'system', unit: 'unit' }): Sql {
  const [number, system, unit] = value.split('|');
  const parts = [numberCondition(columns.value, operator, number, code)];
  if (system) {
    parts.push({ sql: `${columns.system} = ?`, params: [system] });
  }
  if (unit) {
    parts.push({ sql: `${columns.unit} = ?`, params: [unit] });
  }
  return { sql: parts.map((p) => p.sql).join(' AND '), params: parts.flatMap((p) => p.params) };
}

/** code-value-quantity=http://loinc.org|8480-6$gt140: a token, '$', then a value of the second component's type. */
function compositeCondition(param: CompiledParam, operator: string, value: string): Sql {
  const dollar = value.search(/(?<!\\)\$/);
  if (dollar < 0 || operator !== 'eq') {
    throw badRequest(`Composite parameter ${param.code} takes "token$value", e.g. http://loinc.org|8480-6$gt140`);
  }
  const first = tokenCondition('eq', value.slice(0, dollar));
  const type = param.components?.[1].type;
  const [op, second] = splitPrefix(type ?? 'token', 'eq', value.slice(dollar + 1));
  let c2: Sql;
  switch (type) {
    case 'token':
      c2 = tokenCondition('eq', second, 'c2_value', 'c2_system');
      break;
    case 'quantity':
      c2 = quantityCondition(op, second, param.code, { value: 'c2_num', system: 'c2_system', unit: 'c2_value' });
      break;
    case 'date':
      c2 = rangeCondition('c2_lo', 'c2_hi', op, dateRange(param.code, second));
      break;
    case 'string':
      c2 = { sql: "c2_value LIKE ? ESCAPE '\\'", params: [`${escapeLike(normalizeString(second))}%`] };
      break;
    default:
      c2 = { sql: 'c2_value = ?', params: [second] };
  }
  return { sql: `${first.sql} AND ${c2.sql}`, params: [...first.params, ...c2.params] };
}

function uriCondition(operator: string, value: string): Sql {
  switch (operator) {
    case 'eq':
      return { sql: 'value = ?', params: [value] };
    case 'below':
      return { sql: "value LIKE ? ESCAPE '\\'", params: [`${escapeLike(value)}%`] };
    case 'above':
      return { sql: 'substr(?, 1, length(value)) = value', params: [value] };
    default:
      throw badRequest(`Modifier :${operator} is not supported on uri parameters`);
  }
}

function missingCondition(resourceType: string, alias: string, param: CompiledParam, value: string): Sql {
  if (value !== 'true' && value !== 'false') {
    throw badRequest(`:missing takes true or false, not "${value}"`);
  }
  const rows = paramRows(resourceType, param.code, 'm');
  const exists = `EXISTS (SELECT 1 FROM ${TABLE_OF[param.type]} m WHERE ${ownIndexRows('m', `${alias}.rk`)} AND ${rows.sql})`;
  return { sql: value === 'true' ? `NOT ${exists}` : exists, params: rows.params };
}

function idCondition(alias: string, filter: Filter): Sql {
  const ids = values(filter.value);
  const list = ids.map(() => '?').join(',');
  if (filter.operator === 'eq') {
    return { sql: `${alias}.id IN (${list})`, params: ids };
  }
  if (filter.operator === 'not' || filter.operator === 'ne') {
    return { sql: `${alias}.id NOT IN (${list})`, params: ids };
  }
  throw badRequest(`Modifier :${filter.operator} is not supported on _id`);
}

function lastUpdatedCondition(alias: string, filter: Filter): Sql {
  if (filter.operator === 'missing') {
    return { sql: filter.value === 'true' ? '1 = 0' : '1 = 1', params: [] };
  }
  const column = `${alias}.last_updated`;
  return or(
    values(filter.value).map((v) => {
      const [operator, value] = splitPrefix('date', filter.operator, v);
      return rangeCondition(column, column, operator, dateRange('_lastUpdated', value));
    }),
  );
}

/** subject:Patient.name=smith — resources whose reference points at a target matching the rest of the chain. */
function chainCondition(resourceType: string, alias: string, filter: Filter, head: string, rest: string, reach?: Reach): Sql {
  const [refCode, typeModifier] = head.split(':');
  const param = getCompiledParam(resourceType, refCode);
  if (!param || param.type !== 'reference') {
    throw new UnknownParameterError(`Chained search on "${refCode}", which is not a reference parameter of ${resourceType}`);
  }
  let targets = typeModifier ? [typeModifier] : param.targets;
  if (!typeModifier) {
    targets = targets.filter((t) => chainableOn(t, rest));
    if (!targets.length) {
      throw new UnknownParameterError(`No target type of ${resourceType}.${refCode} has a search parameter "${rest}"`);
    }
  }
  // A chain looks into its targets' rows: only those the caller may reach count. A target type it may not
  // search at all is left out, and a chain left with none is refused rather than quietly matching nothing.
  const reachable = targets.map((target) => ({ target, rows: reach?.(target, 'x') })).filter((t) => t.rows !== NO_ROWS);
  if (!reachable.length) {
    throw forbidden(`The access token's scopes do not allow search on ${targets.join(', ')} (through the chain ${head})`);
  }
  const parts = reachable.map(({ target }) => {
    const x = nextAlias();
    const inner = filterCondition(target, x, { ...filter, code: rest }, reach);
    const rows = reach?.(target, x);
    return {
      sql: `(target_type = ? AND target_id IN (SELECT ${x}.id FROM resource ${x} WHERE ${x}.type = ? AND ${x}.deleted = 0 AND ${inner.sql}${rows ? ` AND ${rows.sql}` : ''}))`,
      params: [target, target, ...inner.params, ...(rows?.params ?? [])],
    };
  });
  const matches = or(parts);
  const rows = paramRows(resourceType, refCode);
  return {
    sql: `${alias}.id IN (SELECT id FROM sp_reference WHERE type = ? AND ${rows.sql} AND ${matches.sql})`,
    params: [resourceType, ...rows.params, ...matches.params],
  };
}

function chainableOn(targetType: string, rest: string): boolean {
  const code = rest.split(/[.:]/)[0];
  return code === '_id' || code === '_lastUpdated' || code === '_has' || !!getCompiledParam(targetType, code);
}

/** _has:Observation:patient:code=1234 — resources referenced by an Observation (via patient) matching code. */
function reverseChainCondition(resourceType: string, alias: string, filter: Filter, reach?: Reach): Sql {
  const m = /^_has:([A-Za-z]+):([A-Za-z0-9\-_]+):(.+)$/.exec(filter.code);
  if (!m || !isKnownResourceType(m[1])) {
    throw badRequest(`Invalid _has parameter "${filter.code}": expected _has:Type:reference:parameter`);
  }
  const [, sourceType, refCode, rest] = m;
  const refParam = getCompiledParam(sourceType, refCode);
  if (!refParam || refParam.type !== 'reference') {
    throw new UnknownParameterError(`"${refCode}" is not a reference parameter of ${sourceType}`);
  }
  const x = nextAlias();
  // _has answers whether some resource of sourceType matches: only resources the caller may reach count.
  const reachable = reach?.(sourceType, x);
  if (reachable === NO_ROWS) {
    throw forbidden(`The access token's scopes do not allow search on ${sourceType} (through _has)`);
  }
  const inner = filterCondition(sourceType, x, { ...filter, code: rest }, reach);
  const rows = paramRows(sourceType, refCode);
  return {
    sql: `${alias}.id IN (SELECT target_id FROM sp_reference WHERE type = ? AND ${rows.sql} AND target_type = ? AND id IN (SELECT ${x}.id FROM resource ${x} WHERE ${x}.type = ? AND ${x}.deleted = 0 AND ${inner.sql}${reachable ? ` AND ${reachable.sql}` : ''}))`,
    params: [sourceType, ...rows.params, resourceType, sourceType, ...inner.params, ...(reachable?.params ?? [])],
  };
}

/** ORDER BY expression for one _sort rule; nulls sort last on both backends. */
export function sortExpression(resourceType: string, alias: string, code: string): Sql {
  if (code === '_id') {
    return { sql: `${alias}.id`, params: [] };
  }
  if (code === '_lastUpdated') {
    return { sql: `${alias}.last_updated`, params: [] };
  }
  const param = getCompiledParam(resourceType, code);
  if (!param || param.type === 'special') {
    throw badRequest(`Unknown sort parameter "${code}" for ${resourceType}`);
  }
  const column = { string: 'value', token: 'value', reference: 'target_id', date: 'lo', number: 'value', quantity: 'value', uri: 'value', composite: 'value' }[
    param.type as Exclude<ParamType, 'special'>
  ];
  const rows = paramRows(resourceType, code, 's');
  return {
    sql: `(SELECT MIN(s.${column}) FROM ${TABLE_OF[param.type]} s WHERE ${ownIndexRows('s', `${alias}.rk`)} AND ${rows.sql})`,
    params: rows.params,
  };
}
