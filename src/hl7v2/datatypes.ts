import { offsetAt, type SenderTimeZone } from './sender-time-zone.js';
import { isRealTimestamp } from '../fhir/calendar.js';
import type { Address, CodeableConcept, Coding, ContactPoint, HumanName, Quantity } from '@medplum/fhirtypes';
import type { V2Segment } from './message-reader.js';
import { originalUnitExtension } from '../codes/original-unit.js';

/**
 * HL7 v2 data types to FHIR R4 data types, after the HL7 v2-to-FHIR mapping guide's datatype maps
 * (XPN -> HumanName, CX -> Identifier, XAD -> Address, XTN -> ContactPoint, CWE/CE -> CodeableConcept,
 * DTM/TS -> dateTime). Each returns undefined for an empty value rather than an empty FHIR element.
 */

/** Coding systems named in CWE/CE-3 (HL7 table 0396) and their FHIR URIs. */
const CODING_SYSTEMS: Record<string, string> = {
  LN: 'http://loinc.org',
  LOINC: 'http://loinc.org',
  SCT: 'http://snomed.info/sct',
  SNM: 'http://snomed.info/sct',
  SNOMED: 'http://snomed.info/sct',
  I10: 'http://hl7.org/fhir/sid/icd-10',
  'I10C': 'http://hl7.org/fhir/sid/icd-10-cm',
  I10P: 'http://www.cms.gov/Medicare/Coding/ICD10',
  I9: 'http://hl7.org/fhir/sid/icd-9-cm',
  I9C: 'http://hl7.org/fhir/sid/icd-9-cm',
  CVX: 'http://hl7.org/fhir/sid/cvx',
  MVX: 'http://hl7.org/fhir/sid/mvx',
  NDC: 'http://hl7.org/fhir/sid/ndc',
  RXNORM: 'http://www.nlm.nih.gov/research/umls/rxnorm',
  RXN: 'http://www.nlm.nih.gov/research/umls/rxnorm',
  CPT: 'http://www.ama-assn.org/go/cpt',
  C4: 'http://www.ama-assn.org/go/cpt',
  UCUM: 'http://unitsofmeasure.org',
  ISO3166_1: 'urn:iso:std:iso:3166',
  CDCREC: 'urn:oid:2.16.840.1.113883.6.238',
  NCIT: 'http://ncithesaurus-stage.nci.nih.gov',
};

export function codingSystem(name: string): string | undefined {
  if (!name) {
    return undefined;
  }
  const upper = name.toUpperCase();
  const table = /^HL7(\d{4})$/.exec(upper) ?? /^HL7(\d{3})$/.exec(upper);
  if (table) {
    return `http://terminology.hl7.org/CodeSystem/v2-${table[1].padStart(4, '0')}`;
  }
  if (/^\d+(\.\d+)+$/.test(name)) {
    return `urn:oid:${name}`;
  }
  return CODING_SYSTEMS[upper] ?? `urn:tessera:hl7v2:coding-system:${encodeURIComponent(name)}`;
}

/** CWE/CE: identifier^text^system, then the alternate triplet in components 4-6; original text in 9. */
export function codeableConcept(s: V2Segment, field: number, repetition = 0): CodeableConcept | undefined {
  const coding: Coding[] = [];
  for (const offset of [0, 3]) {
    const code = s.value(field, 1 + offset, 1, repetition);
    const display = s.value(field, 2 + offset, 1, repetition);
    if (code) {
      coding.push({ system: codingSystem(s.value(field, 3 + offset, 1, repetition)), code: code.replace(/\s+/g, ' '), ...(display ? { display } : {}) });
    }
  }
  const text = s.value(field, 9, 1, repetition) || s.value(field, 2, 1, repetition);
  if (!coding.length && !text) {
    return undefined;
  }
  return { ...(coding.length ? { coding } : {}), ...(text ? { text } : {}) };
}

/** XPN: family (its surname subcomponent) ^ given ^ middle ^ suffix ^ prefix ^ degree ^ name type code. */
export function humanName(s: V2Segment, field: number, repetition = 0): HumanName | undefined {
  const family = s.value(field, 1, 1, repetition);
  const given = [s.value(field, 2, 1, repetition), ...s.value(field, 3, 1, repetition).split(/\s+/)].filter(Boolean);
  if (!family && !given.length) {
    return undefined;
  }
  const suffix = [s.value(field, 4, 1, repetition), s.value(field, 6, 1, repetition)].filter(Boolean);
  const prefix = s.value(field, 5, 1, repetition);
  const use = NAME_USE[s.value(field, 7, 1, repetition)];
  return {
    ...(use ? { use } : {}),
    ...(family ? { family } : {}),
    ...(given.length ? { given } : {}),
    ...(prefix ? { prefix: [prefix] } : {}),
    ...(suffix.length ? { suffix } : {}),
  };
}

