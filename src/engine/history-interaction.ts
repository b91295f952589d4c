import type { Bundle, Resource } from '@medplum/fhirtypes';
import { badRequest, forbidden } from '../fhir/outcome.js';
import { parseDateRange } from '../search/date-range.js';
import { DEFAULT_COUNT, MAX_COUNT } from '../search/search-engine.js';
import type { HistoryEntry, Repository } from '../store/repository.js';
import { policyOf, type FhirRequest } from './fhir-request.js';
import { entriesWithinReach } from './version-reach.js';

const METHOD_STATUS: Record<string, string> = { POST: '201 Created', PUT: '200 OK', PATCH: '200 OK', DELETE: '204 No Content' };

function nonNegativeInt(query: URLSearchParams, name: string, fallback: number): number {
  const raw = query.get(name);
  if (raw === null) {
    return fallback;
  }
  if (!/^\d+$/.test(raw)) {
    throw badRequest(`${name} must be a non-negative integer, not "${raw}"`);
  }
  return Number(raw);
}

/** An instance's versions beyond this many are not filtered one by one for a restricted caller (403). */
const MAX_FILTERED_VERSIONS = 1000;

/**
 * One page of an instance's history as a caller sees it whose reach depends on the data (version-reach.ts):
 * every version is read and judged, and the total and paging count only those it may see, so that it
 * cannot count versions it may not read.
 */
async function versionsWithinReach(repo: Repository, req: FhirRequest, current: Resource, since: number | undefined, count: number, offset: number): Promise<{ entries: HistoryEntry[]; total: number }> {
  const all = await repo.history({ type: current.resourceType, id: current.id, since, count: MAX_FILTERED_VERSIONS + 1, offset: 0 });
  if (all.entries.length > MAX_FILTERED_VERSIONS) {
    throw forbidden(`${current.resourceType}/${current.id} has more than ${MAX_FILTERED_VERSIONS} versions, too many to check one by one for this caller's consents, labels and scopes; read the current version`);
  }
  const visible = entriesWithinReach(policyOf(req), current, all.entries);
  return { entries: visible.slice(offset, offset + count), total: visible.length };
}

/** Instance, type and system history, newest first, with _since, _count and paging. */
export async function historyInteraction(repo: Repository, req: FhirRequest, type?: string, id?: string): Promise<Bundle> {
  const count = Math.min(nonNegativeInt(req.query, '_count', DEFAULT_COUNT), MAX_COUNT);
  const offset = nonNegativeInt(req.query, '_offset', 0);
  let since: number | undefined;
  const sinceParam = req.query.get('_since');
  if (sinceParam) {
    const range = parseDateRange(sinceParam);
    if (!range) {
      throw badRequest(`_since must be a FHIR instant, not "${sinceParam}"`);
    }
    since = range.lo;
  }
  let current: Resource | undefined;
  if (type && id) {
    current = await repo.read(type, id).catch((err) => {
      if (err.status === 404) {
        throw err; // never existed; a deleted resource still has history
      }
      return undefined;
    });
  }
  const { entries, total } = current && policyOf(req).rowFacts(type as string, 'r') ? await versionsWithinReach(repo, req, current, since, count, offset) : await repo.history({ type, id, since, count, offset });
  const path = [type, id, '_history'].filter(Boolean).join('/');
  const pageUrl = (o: number): string => {
    const q = new URLSearchParams(req.query);
    q.set('_count', String(count));
    q.set('_offset', String(o));
    return `${req.baseUrl}/${path}?${q.toString()}`;
  };
  const link = [{ relation: 'self', url: pageUrl(offset) }];
  if (offset + count < total) {
    link.push({ relation: 'next', url: pageUrl(offset + count) });
  }
  if (offset > 0) {
    link.push({ relation: 'previous', url: pageUrl(Math.max(0, offset - count)) });
  }
  return {
    resourceType: 'Bundle',
    type: 'history',
    total,
    link,
    entry: entries.map((e) => ({
      fullUrl: `${req.baseUrl}/${e.type}/${e.id}`,
      resource: e.resource,
      request: { method: e.method === 'PATCH' ? 'PATCH' : e.method, url: e.method === 'POST' ? e.type : `${e.type}/${e.id}` },
      response: {
        status: METHOD_STATUS[e.method],
        etag: `W/"${e.versionId}"`,
        lastModified: new Date(e.lastUpdated).toISOString(),
      },
    })),
  };
}
