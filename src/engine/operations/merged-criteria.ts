import type { Filter, SearchRequest } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { badRequest } from '../../fhir/outcome.js';
import { equivalentCodings } from '../../record/code-maps.js';
import { getCompiledParam } from '../../search/parameters.js';
import { MAX_COUNT, search } from '../../search/search-engine.js';
import type { Repository } from '../../store/repository.js';
import { searchAccess, type FhirRequest } from '../fhir-request.js';

/** Source records one merged search may gather (at any of its steps) before it asks for narrower criteria. */
export const MAX_SOURCES = 10_000;
/** The parameters that name the person. */
export const PERSON_PARAMS = ['patient', 'subject'];
/** Token parameters whose codes the code maps translate (a local lab code and its LOINC are one concept). */
const MAPPED_TOKENS = new Set(['code', 'combo-code', 'vaccine-code']);

export const keyOf = (r: Resource): string => `${r.resourceType}/${r.id}`;

/** A criterion as the merge compares it: codes widened to the codings the code maps hold for the same concept. */
export function widened(f: Filter): Filter {
  return MAPPED_TOKENS.has(f.code) && f.operator === 'eq' ? { ...f, value: widenCodes(f.value) } : f;
}

/** The filter that names the person's source Patients on a type (none when the type has no patient parameter). */
export function personFilter(type: string, patientIds: readonly string[]): Filter[] {
  const code = PERSON_PARAMS.find((p) => getCompiledParam(type, p)?.type === 'reference');
  return code ? [{ code, operator: 'eq' as Filter['operator'], value: patientIds.map((id) => `Patient/${id}`).join(',') }] : [];
}

/**
 * The source records (`Type/id` keys, and the records as read) the ordinary search finds for the criteria,
 * under the caller's search access, in its order (`_sort`, else by id); more than MAX_SOURCES is a 400.
 */
export async function sourceKeys(repo: Repository, req: FhirRequest, criteria: SearchRequest): Promise<{ keys: string[]; records: Resource[]; suppressed?: boolean }> {
  const records: Resource[] = [];
  const keys: string[] = [];
  let suppressed: boolean | undefined;
  for (let page = 0; ; page += MAX_COUNT) {
    const result = await search(repo, { ...criteria, count: MAX_COUNT, offset: page }, searchAccess(req));
    records.push(...result.matches);
    keys.push(...result.matches.map(keyOf));
    suppressed ||= result.suppressed;
    if (!result.hasMore) break;
    if (keys.length >= MAX_SOURCES) throw badRequest(`More than ${MAX_SOURCES} source records match; narrow the search (code, date, category)`);
  }
  return { keys, records, suppressed };
}

/** A token list with each `system|code` widened to the codings the code maps hold for the same concept. */
function widenCodes(value: string): string {
  const out = new Set<string>();
  for (const v of value.split(',')) {
    out.add(v);
    const bar = v.indexOf('|');
    if (bar > 0 && bar < v.length - 1) for (const c of equivalentCodings(v.slice(0, bar), v.slice(bar + 1))) out.add(`${c.system}|${c.code}`);
  }
  return [...out].join(',');
}
