import type { Annotation, DiagnosticReport, Encounter, Observation, ObservationReferenceRange, Quantity, Reference } from '@medplum/fhirtypes';
import { identifierQuery } from '../bundle/transaction-builder.js';
import { codeableConcept, dateTime, quantity } from './datatypes.js';
import type { MappingContext } from './mapping-context.js';
import type { V2Segment } from './message-reader.js';

/** OBR-25 result status (table 0123) to DiagnosticReport.status. */
const REPORT_STATUS: Record<string, DiagnosticReport['status']> = {
  O: 'registered', I: 'registered', S: 'registered', A: 'partial', P: 'preliminary', R: 'preliminary', N: 'partial',
  F: 'final', C: 'corrected', M: 'amended', X: 'cancelled', Y: 'final', Z: 'final',
};
/** OBX-11 observation result status (table 0085) to Observation.status. */
const OBSERVATION_STATUS: Record<string, Observation['status']> = {
  F: 'final', C: 'corrected', P: 'preliminary', R: 'preliminary', S: 'preliminary', I: 'registered', X: 'cancelled', D: 'entered-in-error', W: 'entered-in-error', U: 'final', A: 'amended',
};
/** OBX-8 abnormal flags (table 0078) that are codes of the FHIR interpretation code system as they stand. */
const INTERPRETATIONS = new Set(['L', 'H', 'LL', 'HH', '<', '>', 'N', 'A', 'AA', 'U', 'D', 'B', 'W', 'S', 'R', 'I', 'MS', 'VS', 'NEG', 'POS', 'IND', 'DET', 'ND', 'E', 'EX', 'HX', 'LX', 'NR', 'RR', 'SDD', 'SYN-R', 'SYN-S', 'CAR', 'HU', 'LU']);

/**
 * ORU^R01 (and other messages carrying OBR/OBX groups) to DiagnosticReport with its Observations. The
 * filler order number (OBR-3, else the placer's OBR-2) keys the report and each result (with its OBX-1
 * set id and OBX-4 sub-id), so that a corrected result (OBX-11 = C) replaces the preliminary one.
 */
export function addResults(ctx: MappingContext, encounter?: Reference<Encounter>): number {
  let mapped = 0;
  let report: { segment: V2Segment; observations: Reference<Observation>[]; key: string; notes: Annotation[] } | undefined;
  let lastObservation: Observation | undefined;
  const finish = () => {
    if (report) {
      addReport(ctx, report.segment, report.key, report.observations, report.notes, encounter);
      mapped++;
    }
  };
  let index = 0;
  for (const segment of ctx.message.segments()) {
    if (segment.name === 'OBR') {
      finish();
      index++;
      const key = segment.value(3) || segment.value(2) || `${ctx.message.controlId}-${index}`;
      report = { segment, observations: [], key, notes: [] };
      lastObservation = undefined;
    } else if (segment.name === 'OBX' && report) {
      lastObservation = mapObservation(ctx, segment, report.segment, report.key, encounter);
      if (lastObservation) {
        report.observations.push(ctx.tx.upsert(lastObservation, identifierQuery(ctx.system('result'), lastObservation.identifier?.[0]?.value as string)));
        mapped++;
      }
    } else if (segment.name === 'NTE' && report) {
      const text = segment.text(3);
      if (text) {
        (lastObservation ? (lastObservation.note ??= []) : report.notes).push({ text });
      }
    }
  }
  finish();
  return mapped;
}

function addReport(ctx: MappingContext, obr: V2Segment, key: string, results: Reference<Observation>[], notes: Annotation[], encounter?: Reference<Encounter>): void {
  const code = codeableConcept(obr, 4);
  if (!code) {
    ctx.warn(`OBR ${obr.value(1) || ''}: no universal service identifier (OBR-4): the report is left out, its results kept`);
    return;
  }
  const statusCode = obr.value(25).toUpperCase();
  const report: DiagnosticReport = {
    resourceType: 'DiagnosticReport',
    identifier: [{ system: ctx.system('report'), value: key }],
    status: REPORT_STATUS[statusCode] ?? 'final',
    category: [obr.value(24) ? { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: obr.value(24) }] } : { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: 'LAB' }] }],
    code,
    subject: ctx.patient,
    performer: [ctx.organization],
    ...(encounter ? { encounter } : {}),
    ...(results.length ? { result: results } : {}),
  };
  if (statusCode && !REPORT_STATUS[statusCode]) ctx.warn(`OBR-25 result status "${statusCode}" is not in HL7 table 0123: taken as final`);
  const effective = dateTime(obr.value(7));
  if (effective) report.effectiveDateTime = effective;
  const issued = dateTime(obr.value(22));
  if (issued && issued.length > 10) report.issued = issued;
  if (notes.length) report.conclusion = notes.map((n) => n.text).join('\n');
  ctx.tx.upsert(report, identifierQuery(ctx.system('report'), key));
}

