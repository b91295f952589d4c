import type { Immunization } from '@medplum/fhirtypes';
import { readAdministration } from './administration.js';
import { EntryMappingError } from './ccda-context.js';
import { concept, identifiers } from './cda-values.js';
import { C32, CCD1, negated, related, type EntryInput, type SectionMapper } from './section-mapper.js';

const T = '2.16.840.1.113883.10.20.22';
const REFUSAL_REASON = `${T}.4.53`;

/**
 * Immunizations section: each Immunization Activity becomes an Immunization: the vaccine is the
 * manufacturedMaterial code (CVX), given at the effectiveTime; a negated activity is `not-done`, with the
 * refusal reason when one is given. FHIR requires a date: an activity without one says so as text.
 */
export const immunizationSection: SectionMapper = {
  kind: 'immunizations',
  templates: [`${T}.2.2.1`, `${T}.2.2`, `${CCD1}.6`, `${C32}.117`],
  loincCodes: ['11369-6'],
  mapEntry({ ctx, statement, narrative, section }: EntryInput) {
    if (statement.name !== 'substanceAdministration') {
      throw new EntryMappingError(`a ${statement.name} where an Immunization Activity (substanceAdministration) belongs`);
    }
    const given = readAdministration(statement, narrative);
    if (!given.product) {
      throw new EntryMappingError('an Immunization Activity without a vaccine (consumable/manufacturedProduct/manufacturedMaterial)');
    }
    const ids = identifiers(statement);
    const notDone = negated(statement) || statement.first('statusCode')?.attr('code') === 'cancelled';
    const occurrence = given.when?.start ?? given.when?.end;
    const immunization: Immunization = {
      resourceType: 'Immunization',
      status: statement.first('statusCode')?.attr('code') === 'nullified' ? 'entered-in-error' : notDone ? 'not-done' : 'completed',
      vaccineCode: given.product,
      patient: { reference: ctx.patient.reference as string },
      ...(occurrence ? { occurrenceDateTime: occurrence } : { occurrenceString: 'date not recorded' }),
      ...(ids.length ? { identifier: ids } : {}),
      ...(given.route ? { route: given.route } : {}),
      ...(given.dose ? { doseQuantity: given.dose } : {}),
      ...(given.lotNumber ? { lotNumber: given.lotNumber } : {}),
    };
    const reason = notDone ? concept(related(statement, REFUSAL_REASON)[0]?.first('code'), narrative) : undefined;
    if (reason) immunization.statusReason = reason;
    ctx.add(section, immunization, ids);
  },
};
