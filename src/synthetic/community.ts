import type { Bundle, BundleEntry, Organization, Patient, Practitioner, Resource } from '@medplum/fhirtypes';
import { Random } from './random.js';
import * as V from './vocabulary.js';

/**
 * A deterministic synthetic community for the demo, tests and benchmarks: a few participating
 * organisations with practitioners, and patients whose records look like Synthea output (one transaction
 * Bundle per patient, POST entries with urn:uuid fullUrls). Same seed, same data, byte for byte.
 */
export interface CommunityOptions {
  seed?: number;
  patients: number;
  /** Encounters per patient (each brings vitals, and sometimes labs, conditions, medications). */
  encountersPerPatient?: [min: number, max: number];
}

const LOINC = 'http://loinc.org';
const SNOMED = 'http://snomed.info/sct';
const UCUM = 'http://unitsofmeasure.org';
const DAY = 86_400_000;
/** Fixed "now" so that generated dates do not depend on when the generator runs. */
const EPOCH_END = Date.UTC(2026, 0, 1);

export const ORGANIZATIONS = [
  { id: 'org-general-hospital', name: 'Springfield General Hospital', mrnSystem: 'urn:oid:2.16.840.1.113883.3.9001.1' },
  { id: 'org-community-clinic', name: 'Riverside Community Clinic', mrnSystem: 'urn:oid:2.16.840.1.113883.3.9001.2' },
  { id: 'org-childrens', name: "Bay State Children's Hospital", mrnSystem: 'urn:oid:2.16.840.1.113883.3.9001.3' },
];

function isoDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

