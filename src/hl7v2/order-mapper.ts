import type { Annotation, CodeableConcept, Encounter, Reference, ServiceRequest, Specimen } from '@medplum/fhirtypes';
import { identifierQuery } from '../bundle/transaction-builder.js';
import { codeableConcept } from './datatypes.js';
import { practitionerName } from './encounter-mapper.js';
import { MappingError, type MappingContext } from './mapping-context.js';
import type { V2Segment } from './message-reader.js';
import { orderIdentifiers, orderNumbers, serviceRequestQuery } from './order-identity.js';
import { ORDER_CONTROL_STATUS, ORDER_STATUS, PRIORITY } from './status-tables.js';

/** One order of an order message: its ORC and the segments that detail it. */
interface OrderGroup {
  /** Absent when a sender leaves it out (or glues it to the segment before): the OBR carries the numbers. */
  orc?: V2Segment;
  obr?: V2Segment;
  tq1?: V2Segment;
  spm: V2Segment[];
  dg1: V2Segment[];
  notes: Annotation[];
  obx: number;
}

/** The segment that carries the order detail in each order message (OBR for laboratory, radiology and general orders). */
const DETAIL_SEGMENTS = new Set(['OBR']);

/**
 * ORM^O01, OML^O21, OMG^O19 and OMI^O23 to ServiceRequest, one per ORC: status from ORC-1 (table 0119;
 * SC from ORC-5, table 0038), code (OBR-4), requester (ORC-12, else OBR-16), performer (the receiving
 * facility, MSH-6), priority (TQ1-9, else OBR-27.6 / ORC-7.6), occurrence (TQ1-7/8, else the quantity/timing
 * start), reason (OBR-31, DG1), specimen (SPM) and notes (NTE). An order is identified by its placer
 * number (else its filler number), as the results that answer it are: a cancel or hold updates it, a
 * result links to it. Returns the number of orders mapped.
 */
export function addOrders(ctx: MappingContext, encounter?: Reference<Encounter>): number {
  const groups: OrderGroup[] = [];
  let group: OrderGroup | undefined;
  for (const segment of ctx.message.segments()) {
    if (segment.name === 'ORC') {
      group = { orc: segment, spm: [], dg1: [], notes: [], obx: 0 };
      groups.push(group);
    } else if (DETAIL_SEGMENTS.has(segment.name) && (!group || group.obr)) {
      group = { obr: segment, spm: [], dg1: [], notes: [], obx: 0 };
      groups.push(group);
    } else if (!group) {
      continue;
    } else if (DETAIL_SEGMENTS.has(segment.name)) {
      group.obr = segment;
    } else if (segment.name === 'TQ1' && !group.tq1) {
      group.tq1 = segment;
    } else if (segment.name === 'SPM') {
      group.spm.push(segment);
    } else if (segment.name === 'DG1') {
      group.dg1.push(segment);
    } else if (segment.name === 'NTE' && segment.text(3) && !group.obx) {
      group.notes.push({ text: segment.text(3) });
    } else if (segment.name === 'OBX') {
      group.obx++;
    }
  }
  const seen = new Set<string>();
  const specimens = new Map<string, Reference<Specimen>>();
  for (const [i, g] of groups.entries()) {
    const request = mapOrder(ctx, g, i + 1, specimens, encounter);
    const query = serviceRequestQuery(orderNumbers(ctx, g.orc, g.obr));
    if (!query) {
      throw new MappingError(`order ${i + 1} has no placer or filler order number (ORC-2/ORC-3, OBR-2/OBR-3): it could not be matched to its changes or results`, 'ORC^1^2', '101');
    }
    if (seen.has(query)) {
      ctx.warn(`order ${i + 1}: the order number ${request.identifier?.[0]?.value} repeats in this message: only its first ORC is stored`);
      continue;
    }
    seen.add(query);
    ctx.tx.upsert(request, query);
  }
  return groups.length;
}

