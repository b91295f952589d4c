import type { OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
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
/**
 * `warnings`: what the write path has to tell the caller although the write succeeded; they ride on the
 * OperationOutcome a minimal or OperationOutcome response carries (a Bundle entry's response.outcome),
 * and on `outcome` beside a returned resource.
 */
export function resourceResponse(req: FhirRequest, status: number, resource: Resource, withLocation: boolean, warnings: string[] = []): FhirResponse {
  const response: FhirResponse = {
    status,
    etag: versionTag(resource.meta?.versionId ?? '0'),
    lastModified: new Date(resource.meta?.lastUpdated ?? Date.now()).toUTCString(),
  };
  if (withLocation) {
    response.location = resourceUrl(req.baseUrl, resource);
  }
  const prefer = preferHeader(req.prefer, 'return');
  const warningIssues: OperationOutcomeIssue[] = warnings.map((diagnostics) => ({ severity: 'warning', code: 'informational', diagnostics }));
  if (prefer === 'OperationOutcome') {
    const outcome = informational(`${resource.resourceType}/${resource.id} version ${resource.meta?.versionId} stored`);
    response.body = { ...outcome, issue: [...outcome.issue, ...warningIssues] };
  } else if (prefer !== 'minimal') {
    response.body = resource;
    if (warningIssues.length) response.outcome = { resourceType: 'OperationOutcome', issue: warningIssues };
  } else if (warningIssues.length) {
    response.body = { resourceType: 'OperationOutcome', issue: warningIssues };
  }
  return response;
}
