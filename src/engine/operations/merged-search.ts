import type { Filter, SearchRequest } from '@medplum/core';
import type { Patient, Resource } from '@medplum/fhirtypes';
import { badRequest } from '../../fhir/outcome.js';
import { linkedSourceIds } from '../../mpi/golden-record.js';
import { isGolden } from '../../mpi/source-identity.js';
import type { MergedFact } from '../../record/merged-record.js';
import { isPatientCompartmentType } from '../../search/compartment.js';
import { includes, MAX_COUNT } from '../../search/search-engine.js';
import type { Repository } from '../../store/repository.js';
import { requireReachable, searchAccess, type FhirRequest, type FhirResponse } from '../fhir-request.js';
import { parseSearch, searchBundle } from '../search-interaction.js';
import { keyOf, PERSON_PARAMS, sourceKeys, widened } from './merged-criteria.js';
import { factLinkFilter, isLink, type MergedScope } from './merged-links.js';
import { mergedView, mergedViewHolding, type MergedView } from './merged-view.js';

const DEFAULT_PAGE = 100;

/**
 * `Type?patient={id}&_view=merged&...`: a search over the person's merged record, answered as an ordinary
 * search is (search-interaction.ts: the same parsing, Bundle, links, _summary, _elements, _total).
 * 1. The criteria select the person's source records (every source record an enterprise record links)
 *    through the ordinary search, so the index serves them, the access policy decides what is found, and
 *    `_sort` orders them; the codes asked are widened by the code maps, as the merge compares them.
 * 2. Each match stands for the fact that holds it in the person's merged view of the type (the facts
 *    $merged-record shows, built from what the caller may read): a fact one of whose source copies
 *    matches is returned once, with all its sources, those outside the criteria too. Only the records
 *    that could share a fact with a match are listed and merged (merged-closure.ts), where that is decided.
 * 3. The facts are ordered (by `_sort`: where their first matching source falls; else most recent first),
 *    paged, and `_include`/`_revinclude` followed from their source records, each included record shown
 *    as the merged fact that holds it (the person's source Patients as the Patient asked about).
 */
export async function mergedSearch(repo: Repository, type: string, req: FhirRequest, query: URLSearchParams): Promise<FhirResponse> {
  const { request, warnings } = parseSearch(type, req, new URLSearchParams([...query].filter(([k]) => k !== '_view')));
  const person = (request.filters ?? []).filter((f) => PERSON_PARAMS.includes(f.code));
  const named = person.length === 1 && person[0].operator === 'eq' ? /^(?:Patient\/)?([A-Za-z0-9\-.]{1,64})$/.exec(person[0].value)?.[1] : undefined;
  if (!named) throw badRequest('_view=merged searches one person\'s record: give exactly one patient (or subject) parameter naming one Patient, e.g. patient=Patient/123');
  const count = Math.min(request.count ?? DEFAULT_PAGE, MAX_COUNT);
  const offset = request.offset ?? 0;
  await requireReachable(repo, req, 'Patient', named, 'r');
  const focal = (await repo.read('Patient', named)) as Patient;
  const patientIds = isGolden(focal) ? [named, ...linkedSourceIds(focal)] : [named];

  // One merged view per type for the whole search (chains, _has, the answer, includes share them).
  const views = new Map<string, Promise<MergedView>>();
  const scope: MergedScope = { patientIds, viewOf: (t) => views.get(t) ?? views.set(t, mergedView(repo, named, req, { types: [t] })).get(t) as Promise<MergedView> };
  const { matched, records, suppressed } = await matchingSources(repo, req, request, scope);
  // Nothing matched: no fact to look up (CDS Hooks asks several types of which most find nothing). Else
  // the type's view a link has merged already, or the merge of the matches' closure (merged-closure.ts).
  const view = matched.length ? await (views.get(type) ?? mergedViewHolding(repo, { focal, patientIds }, req, type, records)) : undefined;
  const facts = view ? factsHolding(view, matched, Boolean(request.sortRules?.length)) : [];
  const shown = facts.slice(offset, offset + count);
  const matches = shown.map((i) => (view as MergedView).resources[i]);
  const included = await mergedIncludes(repo, req, request, { named, patientIds, focal }, shown.map((i) => (view as MergedView).facts[i]), new Set(matches.map(keyOf)));
  const hasMore = offset + count < facts.length;
  // The number of facts is known once they are merged; `_total=none` leaves it out where the ordinary search would.
  const total = request.total === 'none' && hasMore ? undefined : facts.length;
  return { status: 200, body: searchBundle(req.baseUrl, request, { matches, included, total, offset, count, hasMore, suppressed }, warnings, 'merged') };
}

