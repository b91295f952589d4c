import type { Resource } from '@medplum/fhirtypes';
import { informational } from '../fhir/outcome.js';
import { versionTag } from '../store/repository.js';
import { preferHeader, type FhirRequest, type FhirResponse } from './fhir-request.js';

/** The resource a response carries, whether built (`body`) or already serialised (`rawBody`). */
export function responseBody(res: FhirResponse): Resource | undefined {
  return res.body ?? (res.rawBody ? (JSON.parse(res.rawBody) as Resource) : undefined);
}

export function resourceUrl(baseUrl: string, resource: Resource): string {
  return `${baseUrl}/${resource.resourceType}/${resource.id}/_history/${resource.meta?.versionId}`;
}

/** A response carrying a resource with its ETag / Last-Modified / Location, honouring Prefer: return=. */
export function resourceResponse(req: FhirRequest, status: number, resource: Resource, withLocation: boolean): FhirResponse {
  const response: FhirResponse = {
    status,
    etag: versionTag(resource.meta?.versionId ?? '0'),
    lastModified: new Date(resource.meta?.lastUpdated ?? Date.now()).toUTCString(),
  };
  if (withLocation) {
    response.location = resourceUrl(req.baseUrl, resource);
  }
  const prefer = preferHeader(req.prefer, 'return');
  if (prefer === 'OperationOutcome') {
    response.body = informational(`${resource.resourceType}/${resource.id} version ${resource.meta?.versionId} stored`);
  } else if (prefer !== 'minimal') {
    response.body = resource;
  }
  return response;
}
