import { EntryMappingError, type CcdaContext } from './ccda-context.js';
import type { XmlElement } from './xml-element.js';

/** What a section mapper gets for one entry: the entry's clinical statement and the section around it. */
export interface EntryInput {
  ctx: CcdaContext;
  /** The clinical statement inside <entry> (act, observation, organizer, substanceAdministration...). */
  statement: XmlElement;
  /** The section's narrative (<text>), where entries' originalText references point. */
  narrative?: XmlElement;
  /** The section's title, for warnings and the Composition. */
  section: string;
}

/** A kind of C-CDA section Tessera converts entry by entry, recognised by template id or LOINC section code. */
export interface SectionMapper {
  kind:
    | 'problems'
    | 'diagnoses'
    | 'medications'
    | 'allergies'
    | 'results'
    | 'vital-signs'
    | 'immunizations'
    | 'procedures'
    | 'anesthesia'
    | 'encounters'
    | 'social-history'
    | 'family-history'
    | 'goals'
    | 'health-concerns'
    | 'plan-of-treatment'
    | 'referral'
    | 'functional-status'
    | 'nutrition'
    | 'physical-exam'
    | 'advance-directives'
    | 'medical-equipment'
    | 'coverage'
    | 'interventions'
    | 'outcomes'
    | 'imaging';
  templates: string[];
  loincCodes: string[];
  /** Section codes of DICOM's vocabulary (DCM), which imaging reports use instead of LOINC. */
  dicomCodes?: string[];
  /** Maps one entry (adding one or more resources to ctx); throws EntryMappingError when it cannot. */
  mapEntry(input: EntryInput): void;
}

/** The statements C-CDA allows inside an entry, an organizer's component, or an entryRelationship. */
export const CLINICAL_STATEMENTS = ['act', 'observation', 'organizer', 'substanceAdministration', 'supply', 'procedure', 'encounter', 'regionOfInterest', 'observationMedia'];

export function statementOf(container: XmlElement): XmlElement | undefined {
  return container.elements().find((e) => CLINICAL_STATEMENTS.includes(e.name));
}

/** Statements in a statement's entryRelationships, optionally only those with one of these templates. */
export function related(statement: XmlElement, ...templates: string[]): XmlElement[] {
  return statement
    .elements('entryRelationship')
    .map(statementOf)
    .filter((s): s is XmlElement => !!s && (!templates.length || s.hasTemplate(...templates)));
}

/**
 * The observations an entry records: the entry itself when it is an observation, else the observations
 * inside its act (a concern, a diagnosis) that `accept` takes; none is an EntryMappingError naming `what`.
 */
export function entryObservations(statement: XmlElement, what: string, accept: (observation: XmlElement) => boolean = () => true): XmlElement[] {
  if (statement.name === 'observation') return [statement];
  const observations = related(statement).filter((o) => o.name === 'observation' && accept(o));
  if (!observations.length) throw new EntryMappingError(`a ${statement.name} without ${what}`);
  return observations;
}

/** An observation of one of these templates (C-CDA's, and CCD 1.0's where it differs), or of none (senders that leave templateIds out). */
export const templatedOrBare = (...templates: string[]) => (observation: XmlElement): boolean => observation.hasTemplate(...templates) || !observation.templates().length;

/**
 * CCD 1.0 (2.16.840.1.113883.10.20.1) and HITSP C32 (2.16.840.1.113883.3.88.11.83) templates, the older
 * documents many EHRs still send: where an entry has the shape of its C-CDA R2.1 successor, the R2.1
 * mapper serves it once it recognises the older template id.
 */
export const CCD1 = '2.16.840.1.113883.10.20.1';
export const C32 = '2.16.840.1.113883.3.88.11.83';

export function negated(statement: XmlElement): boolean {
  return statement.attr('negationInd') === 'true';
}
