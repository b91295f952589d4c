import type { Bundle, Resource } from '@medplum/fhirtypes';
import { badRequest } from '../../fhir/outcome.js';
import type { Repository } from '../../store/repository.js';
import type { FhirRequest, FhirResponse } from '../fhir-request.js';
import { mergedView } from './merged-view.js';
import { pageLinks } from './page-links.js';

/** What the timeline shows: encounters (admissions among them), results, reports and documents. */
export const TIMELINE_TYPES = ['Encounter', 'Observation', 'DiagnosticReport', 'DocumentReference', 'Procedure', 'Immunization'];
const DEFAULT_PAGE = 50;
const MAX_PAGE = 500;

/**
 * Patient/{id}/$timeline: the person's encounters, admissions, results, reports and documents across
 * organisations, each fact once (the merged record), in time order (`_sort=-date` for the most recent
 * first), paged with _count and _offset; `_type` narrows it to some of those types.
 */
export async function timeline(repo: Repository, patientId: string, req: FhirRequest): Promise<FhirResponse> {
  const types = req.query.get('_type')?.split(',').filter(Boolean) ?? TIMELINE_TYPES;
  const wrong = types.find((t) => !TIMELINE_TYPES.includes(t));
  if (wrong) throw badRequest(`$timeline shows ${TIMELINE_TYPES.join(', ')}; not ${wrong}`);
  const sort = req.query.get('_sort') ?? 'date';
  if (sort !== 'date' && sort !== '-date') throw badRequest('$timeline sorts by date or -date');
  const count = Math.min(Number(req.query.get('_count') ?? DEFAULT_PAGE) || DEFAULT_PAGE, MAX_PAGE);
  const offset = Math.max(0, Number(req.query.get('_offset') ?? 0) || 0);
  const view = await mergedView(repo, patientId, req);
  const events = view.resources
    .map((resource, i) => ({ resource, time: view.facts[i].time }))
    .filter((e) => types.includes(e.resource.resourceType) && e.time !== undefined)
    .sort((a, b) => ((a.time as number) - (b.time as number)) * (sort === '-date' ? -1 : 1) || (a.resource.id as string).localeCompare(b.resource.id as string));
  const page = events.slice(offset, offset + count);
  const link = pageLinks(req, `Patient/${patientId}/$timeline`, count, offset, events.length);
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'searchset',
    total: events.length,
    link,
    entry: page.map((e) => ({ fullUrl: `${req.baseUrl}/${e.resource.resourceType}/${e.resource.id}`, resource: e.resource as Resource, search: { mode: 'match' } })),
  };
  return { status: 200, body: bundle };
}