function mapObservation(ctx: MappingContext, obx: V2Segment, obr: V2Segment, reportKey: string, encounter?: Reference<Encounter>): Observation | undefined {
  const where = `OBX ${obx.value(1) || '?'}`;
  const code = codeableConcept(obx, 3);
  if (!code) {
    ctx.warn(`${where}: no observation identifier (OBX-3): left out`);
    return undefined;
  }
  const statusCode = obx.value(11).toUpperCase();
  const observation: Observation = {
    resourceType: 'Observation',
    identifier: [{ system: ctx.system('result'), value: `${reportKey}/${obx.value(1) || code.coding?.[0]?.code || ''}/${obx.value(4)}` }],
    status: OBSERVATION_STATUS[statusCode] ?? 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
    code,
    subject: ctx.patient,
    performer: [ctx.organization],
    ...(encounter ? { encounter } : {}),
  };
  if (statusCode && !OBSERVATION_STATUS[statusCode]) ctx.warn(`${where}: result status "${statusCode}" is not in HL7 table 0085: taken as final`);
  const effective = dateTime(obx.value(14)) ?? dateTime(obr.value(7));
  if (effective) observation.effectiveDateTime = effective;
  setValue(ctx, observation, obx, where);
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

/** OBX-5 by its value type (OBX-2). */
function setValue(ctx: MappingContext, observation: Observation, obx: V2Segment, where: string): void {
  const type = obx.value(2).toUpperCase();
  const first = obx.value(5);
  if (!first && !obx.text(5)) {
    return;
  }
  switch (type) {
    case 'NM': {
      const n = Number(first);
      if (first !== '' && Number.isFinite(n)) observation.valueQuantity = quantity(n, obx, 6);
      else {
        observation.valueString = obx.text(5);
        ctx.warn(`${where}: numeric value "${first}" is not a number: kept as text`);
      }
      return;
    }
    case 'SN': {
      const [comparator, n1, separator, n2] = [obx.value(5, 1), obx.value(5, 2), obx.value(5, 3), obx.value(5, 4)];
      const a = Number(n1);
      const b = Number(n2);
      if (separator === '-' && Number.isFinite(a) && Number.isFinite(b) && n2 !== '') {
        observation.valueRange = { low: quantity(a, obx, 6), high: quantity(b, obx, 6) };
      } else if ((separator === ':' || separator === '/') && Number.isFinite(a) && Number.isFinite(b) && n2 !== '') {
        observation.valueRatio = { numerator: { value: a }, denominator: { value: b } };
      } else if (n1 !== '' && Number.isFinite(a)) {
        const q: Quantity = quantity(a, obx, 6);
        if (comparator === '<' || comparator === '>' || comparator === '<=' || comparator === '>=') q.comparator = comparator;
        observation.valueQuantity = q;
      } else {
        observation.valueString = obx.text(5);
      }
      return;
    }
    case 'CE':
    case 'CWE':
    case 'CNE':
    case 'CF': {
      const concept = codeableConcept(obx, 5);
      if (concept) observation.valueCodeableConcept = concept;
      return;
    }
    case 'DT':
    case 'TS':
    case 'DTM': {
      const dt = dateTime(first);
      if (dt) observation.valueDateTime = dt;
      else observation.valueString = first;
      return;
    }
    case 'ST':
    case 'TX':
    case 'FT':
      observation.valueString = obx.eachRepetition(5).map((r) => obx.text(5, 1, r)).join('\n');
      return;
    default:
      // ED (embedded document), RP (reference pointer), ...: kept in the message log, not as a value.
      ctx.warn(`${where}: value type ${type || '(none)'} is not mapped to a FHIR value`);
  }
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
