import type { Bundle } from '@medplum/fhirtypes';
import type { FhirRequest } from '../engine/fhir-request.js';

/** The base of the locations reported to Tessera's own requests (there is no HTTP endpoint involved). */
export const SYSTEM_BASE_URL = 'urn:tessera';

/**
 * A FHIR request made by Tessera itself (imports, the demo loader, benchmarks): no access token, because
 * the operator running the command already has the data directory or database credentials.
 */
export function systemRequest(body: Bundle): FhirRequest {
  return { method: 'POST', segments: [], query: new URLSearchParams(), rawQuery: '', body, baseUrl: SYSTEM_BASE_URL, prefer: 'return=minimal' };
}
