import type { Immunization } from '@medplum/fhirtypes';
import { identifierQuery } from '../bundle/transaction-builder.js';
import { codeableConcept, quantity } from './datatypes.js';
import { practitionerName } from './encounter-mapper.js';
import type { MappingContext } from './mapping-context.js';
import type { V2Segment } from './message-reader.js';

/**
 * VXU^V04 to Immunization, one per RXA (CDC's HL7 v2.5.1 immunization implementation guide): vaccine
 * (RXA-5, CVX or NDC), date (RXA-3), dose (RXA-6/7; 999 means unknown), lot (RXA-15), manufacturer
 * (RXA-17, MVX), completion status (RXA-20), route and site (RXR). Keyed by the filler order number of
 * the ORC before it, so that a re-sent or corrected record updates the same Immunization.
 */
export function addImmunizations(ctx: MappingContext): number {
  let orc: V2Segment | undefined;
  let immunization: Immunization | undefined;
  let mapped = 0;
  let index = 0;
  for (const segment of ctx.message.segments()) {
    if (segment.name === 'ORC') {
      orc = segment;
    } else if (segment.name === 'RXA') {
      index++;
      immunization = mapImmunization(ctx, segment, orc, index);
      orc = undefined;
      if (immunization) mapped++;
    } else if (segment.name === 'RXR' && immunization) {
      const route = codeableConcept(segment, 1);
      const site = codeableConcept(segment, 2);
      if (route) immunization.route = route;
      if (site) immunization.site = site;
    }
  }
  return mapped;
}

function mapImmunization(ctx: MappingContext, rxa: V2Segment, orc: V2Segment | undefined, index: number): Immunization | undefined {
  const where = `RXA ${index}`;
  const vaccineCode = codeableConcept(rxa, 5);
  const occurrence = ctx.dateTime(rxa.value(3));
  if (!vaccineCode) {
    ctx.warn(`${where}: no administered code (RXA-5): left out`);
    return undefined;
  }
  if (!occurrence) {
    ctx.warn(`${where}: administration date "${rxa.value(3)}" (RXA-3) is not a valid date: left out`);
    return undefined;
  }
  const completion = rxa.value(20).toUpperCase();
  const key = orc?.value(3) || orc?.value(2) || `${ctx.message.controlId}-${index}`;
  const immunization: Immunization = {
    resourceType: 'Immunization',
    identifier: [{ system: ctx.system('immunization'), value: key }],
    status: completion === 'RE' || completion === 'NA' ? 'not-done' : 'completed',
    vaccineCode,
    patient: ctx.patient as Immunization['patient'],
    occurrenceDateTime: occurrence,
    primarySource: rxa.value(9) !== '01',
  };
  if (completion === 'RE') {
    immunization.statusReason = codeableConcept(rxa, 18) ?? { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'PATOBJ' }] };
  }
  if (completion === 'PA') {
    immunization.isSubpotent = true;
  }
  const amount = Number(rxa.value(6));
  if (rxa.value(6) && Number.isFinite(amount) && amount !== 999) {
    immunization.doseQuantity = quantity(amount, rxa, 7);
  }
  if (rxa.value(15)) immunization.lotNumber = rxa.value(15);
  const expiry = ctx.dateTime(rxa.value(16));
  if (expiry) immunization.expirationDate = expiry.slice(0, 10);
  const manufacturer = rxa.value(17, 2) || rxa.value(17, 1);
  if (manufacturer) immunization.manufacturer = { display: manufacturer };
  const performer = practitionerName(rxa, 10);
  if (performer) {
    immunization.performer = [{ function: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0443', code: 'AP' }] }, actor: { display: performer } }];
  }
  const historical = rxa.value(9) === '01';
  if (historical && rxa.value(9, 2)) immunization.reportOrigin = codeableConcept(rxa, 9);
  ctx.tx.upsert(immunization, identifierQuery(ctx.system('immunization'), key));
  return immunization;
}
