import type { Annotation, DiagnosticReport, Encounter, Observation, ObservationReferenceRange, Reference, ServiceRequest } from '@medplum/fhirtypes';
import { identifierQuery } from '../bundle/transaction-builder.js';
import { codeableConcept, quantity } from './datatypes.js';
import { MappingError, type MappingContext } from './mapping-context.js';
import type { V2Segment } from './message-reader.js';
import { setObservationValue } from './observation-value.js';
import { orderIdentifiers, orderKey, orderNumbers, serviceRequestQuery, type OrderNumbers } from './order-identity.js';
import { OBSERVATION_STATUS, orderStatusAfterReport, REPORT_STATUS } from './status-tables.js';

/** OBX-8 abnormal flags (table 0078) that are codes of the FHIR interpretation code system as they stand. */
const INTERPRETATIONS = new Set(['L', 'H', 'LL', 'HH', '<', '>', 'N', 'A', 'AA', 'U', 'D', 'B', 'W', 'S', 'R', 'I', 'MS', 'VS', 'NEG', 'POS', 'IND', 'DET', 'ND', 'E', 'EX', 'HX', 'LX', 'NR', 'RR', 'SDD', 'SYN-R', 'SYN-S', 'CAR', 'HU', 'LU']);

/** One OBR with what belongs to it: the ORC before it, its OBX and NTE segments. */
interface ResultGroup {
  orc?: V2Segment;
  obr: V2Segment;
  index: number;
  observations: { obx: V2Segment; notes: Annotation[] }[];
  notes: Annotation[];
}

/**
 * ORU^R01 (and other messages carrying OBR/OBX groups) to DiagnosticReport with its Observations.
 * Identity (docs/interfaces.md, decision 0018): a report is its order (filler number, else placer) plus its
 * panel (OBR-4), plus OBR-1 when a message repeats both; a result is its report plus OBX-3 and OBX-4. So a
 * newborn-screening report (one order, many panels) stores each panel once, and a correction or a final
 * after a preliminary updates the records it names. Each report is linked (basedOn) to its order's
 * ServiceRequest, created from the OBR when the exchange has not seen the order.
 */
export function addResults(ctx: MappingContext, encounter?: Reference<Encounter>): number {
  refuseTruncated(ctx);
  const groups = resultGroups(ctx);
  const reportKeys = keysOf(groups.map((g) => {
    const numbers = orderNumbers(ctx, g.orc, g.obr);
    const base = `${orderKey(numbers) ?? `${ctx.message.controlId}-${g.index}`}/${panelOf(g.obr)}`;
    return { base, repeat: g.obr.value(1) || String(g.index) };
  }));
  let mapped = 0;
  for (const [i, group] of groups.entries()) {
    const numbers = orderNumbers(ctx, group.orc, group.obr);
    const reportKey = reportKeys[i];
    const observationKeys = keysOf(group.observations.map(({ obx }, n) => ({ base: `${reportKey}/${codeOf(obx, 3)}/${obx.value(4)}`, repeat: obx.value(1) || String(n + 1) })));
    const results: Reference<Observation>[] = [];
    for (const [n, { obx, notes }] of group.observations.entries()) {
      const observation = mapObservation(ctx, obx, group.obr, observationKeys[n], encounter);
      if (!observation) continue;
      if (notes.length) observation.note = notes;
      results.push(ctx.tx.upsert(observation, identifierQuery(ctx.system('result'), observationKeys[n])));
      mapped++;
    }
    if (addReport(ctx, group, reportKey, numbers, results, encounter)) mapped++;
  }
  return mapped;
}

function resultGroups(ctx: MappingContext): ResultGroup[] {
  const groups: ResultGroup[] = [];
  let orc: V2Segment | undefined;
  let group: ResultGroup | undefined;
  for (const segment of ctx.message.segments()) {
    if (segment.name === 'ORC') {
      orc = segment;
    } else if (segment.name === 'OBR') {
      group = { orc, obr: segment, index: groups.length + 1, observations: [], notes: [] };
      groups.push(group);
    } else if (segment.name === 'OBX' && group) {
      group.observations.push({ obx: segment, notes: [] });
    } else if (segment.name === 'NTE' && group) {
      const text = segment.text(3);
      if (text) (group.observations.at(-1)?.notes ?? group.notes).push({ text });
    }
  }
  return groups;
}

