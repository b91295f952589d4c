import type { FhirRequest } from '../fhir-request.js';

/** Bundle links of a page of an operation on a patient (`_count`/`_offset` paging): self, next, previous. */
export function pageLinks(req: FhirRequest, path: string, count: number, offset: number, total: number): { relation: string; url: string }[] {
  const url = (o: number): string => {
    const q = new URLSearchParams(req.query);
    q.set('_count', String(count));
    q.set('_offset', String(o));
    return `${req.baseUrl}/${path}?${q.toString()}`;
  };
  const link = [{ relation: 'self', url: url(offset) }];
  if (offset + count < total) link.push({ relation: 'next', url: url(offset + count) });
  if (offset > 0) link.push({ relation: 'previous', url: url(Math.max(0, offset - count)) });
  return link;
}
