import type { CodeableConcept, Coding, Condition } from '@medplum/fhirtypes';
import { EntryMappingError } from './ccda-context.js';
import { concept, dateTime, identifiers, period } from './cda-values.js';
import { C32, CCD1, entryObservations, negated, related, templatedOrBare, type EntryInput, type SectionMapper } from './section-mapper.js';
import type { XmlElement } from './xml-element.js';

const T = '2.16.840.1.113883.10.20.22';
/** C-CDA's Problem Observation, and CCD 1.0's (the HITSP C32 condition entry). */
const PROBLEM_OBSERVATION = [`${T}.4.4`, `${CCD1}.28`];
/** C-CDA's Problem Status, and CCD 1.0's. */
const PROBLEM_STATUS = [`${T}.4.6`, `${CCD1}.50`];
const CLINICAL = 'http://terminology.hl7.org/CodeSystem/condition-clinical';
const CATEGORY = 'http://terminology.hl7.org/CodeSystem/condition-category';
export const PROBLEM_LIST_ITEM: Coding = { system: CATEGORY, code: 'problem-list-item' };
export const ENCOUNTER_DIAGNOSIS: Coding = { system: CATEGORY, code: 'encounter-diagnosis' };
export const HEALTH_CONCERN: Coding = { system: 'http://hl7.org/fhir/us/core/CodeSystem/condition-category', code: 'health-concern' };
const VERIFICATION = 'http://terminology.hl7.org/CodeSystem/condition-ver-status';

/** SNOMED problem status values (Problem Status observation) to FHIR clinical status. */
const STATUS_VALUES: Record<string, string> = { '55561003': 'active', '73425007': 'inactive', '413322009': 'resolved', '277022003': 'remission', '246455001': 'recurrence' };

/**
 * Problem section: each Problem Observation (inside a Problem Concern Act, or standing alone) becomes a
 * Condition on the problem list. The problem is the observation's value; its onset and resolution are
 * the observation's effectiveTime; its clinical status comes from a Problem Status observation, else
 * the concern's status, and is `resolved` when a resolution date is given (FHIR con-4).
 */
export const problemSection: SectionMapper = {
  kind: 'problems',
  templates: [`${T}.2.5.1`, `${T}.2.5`, `${CCD1}.11`, `${C32}.103`],
  loincCodes: ['11450-4'],
  mapEntry({ ctx, statement, narrative, section }: EntryInput) {
    for (const observation of entryObservations(statement, 'a Problem Observation', templatedOrBare(...PROBLEM_OBSERVATION))) {
      ctx.add(section, conditionFrom(observation, statement, narrative, ctx.patient.reference as string, PROBLEM_LIST_ITEM), identifiers(observation));
    }
  },
};

/**
 * Diagnosis sections of encounter documents (admission, discharge, pre- and post-operative,
 * post-procedure diagnosis) and the findings of procedure notes (procedure findings, complications,
 * indications): the diagnosis act wraps Problem Observations (an Indication observation has the same
 * shape: the problem is its value), which become Conditions of category encounter-diagnosis.
 */
export const diagnosisSection: SectionMapper = {
  kind: 'diagnoses',
  templates: [`${T}.2.24`, `${T}.2.43`, `${T}.2.34`, `${T}.2.35`, `${T}.2.36`, `${T}.2.28`, `${T}.2.37`, `${T}.2.29`],
  loincCodes: ['11535-2', '46241-6', '10219-4', '10218-6', '59769-0', '59776-5', '55109-3', '59768-2'],
  mapEntry({ ctx, statement, narrative, section }: EntryInput) {
    for (const observation of entryObservations(statement, 'a Problem Observation')) {
      ctx.add(section, conditionFrom(observation, statement, narrative, ctx.patient.reference as string, ENCOUNTER_DIAGNOSIS), identifiers(observation));
    }
  },
};

/** A Problem Observation as a Condition (also used for encounter diagnoses). */
export function conditionFrom(observation: XmlElement, concern: XmlElement, narrative: XmlElement | undefined, patient: string, category: Coding): Condition {
  const code = concept(observation.first('value'), narrative) ?? concept(observation.first('code'), narrative);
  if (!code) {
    throw new EntryMappingError('a Problem Observation without a coded or named problem (value)');
  }
  const when = period(observation.first('effectiveTime'));
  const refuted = negated(observation);
  const condition: Condition = {
    resourceType: 'Condition',
    subject: { reference: patient },
    category: [{ coding: [category] }],
    code,
    verificationStatus: { coding: [{ system: VERIFICATION, code: refuted ? 'refuted' : 'confirmed' }] },
    clinicalStatus: clinicalStatus(observation, concern, !!when?.end),
  };
  const ids = identifiers(observation);
  if (ids.length) condition.identifier = ids;
  if (when?.start) condition.onsetDateTime = when.start;
  if (when?.end) condition.abatementDateTime = when.end;
  const recorded = dateTime(observation.first('author/time')?.attr('value') ?? concern.first('author/time')?.attr('value'));
  if (recorded) condition.recordedDate = recorded;
  return condition;
}

function clinicalStatus(observation: XmlElement, concern: XmlElement, abated: boolean): CodeableConcept {
  const statusValue = related(observation, ...PROBLEM_STATUS)[0]?.first('value')?.attr('code');
  let code = (statusValue && STATUS_VALUES[statusValue]) || undefined;
  if (!code) {
    const concernStatus = concern.first('statusCode')?.attr('code');
    code = concernStatus === 'completed' || concernStatus === 'aborted' || concernStatus === 'suspended' ? 'inactive' : 'active';
  }
  if (abated && (code === 'active' || code === 'recurrence')) code = 'resolved';
  return { coding: [{ system: CLINICAL, code }] };
}
