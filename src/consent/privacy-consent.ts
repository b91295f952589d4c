import type { Consent } from '@medplum/fhirtypes';

/**
 * A patient-privacy Consent in the shape of IHE Privacy Consent on FHIR (scope patient-privacy, category
 * LOINC 59284-0, policy rule OPTIN) with the given provision: what the demo, tests and benches write.
 */
export function privacyConsent(patient: string, provision: Consent['provision'], dateTime?: string): Consent {
  return {
    resourceType: 'Consent',
    status: 'active',
    scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
    category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
    patient: { reference: `Patient/${patient}` },
    ...(dateTime ? { dateTime } : {}),
    policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN' }] },
    provision,
  };
}