/** Keys made unique within the message: a base that repeats gets its set id (OBR-1, OBX-1) appended. */
function keysOf(items: { base: string; repeat: string }[]): string[] {
  const counts = new Map<string, number>();
  for (const { base } of items) counts.set(base, (counts.get(base) ?? 0) + 1);
  const seen = new Set<string>();
  return items.map(({ base, repeat }, i) => {
    if ((counts.get(base) ?? 0) < 2) return base;
    let key = `${base}/${repeat}`;
    if (seen.has(key)) key = `${base}/#${i + 1}`; // the set ids repeat too
    seen.add(key);
    return key;
  });
}

/** The code of a CWE field (its identifier, else the alternate, else the text): the stable part of a panel or test. */
function codeOf(s: V2Segment, field: number): string {
  return s.value(field, 1) || s.value(field, 4) || s.value(field, 2);
}

function panelOf(obr: V2Segment): string {
  return codeOf(obr, 4) || 'no-panel';
}

/**
 * A frame cut inside its last segment (a sender's buffer flushed early) still parses. Its tell: the last
 * segment is an OBX without OBX-11, the result status every OBX must carry. Storing it would overwrite a
 * result with part of a value (59 becomes 5), so the whole message is refused and nothing is stored.
 */
function refuseTruncated(ctx: MappingContext): void {
  const last = ctx.message.segments().at(-1);
  if (last?.name === 'OBX' && !last.value(11)) {
    throw new MappingError(
      `the message looks truncated: its last segment (OBX ${last.value(1) || '?'}) ends before OBX-11, the result status every OBX carries; nothing was stored, send the whole message again`,
      `OBX^${last.value(1) || '1'}^11`,
      '101',
    );
  }
}

function addReport(ctx: MappingContext, group: ResultGroup, key: string, numbers: OrderNumbers, results: Reference<Observation>[], encounter?: Reference<Encounter>): boolean {
  const { obr, notes } = group;
  const code = codeableConcept(obr, 4);
  if (!code) {
    ctx.warn(`OBR ${obr.value(1) || group.index}: no universal service identifier (OBR-4): the report is left out, its results kept`);
    return false;
  }
  const statusCode = obr.value(25).toUpperCase();
  const status = REPORT_STATUS[statusCode] ?? 'final';
  if (statusCode && !REPORT_STATUS[statusCode]) ctx.warn(`OBR ${obr.value(1) || group.index}: OBR-25 result status "${statusCode}" is not in HL7 table 0123: taken as final`);
  const basedOn = addOrder(ctx, group, numbers, code, status);
  const report: DiagnosticReport = {
    resourceType: 'DiagnosticReport',
    identifier: [{ system: ctx.system('report'), value: key }],
    ...(basedOn ? { basedOn: [basedOn] } : {}),
    status,
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: obr.value(24) || 'LAB' }] }],
    code,
    subject: ctx.patient,
    performer: [ctx.organization],
    ...(encounter ? { encounter } : {}),
    ...(results.length ? { result: results } : {}),
  };
  const effective = ctx.dateTime(obr.value(7));
  if (effective) report.effectiveDateTime = effective;
  const issued = ctx.dateTime(obr.value(22));
  if (issued && issued.length > 10) report.issued = issued;
  if (notes.length) report.conclusion = notes.map((n) => n.text).join('\n');
  ctx.tx.upsert(report, identifierQuery(ctx.system('report'), key));
  return true;
}

/**
 * The order a report answers: the ServiceRequest an order message stored (found by its placer number,
 * else its filler number), or one made from the OBR when the exchange never saw the order. Its status
 * follows the report (a final report completes it): the intake moves an existing one after the write.
 */
