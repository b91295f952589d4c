/**
 * Code systems the whole community understands. A coding of any other system (a laboratory's own test
 * codes, an EHR's allergy list, HL7 v2 `L` / `99xxx` systems, a sender's `urn:oid:`) is a local code:
 * it is kept, and a participant's code map adds the standard coding beside it (src/codes).
 */
const STANDARD_SYSTEMS = new Set([
  'http://loinc.org',
  'http://snomed.info/sct',
  'http://www.nlm.nih.gov/research/umls/rxnorm',
  'http://hl7.org/fhir/sid/cvx',
  'http://hl7.org/fhir/sid/mvx',
  'http://hl7.org/fhir/sid/ndc',
  'http://hl7.org/fhir/sid/icd-10',
  'http://hl7.org/fhir/sid/icd-10-cm',
  'http://hl7.org/fhir/sid/icd-9-cm',
  'http://www.cms.gov/Medicare/Coding/ICD10',
  'http://www.ama-assn.org/go/cpt',
  'http://unitsofmeasure.org',
  'http://fdasis.nlm.nih.gov',
  'http://www.whocc.no/atc',
]);

/** Families of standard systems: HL7's own terminologies and value sets of the FHIR specification. */
const STANDARD_PREFIXES = ['http://terminology.hl7.org/', 'http://hl7.org/fhir/', 'urn:ietf:', 'urn:iso:'];

export const UCUM = 'http://unitsofmeasure.org';

export function isStandardSystem(system: string | undefined): boolean {
  return !!system && (STANDARD_SYSTEMS.has(system) || STANDARD_PREFIXES.some((p) => system.startsWith(p)));
}
