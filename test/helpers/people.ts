import type { Patient } from '@medplum/fhirtypes';

/** HL7 v2-0203 MR: the identifier type of a source's medical record number. */
export const MR = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] };

/** A synthetic source Patient: `source` names the sending organisation, `mrn` its record number there. */
export function person(source: string, mrn: string, given: string, family: string, birthDate: string, extra: Partial<Patient> = {}): Patient {
  return {
    resourceType: 'Patient',
    identifier: [{ type: MR, system: `urn:example:${source}:mrn`, value: mrn }],
    name: [{ family, given: [given] }],
    birthDate,
    gender: 'male',
    telecom: [{ system: 'phone', value: '(617) 555-0134' }],
    address: [{ line: ['12 Elm Street'], city: 'Cambridge', postalCode: '02139' }],
    ...extra,
  };
}