function addOrder(ctx: MappingContext, group: ResultGroup, numbers: OrderNumbers, code: ServiceRequest['code'], reportStatus: DiagnosticReport['status']): Reference<ServiceRequest> | undefined {
  const query = serviceRequestQuery(numbers);
  if (!query) return undefined;
  const status = orderStatusAfterReport(reportStatus);
  const known = ctx.orders.get(query);
  if (known) {
    // One order, several panels (a newborn screen): one ServiceRequest, complete only when every panel is.
    if (status !== known.status) known.status = known.created.status = status === 'active' || known.status === 'active' ? 'active' : status;
    return known.reference;
  }
  const request: ServiceRequest = {
    resourceType: 'ServiceRequest',
    identifier: orderIdentifiers(numbers),
    status,
    intent: 'order',
    code,
    subject: ctx.patient as ServiceRequest['subject'],
  };
  const authored = ctx.dateTime(group.orc?.value(9) ?? '') ?? ctx.dateTime(group.obr.value(6));
  if (authored) request.authoredOn = authored;
  const reference = ctx.tx.createIfMissing(request, query);
  ctx.orders.set(query, { reference, status, identifiers: request.identifier ?? [], created: request });
  return reference;
}

function mapObservation(ctx: MappingContext, obx: V2Segment, obr: V2Segment, key: string, encounter?: Reference<Encounter>): Observation | undefined {
  const where = `OBX ${obx.value(1) || '?'}`;
  const code = codeableConcept(obx, 3);
  if (!code) {
    ctx.warn(`${where}: no observation identifier (OBX-3): left out`);
    return undefined;
  }
  const statusCode = obx.value(11).toUpperCase();
  const observation: Observation = {
    resourceType: 'Observation',
    identifier: [{ system: ctx.system('result'), value: key }],
    status: OBSERVATION_STATUS[statusCode] ?? 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
    code,
    subject: ctx.patient,
    performer: [ctx.organization],
    ...(encounter ? { encounter } : {}),
  };
  if (!statusCode) ctx.warn(`${where}: no result status (OBX-11): taken as final`);
  else if (!OBSERVATION_STATUS[statusCode]) ctx.warn(`${where}: result status "${statusCode}" is not in HL7 table 0085: taken as final`);
  const effective = ctx.dateTime(obx.value(14)) ?? ctx.dateTime(obr.value(7));
  if (effective) observation.effectiveDateTime = effective;
  setObservationValue(ctx, observation, obx, where);
  if (statusCode === 'N' && !hasValue(observation)) {
    observation.dataAbsentReason = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/data-absent-reason', code: 'not-asked' }] };
  }
  const range = referenceRange(obx.value(7), obx, 6);
  if (range) observation.referenceRange = [range];
  const flags = obx.eachRepetition(8).map((r) => obx.value(8, 1, 1, r).toUpperCase()).filter(Boolean);
  if (flags.length) {
    const known = flags.filter((f) => INTERPRETATIONS.has(f));
    if (known.length) {
      observation.interpretation = [{ coding: known.map((f) => ({ system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation', code: f })) }];
    }
    if (known.length < flags.length) ctx.warn(`${where}: abnormal flags ${flags.filter((f) => !INTERPRETATIONS.has(f)).join(', ')} not in HL7 table 0078: left out`);
  }
  return observation;
}

function hasValue(o: Observation): boolean {
  return Object.keys(o).some((k) => k.startsWith('value'));
}

/** OBX-7 reference range text: "70-80", "<5", ">10", "3.5 - 5.0". */
function referenceRange(text: string, obx: V2Segment, unitField: number): ObservationReferenceRange | undefined {
  if (!text) return undefined;
  const range = /^\s*(-?\d+(?:\.\d+)?)\s*-\s*(-?\d+(?:\.\d+)?)\s*$/.exec(text);
  if (range) return { low: quantity(Number(range[1]), obx, unitField), high: quantity(Number(range[2]), obx, unitField), text };
  const upper = /^\s*<=?\s*(-?\d+(?:\.\d+)?)\s*$/.exec(text);
  if (upper) return { high: quantity(Number(upper[1]), obx, unitField), text };
  const lower = /^\s*>=?\s*(-?\d+(?:\.\d+)?)\s*$/.exec(text);
  if (lower) return { low: quantity(Number(lower[1]), obx, unitField), text };
  return { text };
}
