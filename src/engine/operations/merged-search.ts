import type { Bundle, BundleLink, Patient, Resource } from '@medplum/fhirtypes';
import { compartmentPatients } from '../../audit/audit-subjects.js';
import { badRequest } from '../../fhir/outcome.js';
import { linkedSourceIds } from '../../mpi/golden-record.js';
import { isGolden } from '../../mpi/source-identity.js';
import { equivalentCodings } from '../../record/code-maps.js';
import { factResource, mergeRecords, type MergedFact, type SourceRecord } from '../../record/merged-record.js';
import { messageIdOf, participantsOfMessages } from '../../record/source-participants.js';
import { MAX_COUNT, search } from '../../search/search-engine.js';
import type { Repository } from '../../store/repository.js';
import { requireReachable, searchAccess, type FhirRequest, type FhirResponse } from '../fhir-request.js';
import { parseSearch } from '../search-interaction.js';

/** Source records one merged search may gather before it asks for narrower criteria. */
const MAX_SOURCES = 10_000;
const DEFAULT_PAGE = 100;
/** The parameters that name the person; one of them, with one Patient, is required. */
const PERSON_PARAMS = ['patient', 'subject'];
/** Result parameters this search pages and sorts itself (merged facts are not rows to sort in SQL). */
const OWN_PARAMS = new Set(['_view', '_count', '_offset', '_sort', '_total', '_include', '_revinclude', '_summary', '_elements']);
/** Token parameters whose codes the code maps translate (a local lab code and its LOINC are one concept). */
const MAPPED_TOKENS = new Set(['code', 'combo-code', 'vaccine-code']);

/**
 * `Type?patient={id}&_view=merged&...`: a search over the person's merged record. The criteria select the
 * source records of the person (every source record an enterprise record links) through the ordinary
 * search, so the index serves them and the access policy decides what is found; the codes asked are
 * widened by the code maps, as the merge itself compares them. The matches are then merged into facts
 * (each once, with its sources and conflicts), sorted most recent first and paged (_count, _offset).
 * A fact lists the source records that matched: a source copy outside the criteria (its time shifted
 * across a `date` bound, say) is not joined to it here, as it is in $merged-record.
 */
export async function mergedSearch(repo: Repository, type: string, req: FhirRequest, query: URLSearchParams): Promise<FhirResponse> {
  const person = PERSON_PARAMS.flatMap((p) => query.getAll(p).map((v) => ({ p, v })));
  const named = person.length === 1 ? /^(?:Patient\/)?([A-Za-z0-9\-.]{1,64})$/.exec(person[0].v)?.[1] : undefined;
  if (!named) throw badRequest('_view=merged searches one person\'s record: give exactly one patient (or subject) parameter naming one Patient, e.g. patient=Patient/123');
  const count = Math.min(Number(query.get('_count') ?? DEFAULT_PAGE), MAX_COUNT);
  const offset = Number(query.get('_offset') ?? 0);
  if (!Number.isInteger(count) || count < 0 || !Number.isInteger(offset) || offset < 0) throw badRequest('_count and _offset must be non-negative integers');
  await requireReachable(repo, req, 'Patient', named, 'r');
  const focal = (await repo.read('Patient', named)) as Patient;
  const patientIds = isGolden(focal) ? [named, ...linkedSourceIds(focal)] : [named];

  const sourceQuery = new URLSearchParams();
  for (const [key, value] of query) {
    const code = key.split(':')[0];
    if (OWN_PARAMS.has(code) || PERSON_PARAMS.includes(key)) continue;
    sourceQuery.append(key, MAPPED_TOKENS.has(key) ? widenCodes(value) : value);
  }
  sourceQuery.set(person[0].p, patientIds.map((id) => `Patient/${id}`).join(','));
  const { request, warnings } = parseSearch(type, req, sourceQuery);
  const found: Resource[] = [];
  for (let page = 0; ; page += MAX_COUNT) {
    const result = await search(repo, { ...request, count: MAX_COUNT, offset: page, total: undefined }, searchAccess(req));
    found.push(...result.matches);
    if (!result.hasMore) break;
    if (found.length >= MAX_SOURCES) throw badRequest(`More than ${MAX_SOURCES} source records match; narrow the search (code, date, category)`);
  }
  const facts = await mergeFound(repo, found, patientIds);
  facts.sort((a, b) => (b.time ?? -Infinity) - (a.time ?? -Infinity) || a.id.localeCompare(b.id));
  const person_ = new Set(patientIds);
  const shown = facts.slice(offset, offset + count).map((f) => factResource(f, person_, named));
  const self = `${req.baseUrl}/${type}?${query.toString()}`;
  const link: BundleLink[] = [{ relation: 'self', url: self }];
  const at = (o: number) => {
    const q = new URLSearchParams(query);
    q.set('_offset', String(o));
    q.set('_count', String(count));
    return `${req.baseUrl}/${type}?${q.toString()}`;
  };
  if (offset + count < facts.length) link.push({ relation: 'next', url: at(offset + count) });
  if (offset > 0) link.push({ relation: 'previous', url: at(Math.max(0, offset - count)) });
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'searchset',
    total: facts.length,
    link,
    entry: [
      ...shown.map((r) => ({ fullUrl: `${req.baseUrl}/${r.resourceType}/${r.id}`, resource: r, search: { mode: 'match' as const } })),
      ...(warnings.length ? [{ resource: { resourceType: 'OperationOutcome' as const, issue: warnings }, search: { mode: 'outcome' as const } }] : []),
    ],
  };
  return { status: 200, body: bundle };
}

/** Merges found source records of the person: each belongs to the person's source record whose compartment holds it. */
export async function mergeFound(repo: Repository, found: readonly Resource[], patientIds: readonly string[]): Promise<MergedFact[]> {
  const person = new Set(patientIds);
  const participants = await participantsOfMessages(repo, found.map((r) => messageIdOf(r.meta?.source)).filter((m): m is string => !!m));
  const records: SourceRecord[] = [];
  for (const resource of found) {
    const sourcePatient = compartmentPatients(resource).find((p) => person.has(p));
    if (sourcePatient) records.push({ resource, sourcePatient, participant: participants.get(messageIdOf(resource.meta?.source) ?? '') });
  }
  return mergeRecords(records);
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
