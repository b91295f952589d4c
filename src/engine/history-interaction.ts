import type { Bundle } from '@medplum/fhirtypes';
import { badRequest } from '../fhir/outcome.js';
import { parseDateRange } from '../search/date-range.js';
import { DEFAULT_COUNT, MAX_COUNT } from '../search/search-engine.js';
import type { Repository } from '../store/repository.js';
import type { FhirRequest } from './fhir-request.js';

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
  if (type && id) {
    await repo.read(type, id).catch((err) => {
      if (err.status === 404) {
        throw err; // never existed; a deleted resource still has history
      }
    });
  }
  const { entries, total } = await repo.history({ type, id, since, count, offset });
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
