import { formatSearchQuery, getDataType, parseSearchRequest, type Filter, type SearchRequest } from '@medplum/core';
import type { Bundle, BundleEntry, BundleLink, Extension, OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
import { CONFLICT_EXTENSION, mergedFactSources, SOURCE_EXTENSION } from '../record/merged-record.js';
import { badRequest } from '../fhir/outcome.js';
import { filterCondition, UnknownParameterError } from '../search/filter-sql.js';
import { checkSearchBounds } from '../search/search-bounds.js';
import { search, type SearchResult } from '../search/search-engine.js';
import type { Repository } from '../store/repository.js';
import { preferHeader, searchAccess, type FhirRequest } from './fhir-request.js';

/**
 * Parses a search from the request. Unknown parameters are an error under `Prefer: handling=strict`;
 * otherwise (lenient, the default) they are dropped and reported in an OperationOutcome entry.
 */
export function parseSearch(resourceType: string, req: FhirRequest, query: URLSearchParams): { request: SearchRequest; warnings: OperationOutcomeIssue[] } {
  checkSearchBounds(query);
  // Result parameters (_count, _sort, _include, ...) go through @medplum/core's parser. Filters are read
  // here: its filter parsing drops per-value prefixes in OR lists and type modifiers on references.
  const resultParams = new URLSearchParams();
  const filters: Filter[] = [];
  for (const [key, value] of query) {
    const code = key.split(':')[0];
    if (RESULT_PARAMS.has(code)) {
      resultParams.append(key, value);
    } else {
      filters.push(parseFilter(key, value));
    }
  }
  let request: SearchRequest;
  try {
    request = parseSearchRequest(`${resourceType}?${resultParams.toString()}`);
  } catch (err) {
    throw badRequest((err as Error).message);
  }
  if (query.has('_count') && (request.count === null || Number.isNaN(request.count))) {
    throw badRequest(`_count must be a non-negative integer, not "${query.get('_count')}"`);
  }
  const strict = preferHeader(req.prefer, 'handling') === 'strict';
  const warnings: OperationOutcomeIssue[] = [];
  const kept: Filter[] = [];
  for (const filter of filters) {
    try {
      filterCondition(resourceType, 'r', filter);
      kept.push(filter);
    } catch (err) {
      if (!(err instanceof UnknownParameterError)) {
        throw err;
      }
      if (strict) {
        throw badRequest(err.message);
      }
      warnings.push({ severity: 'warning', code: 'not-supported', diagnostics: `${err.message}; ignored` });
    }
  }
  return { request: { ...request, filters: kept.length ? kept : undefined }, warnings };
}

const RESULT_PARAMS = new Set(['_count', '_offset', '_sort', '_include', '_revinclude', '_total', '_summary', '_elements', '_format', '_pretty', '_contained', '_containedType']);

/**
 * `name:exact=x` -> { code: 'name', operator: 'exact' }; chains (`subject:Patient.name`) and `_has:` keep
 * their whole key as the code, with a trailing modifier on the last link lifted off.
 */
function parseFilter(key: string, value: string): Filter {
  if (key.startsWith('_has:') || key.includes('.')) {
    const m = /^(.*[.:][A-Za-z0-9_-]+):(exact|contains|missing|not|text|above|below)$/.exec(key);
    return m ? { code: m[1], operator: m[2] as Filter['operator'], value } : { code: key, operator: 'eq', value };
  }
  const colon = key.indexOf(':');
  if (colon < 0) {
    return { code: key, operator: 'eq', value };
  }
  return { code: key.slice(0, colon), operator: key.slice(colon + 1) as Filter['operator'], value };
}

export async function searchInteraction(repo: Repository, resourceType: string, req: FhirRequest, query: URLSearchParams): Promise<Bundle> {
  const { request, warnings } = parseSearch(resourceType, req, query);
  const result = await search(repo, request, searchAccess(req));
  return searchBundle(req.baseUrl, request, result, warnings);
}

function link(baseUrl: string, relation: string, request: SearchRequest, offset: number, view?: string): BundleLink {
  const query = formatSearchQuery({ ...request, offset });
  const viewed = view ? `${query ? `${query}&` : '?'}_view=${view}` : query;
  return { relation, url: `${baseUrl}/${request.resourceType}${viewed}` };
}

/**
 * The searchset of a page of matches, with self, first, next and previous links that repeat the search;
 * `view` (a merged search's `_view=merged`) is carried in the links so that they page the same view.
 */
export function searchBundle(baseUrl: string, request: SearchRequest, result: SearchResult, warnings: OperationOutcomeIssue[], view?: string): Bundle {
  const links: BundleLink[] = [link(baseUrl, 'self', request, result.offset, view)];
  if (result.count > 0) {
    links.push(link(baseUrl, 'first', request, 0, view));
    if (result.hasMore) {
      links.push(link(baseUrl, 'next', request, result.offset + result.count, view));
    }
    if (result.offset > 0) {
      links.push(link(baseUrl, 'previous', request, Math.max(0, result.offset - result.count), view));
    }
  }
  const entries: BundleEntry[] = [
    ...result.matches.map((r) => entry(baseUrl, shape(r, request), 'match')),
    ...result.included.map((r) => entry(baseUrl, shape(r, request), 'include')),
  ];
  const issues = [...warnings];
  if (result.suppressed) {
    // As the FHIR security-labels page describes: say that something was withheld, not what or how much.
    issues.push({ severity: 'information', code: 'suppressed', diagnostics: 'Some matching resources were withheld under the access policy (security labels)' });
  }
  if (issues.length) {
    entries.push({ resource: { resourceType: 'OperationOutcome', issue: issues }, search: { mode: 'outcome' } });
  }
  const bundle: Bundle = { resourceType: 'Bundle', type: 'searchset', link: links, entry: entries };
  if (result.total !== undefined) {
    bundle.total = result.total;
  }
  return bundle;
}

function entry(baseUrl: string, resource: Resource, mode: 'match' | 'include'): BundleEntry {
  return { fullUrl: `${baseUrl}/${resource.resourceType}/${resource.id}`, resource, search: { mode } };
}

const SUBSETTED = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED' };

/** Applies _summary and _elements to one resource. */
export function shape(resource: Resource, request: Pick<SearchRequest, 'summary' | 'fields'>): Resource {
  let keep: ((key: string) => boolean) | undefined;
  if (request.summary === 'true') {
    const summary = getDataType(resource.resourceType).summaryProperties ?? new Set<string>();
    keep = (key) => summary.has(key) || [...summary].some((s) => key.startsWith(s) && /^[A-Z]/.test(key.slice(s.length)));
  } else if (request.summary === 'data') {
    keep = (key) => key !== 'text';
  } else if (request.summary === 'text') {
    keep = (key) => key === 'text' || key === 'id' || key === 'meta';
  } else if (request.fields?.length) {
    const fields = new Set(request.fields);
    keep = (key) => fields.has(key) || [...fields].some((f) => key.startsWith(f) && /^[A-Z]/.test(key.slice(f.length)));
  }
  if (!keep) {
    return resource;
  }
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(resource)) {
    if (key === 'resourceType' || key === 'id' || key === 'meta' || keep(key)) {
      out[key] = value;
    }
  }
  // A merged fact keeps the extensions naming its sources and conflicts: they are what the fact is (and
  // what its audit record names), and a conflict is never to be hidden, by a summary either.
  if (mergedFactSources(resource).length) {
    const own = ((resource as { extension?: Extension[] }).extension ?? []).filter((e) => e.url === SOURCE_EXTENSION || e.url === CONFLICT_EXTENSION);
    const kept = (out.extension as Extension[] | undefined) ?? [];
    out.extension = [...kept, ...own.filter((e) => !kept.includes(e))];
  }
  const meta = resource.meta ?? {};
  out.meta = { ...meta, tag: [...(meta.tag ?? []), SUBSETTED] };
  return out as unknown as Resource;
}
