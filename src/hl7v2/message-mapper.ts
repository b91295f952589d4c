import type { Bundle } from '@medplum/fhirtypes';
import type { Participant } from '../participants/participants.js';
import { cx } from './datatypes.js';
import { addEncounter } from './encounter-mapper.js';
import { addImmunizations } from './immunization-mapper.js';
import { IgnoredMessageError, MappingContext, MappingError } from './mapping-context.js';
import { addOrders } from './order-mapper.js';
import type { V2Message } from './message-reader.js';
import { addPatient } from './patient-mapper.js';
import { addResults } from './result-mapper.js';
import { addProblems } from './problem-mapper.js';
import { addDocument } from './document-mapper.js';

/** ADT events that carry a patient (and usually a visit): admit, transfer, discharge, register, updates, cancels. */
const ADT_VISIT_EVENTS = new Set(['A01', 'A02', 'A03', 'A04', 'A05', 'A06', 'A07', 'A08', 'A09', 'A10', 'A11', 'A12', 'A13', 'A14', 'A15', 'A16', 'A21', 'A22', 'A25', 'A26', 'A27', 'A38']);
/** Problem add, update, delete. */
const PPR_EVENTS = new Set(['PC1', 'PC2', 'PC3']);
/** Document notifications (T01, T03, T05, T09), with content (T02, T04, T06, T08, T10), cancel (T11). */
const MDM_EVENTS = new Set(['T01', 'T02', 'T03', 'T04', 'T05', 'T06', 'T07', 'T08', 'T09', 'T10', 'T11']);
/** Order messages that carry ORC/OBR orders: general (ORM), laboratory (OML), clinical (OMG), imaging (OMI). */
const ORDER_EVENTS: Record<string, string> = { ORM: 'O01', OML: 'O21', OMG: 'O19', OMI: 'O23' };
/** ADT events about the person only (add/update person information). */
const ADT_PERSON_EVENTS = new Set(['A28', 'A31']);

export interface MappedMessage {
  bundle: Bundle;
  warnings: string[];
  /** An A40: the sender merged two of its records; the prior one (MRG-1) is to join the survivor. */
  merge?: { survivorMrn: string; priorMrn: string };
  /** Orders the message's results answer, by the search that finds each (see MappingContext.orders). */
  orders: MappingContext['orders'];
  /** Which message-type mapping ran (counts per type in the message log and the tests). */
  mapping: string;
}

/** The types and events Tessera maps, for the capability list and the AR of anything else. */
export const SUPPORTED_TYPES = ['ADT^' + [...ADT_VISIT_EVENTS, ...ADT_PERSON_EVENTS, 'A40'].sort().join('|'), 'ORU^R01', ...Object.entries(ORDER_EVENTS).map(([t, e]) => `${t}^${e}`), 'VXU^V04', `PPR^${[...PPR_EVENTS].join('|')}`, `MDM^${[...MDM_EVENTS].join('|')}`];

/**
 * One HL7 v2 message to the FHIR transaction that stores what it says. Throws MappingError (AE) when the
 * message cannot be mapped at all; fields it cannot use are left out and listed as warnings.
 */
export function mapV2Message(message: V2Message, participant: Participant, messageId: string, timeZone?: string): MappedMessage {
  const ctx = new MappingContext(message, participant, messageId, timeZone);
  const [type, event] = [message.header.value(9, 1).toUpperCase(), message.header.value(9, 2).toUpperCase()];
  let mapping: string;
  let merge: MappedMessage['merge'];
  if (type === 'ADT' && (ADT_VISIT_EVENTS.has(event) || ADT_PERSON_EVENTS.has(event))) {
    addPatient(ctx, 'replace');
    if (ADT_VISIT_EVENTS.has(event)) addEncounter(ctx, event);
    mapping = `ADT^${event}`;
  } else if (type === 'ADT' && event === 'A40') {
    const patient = addPatient(ctx, 'replace');
    const mrg = message.segment('MRG');
    const prior = mrg && cx(mrg, 1);
    if (!prior) {
      throw new MappingError('A40 without a prior patient identifier (MRG-1)', 'MRG^1^1', '101');
    }
    merge = { survivorMrn: patient.identifier?.[0]?.value as string, priorMrn: prior.value };
    mapping = 'ADT^A40';
  } else if (type === 'ORU' && (event === 'R01' || event === '')) {
    addPatient(ctx, 'create-if-missing');
    const encounter = addEncounter(ctx, '');
    if (!addResults(ctx, encounter)) {
      throw new MappingError('the ORU message has no OBR/OBX results', 'OBR', '100');
    }
    mapping = 'ORU^R01';
  } else if (ORDER_EVENTS[type] && (event === ORDER_EVENTS[type] || event === '')) {
    addPatient(ctx, 'create-if-missing');
    const encounter = addEncounter(ctx, '');
    if (!addOrders(ctx, encounter)) {
      throw new MappingError(`the ${type} message has no ORC order segment`, 'ORC', '100');
    }
    mapping = `${type}^${ORDER_EVENTS[type]}`;
  } else if (type === 'ACK') {
    throw new IgnoredMessageError('an acknowledgement (ACK) is not a message to the exchange: nothing to store or acknowledge');
  } else if (type === 'VXU' && (event === 'V04' || event === '')) {
    addPatient(ctx, 'create-if-missing');
    if (!addImmunizations(ctx)) {
      throw new MappingError('the VXU message has no RXA segment that could be mapped', 'RXA', '100');
    }
    mapping = 'VXU^V04';
  } else if (type === 'PPR' && PPR_EVENTS.has(event)) {
    addPatient(ctx, 'create-if-missing');
    addProblems(ctx, event);
    mapping = `PPR^${event}`;
  } else if (type === 'MDM' && MDM_EVENTS.has(event)) {
    addPatient(ctx, 'create-if-missing');
    addDocument(ctx, event);
    mapping = `MDM^${event}`;
  } else {
    throw new MappingError(`message type ${message.type} is not supported (supported: ${SUPPORTED_TYPES.join(', ')})`, 'MSH^1^9', ['ADT', 'ORU', 'VXU', 'PPR', 'MDM', ...Object.keys(ORDER_EVENTS)].includes(type) ? '201' : '200');
  }
  return { bundle: ctx.tx.bundle(), warnings: ctx.warnings, merge, mapping, orders: ctx.orders };
}
