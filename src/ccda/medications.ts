import type { Dosage, MedicationRequest, MedicationStatement } from '@medplum/fhirtypes';
import { readAdministration } from './administration.js';
import { EntryMappingError } from './ccda-context.js';
import { entryText, identifiers } from './cda-values.js';
import { C32, CCD1, negated, related, type EntryInput, type SectionMapper } from './section-mapper.js';

const T = '2.16.840.1.113883.10.20.22';

const STATEMENT_STATUS: Record<string, MedicationStatement['status']> = { active: 'active', completed: 'completed', aborted: 'stopped', suspended: 'on-hold', held: 'on-hold', cancelled: 'not-taken', nullified: 'entered-in-error', new: 'intended' };
const REQUEST_STATUS: Record<string, MedicationRequest['status']> = { active: 'active', completed: 'completed', aborted: 'stopped', suspended: 'on-hold', held: 'on-hold', cancelled: 'cancelled', nullified: 'entered-in-error', new: 'draft' };

/**
 * Medications (and Medications Administered) sections: each Medication Activity becomes a
 * MedicationStatement when it reports what the patient takes or took (moodCode EVN), or a
 * MedicationRequest when it is an order or plan (INT, RQO, PRMS, PRP); the medication is the
 * manufacturedMaterial code (RxNorm usually), with dose, route, frequency and period as the Dosage.
 */
export const medicationSection: SectionMapper = {
  kind: 'medications',
  // Medications, Medications Administered, Discharge Medications, Admission Medications.
  templates: [`${T}.2.1.1`, `${T}.2.1`, `${T}.2.38`, `${T}.2.11.1`, `${T}.2.11`, `${T}.2.44`, `${CCD1}.8`, `${C32}.112`],
  loincCodes: ['10160-0', '29549-3', '10183-2', '75311-1', '42346-7'],
  mapEntry({ ctx, statement, narrative, section }: EntryInput) {
    // Discharge and admission medications wrap their Medication Activities in an act.
    const activities = statement.name === 'act' ? related(statement).filter((s) => s.name === 'substanceAdministration') : [statement];
    if (!activities.length || activities.some((a) => a.name !== 'substanceAdministration')) {
      throw new EntryMappingError(`a ${statement.name} where a Medication Activity (substanceAdministration) belongs`);
    }
    for (const activity of activities) mapActivity({ ctx, statement: activity, narrative, section });
  },
};

function mapActivity({ ctx, statement, narrative, section }: EntryInput): void {
  const given = readAdministration(statement, narrative);
  if (!given.product) {
    throw new EntryMappingError('a Medication Activity without a medication (consumable/manufacturedProduct/manufacturedMaterial)');
  }
  const dosage: Dosage = {};
  const text = entryText(statement, narrative);
  if (text) dosage.text = text;
  if (given.route) dosage.route = given.route;
  if (given.dose) dosage.doseAndRate = [{ doseQuantity: given.dose }];
  if (given.timing) dosage.timing = given.timing;
  const status = statement.first('statusCode')?.attr('code') ?? '';
  const ids = identifiers(statement);
  const subject = { reference: ctx.patient.reference as string };
  const mood = statement.attr('moodCode') ?? 'EVN';
  if (mood === 'EVN') {
    const resource: MedicationStatement = {
      resourceType: 'MedicationStatement',
      status: negated(statement) ? 'not-taken' : (STATEMENT_STATUS[status] ?? (given.when?.end ? 'completed' : 'active')),
      medicationCodeableConcept: given.product,
      subject,
      ...(ids.length ? { identifier: ids } : {}),
      ...(given.when ? { effectivePeriod: given.when } : {}),
      ...(Object.keys(dosage).length ? { dosage: [dosage] } : {}),
    };
    ctx.add(section, resource, ids);
  } else {
    const resource: MedicationRequest = {
      resourceType: 'MedicationRequest',
      status: negated(statement) ? 'cancelled' : (REQUEST_STATUS[status] ?? 'active'),
      intent: mood === 'INT' || mood === 'PRP' ? 'plan' : mood === 'RQO' ? 'order' : 'proposal',
      medicationCodeableConcept: given.product,
      subject,
      ...(ids.length ? { identifier: ids } : {}),
      ...(given.when ? { dispenseRequest: { validityPeriod: given.when } } : {}),
      ...(Object.keys(dosage).length ? { dosageInstruction: [dosage] } : {}),
    };
    ctx.add(section, resource, ids);
  }
}
