import type { Filter, SearchRequest } from '@medplum/core';
import { badRequest } from '../../fhir/outcome.js';
import { isFactType } from '../../record/merged-record.js';
import { NO_ROWS } from '../../search/filter-sql.js';
import { getCompiledParam } from '../../search/parameters.js';
import type { Repository } from '../../store/repository.js';
import { searchAccess, type FhirRequest } from '../fhir-request.js';
import { keyOf, MAX_SOURCES, personFilter, sourceKeys, widened } from './merged-criteria.js';
import type { MergedView } from './merged-view.js';

/** The person a merged search is about, and the merged view of a type for them (memoised per search). */
export interface MergedScope {
  patientIds: readonly string[];
  viewOf(type: string): Promise<MergedView>;
}

const EQ = 'eq' as Filter['operator'];
const HAS = /^_has:([A-Za-z]+):([A-Za-z0-9\-_]+):(.+)$/;

/** A chained parameter (`result.code`, `subject:Patient.name`) or a reverse chain (`_has:...`). */
export const isLink = (f: Filter): boolean => f.code.startsWith('_has:') || f.code.includes('.');

/**
 * A chain or `_has` on a merged search, as a condition on facts (decision 0036). The other criteria hold
 * for a fact when one of its copies meets them; a link is about what a fact references or what refers to
 * it, and facts on both sides carry all their copies: a report lists the HbA1c fact when one of its copies
 * lists any copy of it, and the HbA1c fact has `date=ge...` when any of its copies has. So the condition
 * is evaluated fact to fact (the linked type's copies that meet it, widened to their facts; the searched
 * type's copies linked to those, widened to their facts) and answered as an `_id` filter over the person's
 * source records, which the ordinary search then combines with the other criteria. Every step is an
 * ordinary search or a merged view under the caller's policy, so only what the caller may search and read
 * makes a fact meet a link. Undefined: no fact meets it.
 */
export async function factLinkFilter(repo: Repository, req: FhirRequest, type: string, link: Filter, scope: MergedScope): Promise<Filter | undefined> {
  const linked = new Set<string>();
  for (const filter of await linkedCopyFilters(repo, req, type, link, scope)) {
    const { keys } = await sourceKeys(repo, req, { resourceType: type as SearchRequest['resourceType'], filters: [...personFilter(type, scope.patientIds), filter] });
    keys.forEach((k) => linked.add(k));
  }
  const copies = await factCopies(type, linked, scope);
  return copies.length ? { code: '_id', operator: EQ, value: copies.map((k) => k.slice(type.length + 1)).join(',') } : undefined;
}

/**
 * Ordinary filters on `type` that find its copies linked to a fact of the other side that meets the
 * condition: a reference (or `_has` by `_id`) to every copy of those facts. A link to a type that is not
 * a fact (a Practitioner, the Patient) stays the ordinary chain.
 */
async function linkedCopyFilters(repo: Repository, req: FhirRequest, type: string, link: Filter, scope: MergedScope): Promise<Filter[]> {
  const has = HAS.exec(link.code);
  if (has) {
    const [, referrer, ref, rest] = has;
    if (!isFactType(referrer) || !reachable(req, referrer)) return [link];
    const referrers = await meeting(repo, req, referrer, { ...link, code: rest }, scope);
    return referrers.length ? [{ code: `_has:${referrer}:${ref}:_id`, operator: EQ, value: referrers.map((k) => k.slice(referrer.length + 1)).join(',') }] : [];
  }
  const dot = link.code.indexOf('.');
  const [ref, modifier] = link.code.slice(0, dot).split(':');
  const rest = link.code.slice(dot + 1);
  const param = getCompiledParam(type, ref);
  const restCode = rest.split(/[.:]/)[0];
  const chainable = (t: string) => ['_id', '_lastUpdated', '_has'].includes(restCode) || !!getCompiledParam(t, restCode);
  const targets = modifier ? [modifier] : (param?.targets ?? []).filter(chainable);
  // A bad chain, or one with no fact among its targets: the ordinary search answers it (and its errors).
  if (param?.type !== 'reference' || !targets.some((t) => isFactType(t) && reachable(req, t))) return [link];
  const out: Filter[] = [];
  for (const target of targets.filter((t) => reachable(req, t))) {
    if (!isFactType(target)) {
      out.push({ ...link, code: `${ref}:${target}.${rest}` });
      continue;
    }
    const copies = await meeting(repo, req, target, { ...link, code: rest }, scope);
    if (copies.length) out.push({ code: ref, operator: EQ, value: copies.join(',') });
  }
  return out;
}

/** Every copy (`Type/id`) of the person's facts of `type` one of whose copies meets `condition`. */
async function meeting(repo: Repository, req: FhirRequest, type: string, condition: Filter, scope: MergedScope): Promise<string[]> {
  const { keys } = await sourceKeys(repo, req, { resourceType: type as SearchRequest['resourceType'], filters: [...personFilter(type, scope.patientIds), widened(condition)] });
  return factCopies(type, keys, scope);
}

/**
 * The copies of the facts (of the person's merged view of `type`) that hold any of `keys`. A record the
 * view does not hold (one the caller may search but not read) stands for no fact.
 */
async function factCopies(type: string, keys: Iterable<string>, scope: MergedScope): Promise<string[]> {
  const wanted = new Set(keys);
  if (!wanted.size) return [];
  const view = await scope.viewOf(type);
  const out = view.facts.filter((f) => f.sources.some((s) => wanted.has(keyOf(s.resource)))).flatMap((f) => f.sources.map((s) => keyOf(s.resource)));
  if (out.length > MAX_SOURCES) throw badRequest(`More than ${MAX_SOURCES} source records meet a chained or _has condition; narrow the search`);
  return out;
}

/** Whether the caller may search the type at all (a chain leaves out the target types it may not). */
function reachable(req: FhirRequest, type: string): boolean {
  return searchAccess(req)?.search(type, 'x') !== NO_ROWS;
}
