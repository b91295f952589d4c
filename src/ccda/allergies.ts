import type { AllergyIntolerance, AllergyIntoleranceReaction } from '@medplum/fhirtypes';
import { EntryMappingError } from './ccda-context.js';
import { concept, dateTime, identifiers, period } from './cda-values.js';
import { C32, CCD1, entryObservations, negated, related, templatedOrBare, type EntryInput, type SectionMapper } from './section-mapper.js';
import type { XmlElement } from './xml-element.js';

const T = '2.16.840.1.113883.10.20.22';
/** Each C-CDA template with its CCD 1.0 predecessor (alert observation, reaction, severity, alert status). */
const ALLERGY_OBSERVATION = [`${T}.4.7`, `${CCD1}.18`];
const REACTION = [`${T}.4.9`, `${CCD1}.54`];
const SEVERITY = [`${T}.4.8`, `${CCD1}.55`];
const ALLERGY_STATUS = [`${T}.4.28`, `${CCD1}.39`];

/** Allergy observation value (SNOMED) to FHIR type and category. */
const KINDS: Record<string, { type?: AllergyIntolerance['type']; category?: 'food' | 'medication' | 'environment' | 'biologic' }> = {
  '419199007': { type: 'allergy' },
  '416098002': { type: 'allergy', category: 'medication' },
  '414285001': { type: 'allergy', category: 'food' },
  '426232007': { type: 'allergy', category: 'environment' },
  '59037007': { type: 'intolerance', category: 'medication' },
  '235719002': { type: 'intolerance', category: 'food' },
  '419511003': { category: 'medication' },
  '418471000': { category: 'food' },
  '418038007': { category: 'biologic' },
  '420134006': {},
};
const SEVERITIES: Record<string, AllergyIntoleranceReaction['severity']> = { '255604002': 'mild', '6736007': 'moderate', '24484000': 'severe', '371923003': 'mild', '371924009': 'moderate', '442452003': 'severe', '399166001': 'severe' };
const STATUS_VALUES: Record<string, string> = { '55561003': 'active', '73425007': 'inactive', '413322009': 'resolved' };

/**
 * Allergies section: each Allergy - Intolerance Observation (inside an Allergy Concern Act) becomes an
 * AllergyIntolerance. The substance is the participant's playingEntity code; a negated observation
 * without one ("no known allergies") keeps the observation's value as its code, refuted.
 */
export const allergySection: SectionMapper = {
  kind: 'allergies',
  templates: [`${T}.2.6.1`, `${T}.2.6`, `${CCD1}.2`, `${C32}.102`],
  loincCodes: ['48765-2'],
  mapEntry({ ctx, statement, narrative, section }: EntryInput) {
    for (const observation of entryObservations(statement, 'an Allergy - Intolerance Observation', templatedOrBare(...ALLERGY_OBSERVATION))) {
      ctx.add(section, allergyFrom(observation, statement, narrative, ctx.patient.reference as string), identifiers(observation));
    }
  },
};

function allergyFrom(observation: XmlElement, concern: XmlElement, narrative: XmlElement | undefined, patient: string): AllergyIntolerance {
  const substance = concept(observation.first('participant/participantRole/playingEntity/code'), narrative);
  const kind = concept(observation.first('value'), narrative);
  const code = substance ?? kind;
  if (!code) {
    throw new EntryMappingError('an Allergy - Intolerance Observation naming neither a substance nor the kind of allergy');
  }
  const refuted = negated(observation);
  const allergy: AllergyIntolerance = {
    resourceType: 'AllergyIntolerance',
    patient: { reference: patient },
    code,
    verificationStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-verification', code: refuted ? 'refuted' : 'confirmed' }] },
    clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical', code: allergyStatus(observation, concern) }] },
  };
  const ids = identifiers(observation);
  if (ids.length) allergy.identifier = ids;
  const valueCode = observation.first('value')?.attr('code');
  const known = valueCode ? KINDS[valueCode] : undefined;
  if (known?.type) allergy.type = known.type;
  if (known?.category) allergy.category = [known.category];
  const onset = period(observation.first('effectiveTime'))?.start;
  if (onset) allergy.onsetDateTime = onset;
  const recorded = dateTime(observation.first('author/time')?.attr('value') ?? concern.first('author/time')?.attr('value'));
  if (recorded) allergy.recordedDate = recorded;
  const reactions = related(observation, ...REACTION)
    .map((r): AllergyIntoleranceReaction | undefined => {
      const manifestation = concept(r.first('value'), narrative);
      if (!manifestation) return undefined;
      const severityCode = related(r, ...SEVERITY)[0]?.first('value')?.attr('code');
      return { manifestation: [manifestation], ...(severityCode && SEVERITIES[severityCode] ? { severity: SEVERITIES[severityCode] } : {}) };
    })
    .filter((r): r is AllergyIntoleranceReaction => !!r);
  if (reactions.length) {
    // A severity stated for the allergy as a whole applies to reactions that state none.
    const overall = related(observation, ...SEVERITY)[0]?.first('value')?.attr('code');
    if (overall && SEVERITIES[overall]) reactions.forEach((r) => (r.severity ??= SEVERITIES[overall]));
    allergy.reaction = reactions;
  }
  return allergy;
}

function allergyStatus(observation: XmlElement, concern: XmlElement): string {
  const statusValue = related(observation, ...ALLERGY_STATUS)[0]?.first('value')?.attr('code');
  if (statusValue && STATUS_VALUES[statusValue]) return STATUS_VALUES[statusValue];
  const concernStatus = concern.first('statusCode')?.attr('code');
  return concernStatus === 'completed' || concernStatus === 'aborted' || concernStatus === 'suspended' ? 'inactive' : 'active';
}
