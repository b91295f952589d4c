import type { Observation, Quantity } from '@medplum/fhirtypes';
import { address, codeableConcept, contactPoint, cx, humanName, quantity } from './datatypes.js';
import { practitionerName } from './encounter-mapper.js';
import type { MappingContext } from './mapping-context.js';
import type { V2Segment } from './message-reader.js';

/**
 * OBX-5 by its value type (OBX-2) to Observation.value[x]. Every type HL7 lists for OBX-2 is either
 * stored (as the FHIR value that fits, else as text) or named in a warning: none is dropped silently.
 */
export function setObservationValue(ctx: MappingContext, observation: Observation, obx: V2Segment, where: string): void {
  const type = obx.value(2).toUpperCase();
  const repetitions = obx.eachRepetition(5);
  if (!repetitions.length) return;
  const textTypes = new Set(['ST', 'TX', 'FT']);
  if (repetitions.length > 1 && !textTypes.has(type)) {
    ctx.warn(`${where}: OBX-5 repeats (${repetitions.length} values of type ${type || '(none)'}): the first is stored, the others are only in the message log`);
  }
  const first = obx.value(5);
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
    case 'SN':
      return structuredNumeric(observation, obx);
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
      const dt = ctx.dateTime(first);
      if (dt) observation.valueDateTime = dt;
      else {
        observation.valueString = first;
        ctx.warn(`${where}: ${type} value "${first}" is not a valid date: kept as text`);
      }
      return;
    }
    case 'TM': {
      const m = /^(\d{2})(\d{2})?(\d{2})?(\.\d+)?/.exec(first);
      if (m && Number(m[1]) < 24 && Number(m[2] ?? 0) < 60 && Number(m[3] ?? 0) < 60) observation.valueTime = `${m[1]}:${m[2] ?? '00'}:${m[3] ?? '00'}`;
      else {
        observation.valueString = first;
        ctx.warn(`${where}: TM value "${first}" is not a time: kept as text`);
      }
      return;
    }
    case 'ST':
    case 'TX':
    case 'FT':
      observation.valueString = repetitions.map((r) => obx.text(5, 1, r)).join('\n');
      return;
    case 'NA':
      // A numeric array: its components are the values, in order.
      observation.valueString = componentTexts(obx).join(' ');
      return;
    case 'CX': {
      const id = cx(obx, 5);
      if (id) observation.valueString = id.authority ? `${id.value} (${id.authority})` : id.value;
      return;
    }
    case 'XPN': {
      const name = humanName(obx, 5);
      if (name) observation.valueString = [...(name.prefix ?? []), ...(name.given ?? []), name.family, ...(name.suffix ?? [])].filter(Boolean).join(' ');
      return;
    }
    case 'XCN': {
      const name = practitionerName(obx, 5);
      if (name) observation.valueString = name;
      return;
    }
    case 'XAD': {
      const a = address(obx, 5);
      if (a) observation.valueString = [...(a.line ?? []), a.city, a.state, a.postalCode, a.country].filter(Boolean).join(', ');
      return;
    }
    case 'XTN': {
      const contact = contactPoint(obx, 5);
      if (contact) observation.valueString = contact.value;
      else ctx.warn(`${where}: XTN value has no number or address: left out`);
      return;
    }
    case 'RP': {
      // Reference pointer: pointer ^ application id ^ type of data ^ subtype. The pointer is what a reader follows.
      const pointer = obx.value(5, 1);
      if (pointer) observation.valueString = pointer;
      ctx.warn(`${where}: RP reference pointer stored as text (${obx.value(5, 3) || 'type not given'}): the data it points to is not fetched`);
      return;
    }
    case 'ED':
      // An embedded document (base64 PDF, image...): Observation has no attachment value; it stays in the message log.
      ctx.warn(`${where}: ED embedded data (${obx.value(5, 2) || 'type not given'}/${obx.value(5, 3) || ''}) is not stored as a FHIR value: it is kept in the message log`);
      return;
    default:
      observation.valueString = obx.text(5);
      ctx.warn(`${where}: value type ${type || '(none)'} is not one Tessera maps: stored as text`);
  }
}

function componentTexts(obx: V2Segment): string[] {
  const out: string[] = [];
  for (let c = 1; c <= 64; c++) {
    const v = obx.value(5, c);
    if (v) out.push(v);
    else if (!obx.segment.fields[5]?.components[0]?.slice(c).some((x) => x !== '')) break;
  }
  return out;
}

/** SN: comparator ^ number ^ separator/suffix ^ number: a quantity, a range (1-5), a ratio (1:128) or text. */
function structuredNumeric(observation: Observation, obx: V2Segment): void {
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
}
