import type { FamilyMemberHistory, FamilyMemberHistoryCondition } from '@medplum/fhirtypes';
import { EntryMappingError } from './ccda-context.js';
import { concept, identifiers, quantity } from './cda-values.js';
import { related, statementOf, type EntryInput, type SectionMapper } from './section-mapper.js';
import type { XmlElement } from './xml-element.js';

const T = '2.16.840.1.113883.10.20.22';
const AGE_OBSERVATION = `${T}.4.31`;

/**
 * Family History section: each Family History Organizer (one relative) becomes a FamilyMemberHistory:
 * the relationship (relatedSubject code, v3 RoleCode: FTH, MTH...), the relative's sex, and each Family
 * History Observation's value as a condition, with the age at onset when given.
 */
export const familyHistorySection: SectionMapper = {
  kind: 'family-history',
  templates: [`${T}.2.15`],
  loincCodes: ['10157-6'],
  mapEntry({ ctx, statement, narrative, section }: EntryInput) {
    const observations = statement.name === 'organizer' ? statement.elements('component').map(statementOf).filter((o): o is XmlElement => o?.name === 'observation') : statement.name === 'observation' ? [statement] : [];
    const subject = statement.first('subject/relatedSubject');
    const relationship = concept(subject?.first('code'), narrative);
    if (!relationship) {
      throw new EntryMappingError('a family history entry that does not say which relative (subject/relatedSubject/code)');
    }
    const conditions = observations
      .map((o): FamilyMemberHistoryCondition | undefined => {
        const code = concept(o.first('value'), narrative);
        if (!code) return undefined;
        const age = quantity(related(o, AGE_OBSERVATION)[0]?.first('value'));
        return { code, ...(age ? { onsetAge: { ...age, system: 'http://unitsofmeasure.org', code: age.unit ?? 'a', unit: age.unit ?? 'a' } } : {}) };
      })
      .filter((c): c is FamilyMemberHistoryCondition => !!c);
    const ids = identifiers(statement);
    const sex = subject?.first('subject/administrativeGenderCode')?.attr('code');
    const history: FamilyMemberHistory = {
      resourceType: 'FamilyMemberHistory',
      status: 'completed',
      patient: { reference: ctx.patient.reference as string },
      relationship,
      ...(ids.length ? { identifier: ids } : {}),
      ...(sex === 'M' || sex === 'F' ? { sex: { coding: [{ system: 'http://hl7.org/fhir/administrative-gender', code: sex === 'M' ? 'male' : 'female' }] } } : {}),
      ...(conditions.length ? { condition: conditions } : {}),
    };
    ctx.add(section, history, ids);
  },
};
