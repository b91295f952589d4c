import type { Bundle, Consent } from '@medplum/fhirtypes';
import { dispatch } from '../../src/engine/fhir-router.js';
import { requestFor, type FhirResponse } from '../../src/engine/fhir-request.js';
import { responseBody } from '../../src/engine/responses.js';
import type { AuthContext } from '../../src/security/token-service.js';
import type { TestServer } from './server.js';
import { privacyConsent as privacyConsentOf } from '../../src/consent/privacy-consent.js';

/**
 * The engine as a caller with this AuthContext, the way every HTTP route calls it: for tests that set a
 * caller's facts (patient context, role, purpose of use) directly rather than through a sign-in, which
 * test/leak.test.ts and test/sign-in.test.ts drive end to end.
 */
export async function engineAs(s: TestServer, auth: AuthContext, method: string, path: string, body?: unknown, baseUrl = 'http://test/fhir'): Promise<FhirResponse> {
  return dispatch(s.tessera.repo, requestFor(method, path, { auth, body, baseUrl }));
}

export function bodyOf(res: FhirResponse): Bundle {
  return responseBody(res) as Bundle;
}

/** A patient-privacy Consent (IHE Privacy Consent on FHIR) with the given provision, dated as the tests' data. */
export function privacyConsent(patient: string, provision: Consent['provision']): Consent {
  return privacyConsentOf(patient, provision, '2026-12-01');
}