function isoInstant(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** Organisations and practitioners, as a transaction of PUTs with stable ids (idempotent to re-load). */
export function directoryBundle(seed = 1): Bundle {
  const rnd = new Random(seed ^ 0x5eed);
  const entries: BundleEntry[] = [];
  for (const org of ORGANIZATIONS) {
    const resource: Organization = {
      resourceType: 'Organization',
      id: org.id,
      active: true,
      name: org.name,
      identifier: [{ system: 'urn:ietf:rfc:3986', value: org.mrnSystem }],
      type: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/organization-type', code: 'prov', display: 'Healthcare Provider' }] }],
    };
    entries.push({ resource, request: { method: 'PUT', url: `Organization/${org.id}` } });
    for (let i = 0; i < 4; i++) {
      const id = `pr-${org.id.slice(4)}-${i + 1}`;
      const female = rnd.chance(0.5);
      const practitioner: Practitioner = {
        resourceType: 'Practitioner',
        id,
        active: true,
        identifier: [{ system: 'http://hl7.org/fhir/sid/us-npi', value: String(1_000_000_000 + rnd.int(0, 899_999_999)) }],
        name: [{ prefix: ['Dr.'], family: rnd.pick(V.FAMILY), given: [rnd.pick(female ? V.GIVEN_FEMALE : V.GIVEN_MALE)] }],
        gender: female ? 'female' : 'male',
      };
      entries.push({ resource: practitioner, request: { method: 'PUT', url: `Practitioner/${id}` } });
    }
  }
  return { resourceType: 'Bundle', type: 'transaction', entry: entries };
}

/** One transaction Bundle per patient, generated lazily so that benchmarks can stream millions. */
export function* patientBundles(options: CommunityOptions): Generator<Bundle> {
  const rnd = new Random(options.seed ?? 1);
  const [minEnc, maxEnc] = options.encountersPerPatient ?? [2, 6];
  for (let p = 0; p < options.patients; p++) {
    yield patientBundle(rnd, p, rnd.int(minEnc, maxEnc));
  }
}

function patientBundle(rnd: Random, index: number, encounterCount: number): Bundle {
  const entries: BundleEntry[] = [];
  const add = (resource: Resource): string => {
    const fullUrl = `urn:uuid:${rnd.uuid()}`;
    entries.push({ fullUrl, resource, request: { method: 'POST', url: resource.resourceType } });
    return fullUrl;
  };
  const org = rnd.pick(ORGANIZATIONS);
  const practitionerRef = { reference: `Practitioner/pr-${org.id.slice(4)}-${rnd.int(1, 4)}` };
  const orgRef = { reference: `Organization/${org.id}`, display: org.name };
  const female = rnd.chance(0.5);
  const birth = EPOCH_END - rnd.int(1, 90) * 365.25 * DAY - rnd.int(0, 364) * DAY;
  const place = rnd.pick(V.CITIES);
  const patient: Patient = {
    resourceType: 'Patient',
    identifier: [
      {
        use: 'usual',
        type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR', display: 'Medical record number' }] },
        system: org.mrnSystem,
        value: `MRN${String(100000 + index)}`,
        assigner: orgRef,
      },
      {
        type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'SS', display: 'Social Security number' }] },
        system: 'http://hl7.org/fhir/sid/us-ssn',
        value: `999-${String(rnd.int(10, 99))}-${String(rnd.int(1000, 9999))}`,
      },
    ],
    name: [{ use: 'official', family: rnd.pick(V.FAMILY), given: [rnd.pick(female ? V.GIVEN_FEMALE : V.GIVEN_MALE)] }],
    telecom: [{ system: 'phone', value: `555-${rnd.int(100, 999)}-${rnd.int(1000, 9999)}`, use: 'home' }],
    gender: female ? 'female' : 'male',
    birthDate: isoDate(birth),
    address: [{ use: 'home', line: [`${rnd.int(1, 999)} ${rnd.pick(V.STREETS)}`], ...place, country: 'US' }],
    managingOrganization: orgRef,
    generalPractitioner: [practitionerRef],
  };
  const patientUrl = add(patient);
  const subject = { reference: patientUrl };

  const conditions = V.CONDITIONS.filter(() => rnd.chance(0.2));
  for (const allergy of V.ALLERGIES.filter(() => rnd.chance(0.12))) {
    add({
      resourceType: 'AllergyIntolerance',
      clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical', code: 'active' }] },
      verificationStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-verification', code: 'confirmed' }] },
      type: 'allergy',
      criticality: rnd.pick(['low', 'high'] as const),
      code: { coding: [{ system: SNOMED, ...allergy }], text: allergy.display },
      patient: subject,
      recordedDate: isoDate(birth + rnd.int(1, 10) * 365 * DAY),
    });
  }
  let time = Math.max(birth, EPOCH_END - 10 * 365 * DAY);
  const span = (EPOCH_END - time) / (encounterCount + 1);
  for (let e = 0; e < encounterCount; e++) {
    time += span * (0.5 + rnd.next());
    const start = Math.min(time, EPOCH_END - DAY);
    const type = rnd.pick(V.ENCOUNTER_TYPES);
    const encounterUrl = add({
      resourceType: 'Encounter',
      status: 'finished',
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: type.code === '185349003' || type.code === '390906007' ? 'AMB' : 'EMER' },
      type: [{ coding: [{ system: SNOMED, ...type }], text: type.display }],
      subject,
      participant: [{ individual: practitionerRef }],
      period: { start: isoInstant(start), end: isoInstant(start + 45 * 60_000) },
      serviceProvider: orgRef,
    });
    const encounter = { reference: encounterUrl };
    const when = isoInstant(start + 10 * 60_000);
    for (const vital of V.VITALS) {
      add({
        resourceType: 'Observation',
        status: 'final',
        category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs', display: 'Vital signs' }] }],
        code: { coding: [{ system: LOINC, code: vital.code, display: vital.display }], text: vital.display },
        subject,
        encounter,
        effectiveDateTime: when,
        issued: when,
        valueQuantity: { value: round(vital.min + rnd.next() * (vital.max - vital.min), 1), unit: vital.unit, system: UCUM, code: vital.unit },
      });
    }
    if (rnd.chance(0.4)) {
      const results = V.LABS.filter(() => rnd.chance(0.6)).map((lab) => {
        const value = round(lab.min + rnd.next() * (lab.max - lab.min), 1);
        const flag = value > lab.high ? 'H' : value < lab.low ? 'L' : 'N';
        return {
          reference: add({
            resourceType: 'Observation',
            status: 'final',
            category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory', display: 'Laboratory' }] }],
            code: { coding: [{ system: LOINC, code: lab.code, display: lab.display }], text: lab.display },
            subject,
            encounter,
            effectiveDateTime: when,
            valueQuantity: { value, unit: lab.unit, system: UCUM, code: lab.unit },
            interpretation: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation', code: flag }] }],
            referenceRange: [{ low: { value: lab.low, unit: lab.unit, system: UCUM, code: lab.unit }, high: { value: lab.high, unit: lab.unit, system: UCUM, code: lab.unit } }],
          }),
        };
      });
      if (results.length) {
        add({
          resourceType: 'DiagnosticReport',
          status: 'final',
          category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: 'LAB' }] }],
          code: { coding: [{ system: LOINC, code: '24323-8', display: 'Comprehensive metabolic 2000 panel - Serum or Plasma' }] },
          subject,
          encounter,
          effectiveDateTime: when,
          issued: when,
          performer: [orgRef],
          result: results,
        });
      }
    }
    if (e < conditions.length) {
      const condition = conditions[e];
      add({
        resourceType: 'Condition',
        clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
        verificationStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status', code: 'confirmed' }] },
        category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-category', code: 'problem-list-item' }] }],
        code: { coding: [{ system: SNOMED, ...condition }], text: condition.display },
        subject,
        encounter,
        onsetDateTime: when,
        recordedDate: when,
      });
      const med = V.MEDICATIONS[V.CONDITIONS.indexOf(condition) % V.MEDICATIONS.length];
      add({
        resourceType: 'MedicationRequest',
        status: 'active',
        intent: 'order',
        medicationCodeableConcept: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', ...med }], text: med.display },
        subject,
        encounter,
        authoredOn: when,
        requester: practitionerRef,
        dosageInstruction: [{ text: 'Take as directed', timing: { repeat: { frequency: 1, period: 1, periodUnit: 'd' } } }],
      });
    }
    if (rnd.chance(0.3)) {
      const vaccine = rnd.pick(V.VACCINES);
      add({
        resourceType: 'Immunization',
        status: 'completed',
        vaccineCode: { coding: [{ system: 'http://hl7.org/fhir/sid/cvx', ...vaccine }], text: vaccine.display },
        patient: subject,
        encounter,
        occurrenceDateTime: when,
        primarySource: true,
        performer: [{ actor: practitionerRef }],
      });
    }
  }
  return { resourceType: 'Bundle', type: 'transaction', entry: entries };
}
