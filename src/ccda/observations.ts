import type { Coding, DiagnosticReport, Observation, ObservationReferenceRange, Reference } from '@medplum/fhirtypes';
import { EntryMappingError } from './ccda-context.js';
import { concept, identifiers, instant, period, quantity, referencedText } from './cda-values.js';
import { C32, CCD1, statementOf, type EntryInput, type SectionMapper } from './section-mapper.js';
import type { XmlElement } from './xml-element.js';

const T = '2.16.840.1.113883.10.20.22';
const OBSERVATION_CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';
const STATUS: Record<string, Observation['status']> = { completed: 'final', active: 'preliminary', aborted: 'cancelled', cancelled: 'cancelled', nullified: 'entered-in-error' };

/**
 * Results section: a Result Organizer becomes a DiagnosticReport (the panel) whose results are its
 * component Result Observations; an observation outside an organizer stands alone.
 */
export const resultSection: SectionMapper = {
  kind: 'results',
  templates: [`${T}.2.3.1`, `${T}.2.3`, `${CCD1}.14`, `${C32}.122`],
  loincCodes: ['30954-2'],
  mapEntry: (input) => mapObservations(input, 'laboratory'),
};

/** Vital Signs section: each Vital Sign Observation of an organizer becomes an Observation (vital-signs). */
export const vitalSignSection: SectionMapper = {
  kind: 'vital-signs',
  templates: [`${T}.2.4.1`, `${T}.2.4`, `${CCD1}.16`, `${C32}.119`],
  loincCodes: ['8716-3'],
  mapEntry: (input) => mapObservations(input, 'vital-signs', false),
};

/** Social History section: smoking status, pregnancy, occupation... as Observations (social-history). */
export const socialHistorySection: SectionMapper = {
  kind: 'social-history',
  templates: [`${T}.2.17`],
  loincCodes: ['29762-2'],
  mapEntry: (input) => mapObservations(input, 'social-history', false),
};

/** Functional Status and Mental Status sections: their result observations as Observations (survey). */
export const functionalStatusSection: SectionMapper = {
  kind: 'functional-status',
  templates: [`${T}.2.14`, `${T}.2.56`],
  loincCodes: ['47420-5', '10190-7'],
  mapEntry: (input) => mapObservations(input, 'survey', false),
};

/**
 * Nutrition section: Nutritional Status observations (with their Nutrition Assessments inside, which stay
 * in the narrative) as Observations (survey: an assessment).
 */
export const nutritionSection: SectionMapper = {
  kind: 'nutrition',
  templates: [`${T}.2.57`],
  loincCodes: ['61144-2'],
  mapEntry: (input) => mapObservations(input, 'survey', false),
};

/** Health Status Evaluations and Outcomes section of care plans: Outcome Observations (what came of the care) as Observations (survey). */
export const outcomeSection: SectionMapper = {
  kind: 'outcomes',
  templates: [`${T}.2.61`],
  loincCodes: ['11383-7'],
  mapEntry: (input) => mapObservations(input, 'survey', false),
};

/**
 * Diagnostic Imaging Report sections named by DICOM codes (Findings, Impressions): their Text Observations
 * (the finding as text, from the narrative) as Observations (imaging); measurements inside them stay in
 * the narrative and the stored report.
 */
export const imagingSection: SectionMapper = {
  kind: 'imaging',
  templates: ['2.16.840.1.113883.10.20.6.1.2'],
  loincCodes: [],
  dicomCodes: ['121070', '121072'],
  mapEntry: (input) => mapObservations(input, 'imaging', false),
};

/** Physical Exam section and its sub-sections (skin, wounds...): their findings as Observations (exam). */
export const physicalExamSection: SectionMapper = {
  kind: 'physical-exam',
  templates: ['2.16.840.1.113883.10.20.2.10', `${T}.2.63`],
  loincCodes: ['29545-1', '8709-8'],
  mapEntry: (input) => mapObservations(input, 'exam', false),
};

/**
 * Advance Directives section: each Advance Directive Observation (of an organizer or alone) as an
 * Observation: the kind of directive (code), what it says (value), while it holds (effective). R4's
 * observation categories have none for it, so the category is the section's own LOINC code.
 */
export const advanceDirectiveSection: SectionMapper = {
  kind: 'advance-directives',
  templates: [`${T}.2.21.1`, `${T}.2.21`],
  loincCodes: ['42348-3'],
  mapEntry: (input) => mapObservations(input, { system: 'http://loinc.org', code: '42348-3', display: 'Advance directives' }, false),
};

/** An observation category: a code of FHIR's observation-category system, or a coding of another. */
type Category = string | Coding;