/**
 * The person's source records that match the criteria (the person named by all their records, codes
 * widened, chains and `_has` as conditions on facts), in the order the ordinary search returns them
 * (`_sort`, else by id), as `Type/id` keys.
 */
async function matchingSources(repo: Repository, req: FhirRequest, request: SearchRequest, scope: MergedScope): Promise<{ matched: string[]; records: Resource[]; suppressed?: boolean }> {
  const filters: Filter[] = [];
  for (const f of request.filters ?? []) {
    if (PERSON_PARAMS.includes(f.code)) filters.push({ ...f, value: scope.patientIds.map((id) => `Patient/${id}`).join(',') });
    else if (!isLink(f)) filters.push(widened(f));
    else {
      const facts = await factLinkFilter(repo, req, request.resourceType, f, scope);
      if (!facts) return { matched: [], records: [] };
      filters.push(facts);
    }
  }
  const { keys, records, suppressed } = await sourceKeys(repo, req, { resourceType: request.resourceType, filters, sortRules: request.sortRules });
  return { matched: keys, records, suppressed };
}

const bySourceOf = new WeakMap<readonly MergedFact[], Map<string, number>>();

/** Which source record (`Type/id`) each fact of the view holds: fact index by source key. */
function factIndexBySource(view: MergedView): Map<string, number> {
  // Built once per merged view: the memo hands out the same facts to every search that lists the same records.
  const known = bySourceOf.get(view.facts);
  if (known) return known;
  const out = new Map<string, number>();
  view.facts.forEach((fact, i) => fact.sources.forEach((s) => out.set(keyOf(s.resource), i)));
  bySourceOf.set(view.facts, out);
  return out;
}

/**
 * The facts of the view (indexes) that hold a matched source, each once: in the order of their first
 * matched source when the search was sorted, else most recent first.
 */
function factsHolding(view: MergedView, matched: readonly string[], sorted: boolean): number[] {
  const bySource = factIndexBySource(view);
  const found = [...new Set(matched.map((k) => bySource.get(k)).filter((i): i is number => i !== undefined))];
  if (sorted) return found;
  const time = (i: number): number => view.facts[i].time ?? -Infinity;
  return found.sort((a, b) => time(b) - time(a) || view.facts[a].id.localeCompare(view.facts[b].id));
}

/**
 * `_include` and `_revinclude` of the ordinary search, followed from the source records of the facts shown
 * (so the policy's read condition decides what is added), each result shown through the merged view: a
 * record a fact holds as that fact, one of the person's source Patients as the Patient asked about, any
 * other (practitioners, organisations, what is not a fact) as stored.
 */
async function mergedIncludes(
  repo: Repository,
  req: FhirRequest,
  request: SearchRequest,
  who: { named: string; patientIds: readonly string[]; focal: Patient },
  shown: readonly MergedFact[],
  shownKeys: ReadonlySet<string>,
): Promise<Resource[]> {
  if (!shown.length || (!request.include?.length && !request.revInclude?.length)) return [];
  const sources = shown.flatMap((f) => f.sources.map((s) => s.resource));
  const found = await includes(repo, sources, request.include ?? [], request.revInclude ?? [], searchAccess(req)?.read);
  const factTypes = [...new Set(found.map((r) => r.resourceType))].filter((t) => t !== 'Patient' && isPatientCompartmentType(t));
  const view = factTypes.length ? await mergedView(repo, who.named, req, { types: factTypes }) : undefined;
  const bySource = view ? factIndexBySource(view) : new Map<string, number>();
  const person = new Set(who.patientIds);
  const out = new Map<string, Resource>();
  for (const r of found) {
    const fact = bySource.get(keyOf(r));
    const shownAs = r.resourceType === 'Patient' && person.has(r.id as string) ? who.focal : view && fact !== undefined ? view.resources[fact] : r;
    if (!shownKeys.has(keyOf(shownAs))) out.set(keyOf(shownAs), shownAs);
  }
  return [...out.values()];
}
