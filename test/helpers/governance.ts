import type { Bundle, Consent } from '@medplum/fhirtypes';
import { dispatch } from '../../src/engine/fhir-router.js';
import type { FhirRequest, FhirResponse } from '../../src/engine/fhir-request.js';
import type { AuthContext } from '../../src/security/token-service.js';
import type { TestServer } from './server.js';
import { privacyConsent as privacyConsentOf } from '../../src/consent/privacy-consent.js';

/**
 * The engine as a caller with this AuthContext, the way every HTTP route calls it: for callers whose
 * tokens the tests cannot mint yet (patient context, purpose of use, signed-in users).
 */
export async function engineAs(s: TestServer, auth: AuthContext, method: string, path: string, body?: unknown, baseUrl = 'http://test/fhir'): Promise<FhirResponse> {
  const [p, q = ''] = path.split('?');
  const req: FhirRequest = { method, segments: p.split('/').filter(Boolean).map(decodeURIComponent), rawQuery: q, query: new URLSearchParams(q), body, auth, baseUrl };
  return dispatch(s.tessera.repo, req);
}

export function bodyOf(res: FhirResponse): Bundle {
  return (res.rawBody ? JSON.parse(res.rawBody) : res.body) as Bundle;
}

/** A patient-privacy Consent (IHE Privacy Consent on FHIR) with the given provision, dated as the tests' data. */
export function privacyConsent(patient: string, provision: Consent['provision']): Consent {
  return privacyConsentOf(patient, provision, '2026-12-01');
}
