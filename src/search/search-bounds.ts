import { badRequest, fhirError } from '../fhir/outcome.js';

/**
 * Bounds on what one search may ask for, checked before anything is parsed into SQL. Each criterion
 * becomes a subquery (a chain link or `_has` level one more nested one, an OR value one more term), so
 * without bounds a URL of a few kilobytes could ask for SQL that no backend should run (SQLite refused
 * 1,000 repeated `name=a` with "Expression tree is too large", a 500). The limits are far above what
 * clinical searches use; beyond them the answer is a 400 naming the limit.
 */
export const SEARCH_BOUNDS = {
  /** Query parameters of one search, filters and result parameters together. */
  parameters: 50,
  /** Comma-separated (OR) values of one parameter. */
  valuesPerParameter: 100,
  /** Values of all parameters together. */
  values: 200,
  /** References followed by one chained parameter (`subject:Patient.organization.name` follows 2). */
  chainLinks: 3,
  /** `_has` levels in one parameter (`_has:Observation:subject:_has:...`). */
  hasLevels: 2,
  /** `_include` and `_revinclude` parameters (with or without `:iterate`). */
  includes: 10,
  /** `_offset` beyond this is refused: each skipped row is still read; narrow the search instead. */
  offset: 100_000,
} as const;

const tooCostly = (message: string) => fhirError(400, 'too-costly', message);

/** Throws a 400 OperationOutcome when the query breaks a bound or holds what no search value can (a NUL byte). */
export function checkSearchBounds(query: URLSearchParams): void {
  let parameters = 0;
  let values = 0;
  let includes = 0;
  for (const [key, value] of query) {
    if (key.includes('\0') || value.includes('\0')) {
      throw badRequest(`Search parameter "${key.replace(/\0/g, '\\0')}" contains a NUL character`);
    }
    parameters++;
    const ors = countValues(value);
    if (ors > SEARCH_BOUNDS.valuesPerParameter) {
      throw tooCostly(`Search parameter "${key}" has ${ors} values; at most ${SEARCH_BOUNDS.valuesPerParameter} are allowed`);
    }
    values += ors;
    const hasLevels = key.split('_has:').length - 1;
    if (hasLevels > SEARCH_BOUNDS.hasLevels) {
      throw tooCostly(`Search parameter "${key}" nests _has ${hasLevels} deep; at most ${SEARCH_BOUNDS.hasLevels} levels are allowed`);
    }
    const links = key.split('.').length - 1;
    if (links > SEARCH_BOUNDS.chainLinks) {
      throw tooCostly(`Search parameter "${key}" chains ${links} references; at most ${SEARCH_BOUNDS.chainLinks} are allowed`);
    }
    const code = key.split(':')[0];
    if (code === '_include' || code === '_revinclude') includes++;
    if (code === '_count' || code === '_offset') checkPaging(code, value);
  }
  if (parameters > SEARCH_BOUNDS.parameters) {
    throw tooCostly(`The search has ${parameters} parameters; at most ${SEARCH_BOUNDS.parameters} are allowed`);
  }
  if (values > SEARCH_BOUNDS.values) {
    throw tooCostly(`The search has ${values} values in all; at most ${SEARCH_BOUNDS.values} are allowed`);
  }
  if (includes > SEARCH_BOUNDS.includes) {
    throw tooCostly(`The search has ${includes} _include/_revinclude parameters; at most ${SEARCH_BOUNDS.includes} are allowed`);
  }
}

/** OR values: commas not escaped with a backslash separate them. */
function countValues(value: string): number {
  let count = 1;
  for (let i = 0; i < value.length; i++) {
    if (value[i] === '\\') i++;
    else if (value[i] === ',') count++;
  }
  return count;
}

/** `_count` (larger ones are cut to the page maximum, as FHIR allows) and `_offset`: whole numbers a query can bind. */
function checkPaging(code: '_count' | '_offset', value: string): void {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) {
    throw badRequest(`${code} must be a non-negative whole number, not "${value}"`);
  }
  if (code === '_offset' && n > SEARCH_BOUNDS.offset) {
    throw tooCostly(`_offset ${n} is beyond the maximum of ${SEARCH_BOUNDS.offset}; narrow the search (for example by _lastUpdated) instead of paging that far`);
  }
}