/** HL7 table 0200 name types to HumanName.use. */
const NAME_USE: Record<string, HumanName['use']> = { L: 'official', D: 'usual', M: 'maiden', N: 'nickname', A: 'anonymous', B: 'old', BAD: 'old', TEMP: 'temp', S: 'anonymous', P: 'usual' };

/** XAD: street (SAD) ^ other designation ^ city ^ state ^ zip ^ country ^ address type. */
export function address(s: V2Segment, field: number, repetition = 0): Address | undefined {
  const line = [s.value(field, 1, 1, repetition), s.value(field, 2, 1, repetition)].filter(Boolean);
  const city = s.value(field, 3, 1, repetition);
  const state = s.value(field, 4, 1, repetition);
  const postalCode = s.value(field, 5, 1, repetition);
  const country = s.value(field, 6, 1, repetition);
  if (!line.length && !city && !state && !postalCode && !country) {
    return undefined;
  }
  const type = s.value(field, 7, 1, repetition);
  const use = ADDRESS_USE[type];
  return {
    ...(use ? { use } : {}),
    ...(type === 'M' ? { type: 'postal' as const } : {}),
    ...(line.length ? { line } : {}),
    ...(city ? { city } : {}),
    ...(state ? { state } : {}),
    ...(postalCode ? { postalCode } : {}),
    ...(country ? { country } : {}),
  };
}

/** HL7 table 0190 address types to Address.use. */
const ADDRESS_USE: Record<string, Address['use']> = { H: 'home', B: 'work', O: 'work', C: 'temp', BA: 'old', BDL: 'old', BR: 'billing', M: 'home', P: 'home' };

/**
 * XTN: the old free-text number in component 1, or the structured one (country ^ area ^ local ^
 * extension in 5-8) and the e-mail address in 4; use code (table 0201) in 2, equipment (0202) in 3.
 */
export function contactPoint(s: V2Segment, field: number, repetition = 0, defaultUse?: ContactPoint['use']): ContactPoint | undefined {
  const equipment = s.value(field, 3, 1, repetition);
  const email = s.value(field, 4, 1, repetition);
  const structured = [s.value(field, 6, 1, repetition), s.value(field, 7, 1, repetition)].filter(Boolean).join('');
  const extension = s.value(field, 8, 1, repetition);
  const number = s.value(field, 1, 1, repetition) || (structured ? `${structured}${extension ? ` x${extension}` : ''}` : '');
  const value = equipment === 'Internet' || equipment === 'X.400' ? email || number : number || email;
  if (!value) {
    return undefined;
  }
  const system: ContactPoint['system'] = equipment === 'Internet' || equipment === 'X.400' ? 'email' : equipment === 'FX' ? 'fax' : equipment === 'BP' ? 'pager' : 'phone';
  const useCode = s.value(field, 2, 1, repetition);
  const use = useCode === 'PRN' || useCode === 'ORN' || useCode === 'VHN' ? 'home' : useCode === 'WPN' ? 'work' : equipment === 'CP' ? 'mobile' : defaultUse;
  return { system, value, ...(use ? { use } : {}) };
}

/** CX: id ^ check digit ^ check scheme ^ assigning authority (HD) ^ identifier type code. */
export interface V2Identifier {
  value: string;
  /** Assigning authority: its namespace id, else its universal id. */
  authority: string;
  /** The authority's universal id (an OID, a URI) when given. */
  authorityUniversalId: string;
  typeCode: string;
}

export function cx(s: V2Segment, field: number, repetition = 0): V2Identifier | undefined {
  const value = s.value(field, 1, 1, repetition);
  if (!value) {
    return undefined;
  }
  return {
    value,
    authority: s.value(field, 4, 1, repetition) || s.value(field, 4, 2, repetition),
    authorityUniversalId: s.value(field, 4, 2, repetition),
    typeCode: s.value(field, 5, 1, repetition),
  };
}

export function identifierType(code: string): CodeableConcept | undefined {
  return code ? { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code }] } : undefined;
}

/**
 * DTM/TS (YYYY[MM[DD[HH[MM[SS[.S+]]]]]][+/-ZZZZ]) to a FHIR dateTime at the precision given. Undefined
 * when the text is no date, or no real one (a 31st of February): the mapping reports it, not the store.
 * A time without an offset is in the sender's time zone (sender-time-zone.ts); without one known it is
 * taken as UTC and `onAssumedUtc` is told (the mapping warns: never silently).
 */