function mapOrder(ctx: MappingContext, g: OrderGroup, index: number, specimens: Map<string, Reference<Specimen>>, encounter?: Reference<Encounter>): ServiceRequest {
  const where = `order ${index}`;
  const { orc, obr, tq1 } = g;
  const request: ServiceRequest = {
    resourceType: 'ServiceRequest',
    identifier: orderIdentifiers(orderNumbers(ctx, orc, obr)),
    status: orc ? orderStatus(ctx, orc, where) : 'active',
    intent: 'order',
    subject: ctx.patient as ServiceRequest['subject'],
    ...(encounter ? { encounter } : {}),
  };
  if (!orc) ctx.warn(`${where}: no ORC before its OBR: taken as a new order (ORC-1 NW)`);
  const code = obr && codeableConcept(obr, 4);
  if (code) request.code = code;
  else ctx.warn(`${where}: no universal service identifier (OBR-4): the order is stored without a code`);
  const authored = ctx.dateTime(orc?.value(9) ?? '');
  if (authored) request.authoredOn = authored;
  const requester = (orc && practitionerName(orc, 12)) ?? (obr && practitionerName(obr, 16));
  if (requester) request.requester = { display: requester };
  const performer = ctx.message.header.value(6, 1) || ctx.message.header.value(6, 2);
  if (performer) request.performer = [{ display: performer }];
  const priorityCode = (tq1?.value(9) || obr?.value(27, 6) || orc?.value(7, 6) || '').toUpperCase();
  if (priorityCode) {
    if (PRIORITY[priorityCode]) request.priority = PRIORITY[priorityCode];
    else ctx.warn(`${where}: priority "${priorityCode}" is not in HL7 table 0027: left out`);
  }
  const start = ctx.dateTime(tq1?.value(7) ?? '') ?? ctx.dateTime(obr?.value(27, 4) ?? '') ?? ctx.dateTime(orc?.value(7, 4) ?? '');
  const end = ctx.dateTime(tq1?.value(8) ?? '') ?? ctx.dateTime(obr?.value(27, 5) ?? '') ?? ctx.dateTime(orc?.value(7, 5) ?? '');
  if (start && end) request.occurrencePeriod = { start, end };
  else if (start) request.occurrenceDateTime = start;
  const reasons: CodeableConcept[] = [
    ...(obr ? obr.eachRepetition(31).map((r) => codeableConcept(obr, 31, r)) : []),
    ...g.dg1.map((d) => codeableConcept(d, 3)),
  ].filter((c): c is CodeableConcept => !!c);
  if (reasons.length) request.reasonCode = reasons;
  const specimen = g.spm.map((spm, n) => addSpecimen(ctx, spm, `${where} SPM ${n + 1}`, specimens)).filter((s): s is Reference<Specimen> => !!s);
  if (specimen.length) request.specimen = [...new Set(specimen)];
  if (g.notes.length) request.note = g.notes;
  if (g.obx) ctx.warn(`${where}: ${g.obx} OBX segment(s) with the order (answers to ask-at-order-entry questions, prior results) are not stored`);
  return request;
}

/** ORC-1 order control (table 0119); for a status change, ORC-5 order status (table 0038). */
function orderStatus(ctx: MappingContext, orc: V2Segment, where: string): ServiceRequest['status'] {
  const control = orc.value(1).toUpperCase();
  const byControl = ORDER_CONTROL_STATUS[control];
  const orderStatusCode = orc.value(5).toUpperCase();
  if (!byControl) {
    ctx.warn(`${where}: order control "${control}" (ORC-1) is not in HL7 table 0119: status unknown`);
    return 'unknown';
  }
  if (byControl !== 'from-order-status') return byControl;
  const status = ORDER_STATUS[orderStatusCode];
  if (!status) {
    if (orderStatusCode) ctx.warn(`${where}: order status "${orderStatusCode}" (ORC-5) is not in HL7 table 0038: status unknown`);
    else ctx.warn(`${where}: status change (ORC-1 ${control}) without an order status (ORC-5): status unknown`);
    return 'unknown';
  }
  return status;
}

/** SPM to Specimen, keyed by the specimen id (SPM-2, the filler's, else the placer's part). */
function addSpecimen(ctx: MappingContext, spm: V2Segment, where: string, seen: Map<string, Reference<Specimen>>): Reference<Specimen> | undefined {
  const id = spm.value(2, 2, 1) || spm.value(2, 1, 1);
  if (seen.has(id)) return seen.get(id); // one specimen shared by several orders of the message
  const type = codeableConcept(spm, 4);
  if (!id) {
    ctx.warn(`${where}: no specimen id (SPM-2): the specimen is left out`);
    return undefined;
  }
  const specimen: Specimen = {
    resourceType: 'Specimen',
    identifier: [{ system: ctx.system('specimen'), value: id }],
    subject: ctx.patient as Specimen['subject'],
    ...(type ? { type } : {}),
  };
  const collected = ctx.dateTime(spm.value(17, 1));
  if (collected) specimen.collection = { collectedDateTime: collected };
  const reference = ctx.tx.upsert(specimen, identifierQuery(ctx.system('specimen'), id));
  seen.set(id, reference);
  return reference;
}
