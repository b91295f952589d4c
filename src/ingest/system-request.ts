import type { Bundle } from '@medplum/fhirtypes';
import type { FhirRequest } from '../server/fhir-request.js';

/**
 * A FHIR request made by Tessera itself (imports, the demo loader, benchmarks): no access token, because
 * the operator running the command already has the data directory or database credentials.
 */
export function systemRequest(body: Bundle): FhirRequest {
  return { method: 'POST', segments: [], query: new URLSearchParams(), rawQuery: '', body, baseUrl: 'urn:tessera', prefer: 'return=minimal' };
}