export function dateTime(text: string, sender?: SenderTimeZone, onAssumedUtc?: () => void): string | undefined {
  const m = /^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\.\d{1,4})?([+-]\d{4})?$/.exec(text.trim());
  if (!m) {
    return undefined;
  }
  const [, y, mo, d, h, mi, sec, frac, tz] = m;
  if (!isRealTimestamp(y, mo, d, h, mi, sec)) {
    return undefined;
  }
  if (!mo) return y;
  if (!d) return `${y}-${mo}`;
  if (!h) return `${y}-${mo}-${d}`;
  // FHIR needs seconds and a zone once there is a time.
  let zone = tz ? `${tz.slice(0, 3)}:${tz.slice(3)}` : sender?.messageOffset;
  if (!zone && sender?.zone) zone = offsetAt(sender.zone, Number(y), Number(mo), Number(d), Number(h), Number(mi ?? 0), Number(sec ?? 0));
  if (!zone) {
    onAssumedUtc?.();
    zone = 'Z';
  }
  return `${y}-${mo}-${d}T${h}:${mi ?? '00'}:${sec ?? '00'}${frac ?? ''}${zone}`;
}

/** The date part of a DTM/TS, for FHIR `date` elements (birthDate). */
export function date(text: string): string | undefined {
  const dt = dateTime(text);
  return dt?.slice(0, 10);
}

/**
 * Units as senders write them and their UCUM codes. A unit in a UCUM-coded CWE (system UCUM) is taken as
 * UCUM; other units are looked up here, and one not found stays text only (Quantity.unit), never a
 * UCUM code it may not be.
 */
const UCUM_BY_UNIT: Record<string, string> = {
  'mg/dl': 'mg/dL', 'g/dl': 'g/dL', 'mmol/l': 'mmol/L', 'umol/l': 'umol/L', 'meq/l': 'meq/L', 'mg/l': 'mg/L', 'ng/ml': 'ng/mL', 'pg/ml': 'pg/mL',
  'u/l': 'U/L', 'iu/l': '[IU]/L', 'miu/l': 'm[IU]/L', 'uiu/ml': 'u[IU]/mL', '%': '%', 'fl': 'fL', 'pg': 'pg', 'g/l': 'g/L', 'ml': 'mL', 'l': 'L',
  '10*3/ul': '10*3/uL', 'k/ul': '10*3/uL', 'x10e3/ul': '10*3/uL', '10*6/ul': '10*6/uL', 'm/ul': '10*6/uL', 'x10e6/ul': '10*6/uL', '10*9/l': '10*9/L', '10*12/l': '10*12/L',
  '/min': '/min', 'bpm': '/min', 'beats/min': '/min', '{beats}/min': '{beats}/min', 'breaths/min': '/min', '/h': '/h',
  'mm[hg]': 'mm[Hg]', 'mmhg': 'mm[Hg]', 'kg': 'kg', 'g': 'g', 'lb': '[lb_av]', 'lbs': '[lb_av]', '[lb_av]': '[lb_av]', 'oz': '[oz_av]',
  'cm': 'cm', 'm': 'm', 'mm': 'mm', 'in': '[in_i]', '[in_i]': '[in_i]', 'kg/m2': 'kg/m2', 'kg/m^2': 'kg/m2',
  'cel': 'Cel', 'degc': 'Cel', 'c': 'Cel', '[degf]': '[degF]', 'degf': '[degF]', 'f': '[degF]', 's': 's', 'min': 'min', 'h': 'h', 'd': 'd', 'wk': 'wk', 'mo': 'mo', 'a': 'a',
  'ml/min': 'mL/min', 'ml/min/1.73m2': 'mL/min/{1.73_m2}', 'ml/min/{1.73_m2}': 'mL/min/{1.73_m2}', 'ratio': '{ratio}', '{ratio}': '{ratio}',
};

/**
 * A quantity with its unit from a CWE unit field (code in component 1, text in 2, system in 3, an
 * alternate in 4-6). UCUM when the unit is UCUM-coded (either triplet) or our table knows it; a unit the
 * sender coded in its own system keeps that coding: as `system`/`code` when no UCUM is known (a
 * participant's code map may add it later, src/codes), else in the original-unit extension.
 */
export function quantity(value: number, s: V2Segment, unitField: number): Quantity {
  const code = s.value(unitField, 1);
  const text = s.value(unitField, 2) || code;
  const system = s.value(unitField, 3);
  const alternateUcum = /^UCUM$/i.test(s.value(unitField, 6)) ? s.value(unitField, 4) : '';
  const ucum = /^UCUM$/i.test(system) ? code : alternateUcum || (UCUM_BY_UNIT[code.toLowerCase()] ?? UCUM_BY_UNIT[text.toLowerCase()]);
  const senders = code && system && !/^UCUM$/i.test(system) ? { system: codingSystem(system) as string, code } : undefined;
  if (ucum) return { value, unit: text, system: 'http://unitsofmeasure.org', code: ucum, ...(senders ? { extension: [originalUnitExtension(senders)] } : {}) };
  return { value, ...(text ? { unit: text } : {}), ...senders };
}
