import { badRequest } from '../../fhir/outcome.js';
import { isKnownResourceType } from '../../fhir/resource-types.js';
import { isGolden } from '../../mpi/source-identity.js';
import { parseDateRange } from '../../search/date-range.js';
import type { Repository } from '../../store/repository.js';
import type { FhirRequest, FhirResponse } from '../fhir-request.js';
import { mergedView, provenanceOf, type MergedView } from './merged-view.js';
import { pageLinks } from './page-links.js';
import { reachableRecord, type RecordEntry } from './patient-record.js';
import type { Patient } from '@medplum/fhirtypes';

const DEFAULT_PAGE = 1000;
const MAX_PAGE = 5000;

/** `_view`: the merged record (each fact once, with its sources) or the source copies side by side. */
export type RecordView = 'merged' | 'sources';

/**
 * Patient/{id}/$everything: the patient, every resource in their compartment and the resources those
 * reference directly (operations/patient-record.ts), as the caller may read them. Supports _since, _type,
 * _count and _offset paging in a stable order.
 *
 * `_view=sources` returns each source's copies (for stewards and audits); `_view=merged` the merged record
 * (operations/merged-view.ts): each fact once, with a Provenance naming its source records. The default
 * is the merged view on an enterprise (golden) record, the clinician's view of the person, and the
 * source copies on a source record, which is one participant's record.
 */
export async function everything(repo: Repository, patientId: string, req: FhirRequest, operation = '$everything', forced?: RecordView): Promise<FhirResponse> {
  const types = req.query.get('_type')?.split(',').filter(Boolean);
  for (const t of types ?? []) {
    if (!isKnownResourceType(t)) {
      throw badRequest(`Unknown resource type "${t}" in _type`);
    }
  }
  let since: number | undefined;
  if (req.query.get('_since')) {
    since = parseDateRange(req.query.get('_since') as string)?.lo;
    if (since === undefined) {
      throw badRequest('_since must be a FHIR instant');
    }
  }
  const asked = req.query.get('_view');
  if (asked && asked !== 'merged' && asked !== 'sources') throw badRequest('_view must be "merged" or "sources"');
  const count = Math.min(Number(req.query.get('_count') ?? DEFAULT_PAGE) || DEFAULT_PAGE, MAX_PAGE);
  const offset = Number(req.query.get('_offset') ?? 0) || 0;
  const view = forced ?? (asked as RecordView | null) ?? (isGolden((await repo.read('Patient', patientId)) as Patient) ? 'merged' : 'sources');
  const entries = view === 'merged' ? await mergedEntries(repo, patientId, req) : (await reachableRecord(repo, patientId, req)).entries;

  const filtered = entries.filter((r) => (!types || types.includes(r.type)) && (since === undefined || r.lastUpdated >= since));
  const page = filtered.slice(offset, offset + count);
  const link = pageLinks(req, `Patient/${patientId}/${operation}`, count, offset, filtered.length);
  const out = page.map((r) => `{"fullUrl":${JSON.stringify(`${req.baseUrl}/${r.type}/${r.id}`)},"resource":${r.json},"search":{"mode":"match"}}`);
  const head = JSON.stringify({ resourceType: 'Bundle', type: 'searchset', total: filtered.length, link });
  return { status: 200, rawBody: `${head.slice(0, -1)},"entry":[${out.join(',')}]}` };
}

/** The merged view as entries: the focal Patient, each fact, its Provenance, then what the facts reference. */
async function mergedEntries(repo: Repository, patientId: string, req: FhirRequest): Promise<RecordEntry[]> {
  const view = await mergedView(repo, patientId, req);
  return [entry(view.focal), ...factEntries(view), ...view.referenced];
}

const entry = (r: { resourceType: string; id?: string; meta?: { lastUpdated?: string } }): RecordEntry => ({ type: r.resourceType, id: r.id as string, json: JSON.stringify(r), lastUpdated: Date.parse(r.meta?.lastUpdated ?? '') || 0 });

/** Each fact and its Provenance as serialised entries, once per memoised view (its facts array is shared by every hit). */
const serialised = new WeakMap<object, RecordEntry[]>();
function factEntries(view: MergedView): RecordEntry[] {
  let out = serialised.get(view.facts);
  if (!out) {
    const provenance = provenanceOf(view);
    out = view.resources.flatMap((r, i) => {
      const fact = entry(r);
      return [fact, { ...entry(provenance[i]), lastUpdated: fact.lastUpdated }];
    });
    serialised.set(view.facts, out);
  }
  return out;
}