function mapObservations({ ctx, statement, narrative, section }: EntryInput, category: Category, asReport = true): void {
  const patient = ctx.patient.reference as string;
  if (statement.name === 'observation') {
    ctx.add(section, observationFrom(statement, category, narrative, patient), identifiers(statement));
    return;
  }
  if (statement.name !== 'organizer') {
    throw new EntryMappingError(`a ${statement.name} where an organizer or observation belongs`);
  }
  const components = statement.elements('component').map(statementOf).filter((s): s is XmlElement => s?.name === 'observation');
  if (!components.length) {
    throw new EntryMappingError('an organizer without observations');
  }
  const results: Reference<Observation>[] = [];
  for (const component of components) {
    try {
      results.push(ctx.add(section, observationFrom(component, category, narrative, patient), identifiers(component)));
    } catch (err) {
      // One observation of a panel that cannot be read does not lose the rest of the panel.
      if (!(err instanceof EntryMappingError)) throw err;
      ctx.warn(`${section}: an observation of the organizer was not mapped (${err.message}); it stays in the document's narrative`);
    }
  }
  if (!asReport || !results.length) return;
  const report: DiagnosticReport = {
    resourceType: 'DiagnosticReport',
    status: STATUS[statement.first('statusCode')?.attr('code') ?? ''] === 'preliminary' ? 'preliminary' : 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: category === 'laboratory' ? 'LAB' : 'OTH' }] }],
    code: concept(statement.first('code'), narrative) ?? { text: 'Result panel' },
    subject: { reference: patient },
    result: results,
  };
  const ids = identifiers(statement);
  if (ids.length) report.identifier = ids;
  const when = period(statement.first('effectiveTime'));
  if (when?.start && when.end) report.effectivePeriod = when;
  else if (when?.start ?? when?.end) report.effectiveDateTime = when.start ?? when.end;
  ctx.add(section, report, ids);
}

/** A Result / Vital Sign / social history observation as an Observation. */
export function observationFrom(element: XmlElement, category: Category, narrative: XmlElement | undefined, patient: string): Observation {
  const code = concept(element.first('code'), narrative);
  if (!code) {
    throw new EntryMappingError('an observation without a code (what was observed)');
  }
  const observation: Observation = {
    resourceType: 'Observation',
    status: STATUS[element.first('statusCode')?.attr('code') ?? ''] ?? 'final',
    category: [{ coding: [typeof category === 'string' ? { system: OBSERVATION_CATEGORY, code: category } : category] }],
    code,
    subject: { reference: patient },
  };
  const ids = identifiers(element);
  if (ids.length) observation.identifier = ids;
  const when = instant(element.first('effectiveTime'));
  if (when) observation.effectiveDateTime = when;
  setValue(observation, element.first('value'), narrative);
  const interpretation = element.elements('interpretationCode').map((i) => concept(i, narrative)).filter((c) => !!c);
  if (interpretation.length) observation.interpretation = interpretation;
  const ranges = element.all('referenceRange/observationRange').map((r) => referenceRange(r)).filter((r): r is ObservationReferenceRange => !!r);
  if (ranges.length) observation.referenceRange = ranges;
  return observation;
}

/** The observation's value by its xsi:type: PQ, CD/CE/CO, ST/ED, INT, REAL, BL, IVL_PQ, TS. */
function setValue(observation: Observation, value: XmlElement | undefined, narrative: XmlElement | undefined): void {
  if (!value || value.attr('nullFlavor')) return;
  const type = (value.attr('xsi:type') ?? '').replace(/^.*:/, '');
  switch (type) {
    case 'PQ':
    case 'REAL': {
      const q = quantity(value);
      if (q) observation.valueQuantity = q;
      return;
    }
    case 'INT': {
      const n = Number(value.attr('value'));
      if (Number.isInteger(n)) observation.valueInteger = n;
      return;
    }
    case 'CD':
    case 'CE':
    case 'CV':
    case 'CO': {
      const c = concept(value, narrative);
      if (c) observation.valueCodeableConcept = c;
      return;
    }
    case 'BL':
      if (value.attr('value') === 'true' || value.attr('value') === 'false') observation.valueBoolean = value.attr('value') === 'true';
      return;
    case 'IVL_PQ': {
      const [low, high] = [quantity(value.first('low')), quantity(value.first('high'))];
      if (low || high) observation.valueRange = { ...(low ? { low } : {}), ...(high ? { high } : {}) };
      return;
    }
    case 'TS': {
      const t = instant(value);
      if (t) observation.valueDateTime = t;
      return;
    }
    default: {
      // ST, or ED whose text may be in the section narrative it references (imaging findings).
      const text = referencedText(value, narrative);
      if (text) observation.valueString = text;
    }
  }
}

function referenceRange(range: XmlElement): ObservationReferenceRange | undefined {
  const value = range.first('value');
  const [low, high] = [quantity(value?.first('low')), quantity(value?.first('high'))];
  const text = range.first('text')?.text();
  if (!low && !high && !text) return undefined;
  return { ...(low ? { low } : {}), ...(high ? { high } : {}), ...(text ? { text } : {}) };
}
