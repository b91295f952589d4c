import type { Address, CodeableConcept, Coding, ContactPoint, HumanName, Identifier, Period, Quantity } from '@medplum/fhirtypes';
import { isRealTimestamp } from '../fhir/calendar.js';
import type { XmlElement } from './xml-element.js';

/** Code systems C-CDA names by OID that FHIR names by URI (others stay `urn:oid:`). */
const CODE_SYSTEMS: Record<string, string> = {
  '2.16.840.1.113883.6.1': 'http://loinc.org',
  '2.16.840.1.113883.6.96': 'http://snomed.info/sct',
  '2.16.840.1.113883.6.88': 'http://www.nlm.nih.gov/research/umls/rxnorm',
  '2.16.840.1.113883.12.292': 'http://hl7.org/fhir/sid/cvx',
  '2.16.840.1.113883.12.227': 'http://hl7.org/fhir/sid/mvx',
  '2.16.840.1.113883.6.90': 'http://hl7.org/fhir/sid/icd-10-cm',
  '2.16.840.1.113883.6.103': 'http://hl7.org/fhir/sid/icd-9-cm',
  '2.16.840.1.113883.6.104': 'http://hl7.org/fhir/sid/icd-9-cm',
  '2.16.840.1.113883.6.4': 'http://www.cms.gov/Medicare/Coding/ICD10',
  '2.16.840.1.113883.6.12': 'http://www.ama-assn.org/go/cpt',
  '2.16.840.1.113883.6.285': 'urn:oid:2.16.840.1.113883.6.285',
  '2.16.840.1.113883.6.69': 'http://hl7.org/fhir/sid/ndc',
  '2.16.840.1.113883.4.9': 'http://fdasis.nlm.nih.gov',
  '2.16.840.1.113883.6.8': 'http://unitsofmeasure.org',
  '2.16.840.1.113883.3.26.1.1': 'http://ncimeta.nci.nih.gov',
  '2.16.840.1.113883.6.101': 'http://nucc.org/provider-taxonomy',
  '2.16.840.1.113883.6.259': 'https://www.cdc.gov/nhsn/cdaportal/terminology/codesystem/hsloc.html',
  '2.16.840.1.113883.5.1': 'http://terminology.hl7.org/CodeSystem/v3-AdministrativeGender',
  '2.16.840.1.113883.5.2': 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus',
  '2.16.840.1.113883.5.4': 'http://terminology.hl7.org/CodeSystem/v3-ActCode',
  '2.16.840.1.113883.5.6': 'http://terminology.hl7.org/CodeSystem/v3-ActClass',
  '2.16.840.1.113883.5.8': 'http://terminology.hl7.org/CodeSystem/v3-ActReason',
  '2.16.840.1.113883.5.14': 'http://terminology.hl7.org/CodeSystem/v3-ActStatus',
  '2.16.840.1.113883.5.25': 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality',
  '2.16.840.1.113883.5.83': 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation',
  '2.16.840.1.113883.5.111': 'http://terminology.hl7.org/CodeSystem/v3-RoleCode',
  '2.16.840.1.113883.5.112': 'http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration',
  '2.16.840.1.113883.6.238': 'urn:oid:2.16.840.1.113883.6.238',
  '1.0.639.1': 'urn:ietf:bcp:47',
};

export function codeSystemUri(oid: string): string {
  return CODE_SYSTEMS[oid] ?? (/^[0-2](\.\d+)+$/.test(oid) ? `urn:oid:${oid}` : oid);
}

/**
 * A CD/CE/CV (code, codeSystem, displayName, originalText, translations) as a CodeableConcept; undefined
 * when it says nothing (a nullFlavor without text). `narrative` resolves an originalText that points into
 * the section text (`<reference value="#id"/>`).
 */
export function concept(element: XmlElement | undefined, narrative?: XmlElement): CodeableConcept | undefined {
  if (!element) return undefined;
  const codings = [element, ...element.elements('translation')].map(coding).filter((c): c is Coding => !!c);
  const text = originalText(element, narrative) ?? codings.find((c) => c.display)?.display;
  if (!codings.length && !text) return undefined;
  return { ...(codings.length ? { coding: codings } : {}), ...(text ? { text } : {}) };
}

function coding(element: XmlElement): Coding | undefined {
  const code = element.attr('code');
  const system = element.attr('codeSystem');
  if (!code) return undefined;
  const display = element.attr('displayName');
  return { ...(system ? { system: codeSystemUri(system) } : {}), code: code.trim(), ...(display ? { display: display.trim() } : {}) };
}

/** The originalText of a coded element: its own text, or the narrative it references. */
export function originalText(element: XmlElement, narrative?: XmlElement): string | undefined {
  return referencedText(element.first('originalText'), narrative);
}

/** Narrative text an entry points to (`<text><reference value="#x"/></text>`), or the entry's own text. */
export function entryText(entry: XmlElement, narrative?: XmlElement): string | undefined {
  return referencedText(entry.first('text'), narrative);
}

/** A text-bearing element (ED): the section narrative its `<reference value="#id"/>` points to, else its own text. */
export function referencedText(element: XmlElement | undefined, narrative?: XmlElement): string | undefined {
  if (!element) return undefined;
  const reference = element.first('reference')?.attr('value');
  if (reference?.startsWith('#') && narrative) {
    const target = narrative.findById(reference.slice(1));
    if (target?.text()) return target.text();
  }
  return element.text() || undefined;
}

/**
 * An HL7 v3 TS ("20120806", "201208061030-0500", "20120806103015.123+0100") as a FHIR date or dateTime.
 * FHIR requires a time zone with a time: a time without one is cut to the date, which loses nothing false.
 * A date that does not exist (31 April) or a time past 23:59:59 is left out (undefined), as in HL7 v2.
 */
export function dateTime(value: string | undefined): string | undefined {
  const m = value && /^(\d{4})(\d{2})?(\d{2})?(?:(\d{2})(\d{2})?(\d{2})?(?:\.\d+)?)?([+-]\d{4}|Z)?$/.exec(value.trim());
  if (!m) return undefined;
  const [, year, month, day, hour, minute, second, zone] = m;
  if (!isRealTimestamp(year, month, day, hour, minute, second)) return undefined;
  let date = year;
  if (month) date += `-${month}`;
  if (month && day) date += `-${day}`;
  if (!(month && day && hour && zone)) return date;
  const tz = zone === 'Z' ? 'Z' : `${zone.slice(0, 3)}:${zone.slice(3)}`;
  return `${date}T${hour}:${minute ?? '00'}:${second ?? '00'}${tz}`;
}

/** An IVL_TS or TS element (effectiveTime) as a Period; `value` alone is the start. */
export function period(element: XmlElement | undefined): Period | undefined {
  if (!element) return undefined;
  const start = dateTime(element.attr('value')) ?? dateTime(element.first('low')?.attr('value')) ?? dateTime(element.first('center')?.attr('value'));
  const end = dateTime(element.first('high')?.attr('value'));
  if (!start && !end) return undefined;
  return { ...(start ? { start } : {}), ...(end ? { end } : {}) };
}

/** An effectiveTime as a span when it has a start and a different end, else as its one point in time. */
export function spanOrPoint(element: XmlElement | undefined): { period: Period } | { dateTime: string } | undefined {
  const p = period(element);
  if (p?.start && p.end && p.start !== p.end) return { period: p };
  const point = p?.start ?? p?.end;
  return point ? { dateTime: point } : undefined;
}

/** The single point in time of an effectiveTime: its value, else its low, else its high. */
export function instant(element: XmlElement | undefined): string | undefined {
  const p = period(element);
  return p?.start ?? p?.end;
}

/** A PQ (value, unit) as a Quantity; C-CDA units are UCUM. */
export function quantity(element: XmlElement | undefined): Quantity | undefined {
  const raw = element?.attr('value');
  if (raw === undefined || !/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(raw.trim())) return undefined;
  const unit = element?.attr('unit');
  return { value: Number(raw), ...(unit && unit !== '1' ? { unit, system: 'http://unitsofmeasure.org', code: unit } : {}) };
}

/** An II (root, extension) as an Identifier: root alone is a UUID or OID naming the thing itself. */
export function identifier(element: XmlElement | undefined): Identifier | undefined {
  const root = element?.attr('root');
  if (!root || element?.attr('nullFlavor')) return undefined;
  const extension = element?.attr('extension');
  if (extension) return { system: codeSystemUri(root), value: extension };
  const isUuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(root);
  return { system: 'urn:ietf:rfc:3986', value: isUuid ? `urn:uuid:${root.toLowerCase()}` : `urn:oid:${root}` };
}

/** An entry's ids as identifiers (nullFlavored ones left out). */
export function identifiers(element: XmlElement): Identifier[] {
  return element.elements('id').map(identifier).filter((i): i is Identifier => !!i);
}

const NAME_USE: Record<string, HumanName['use']> = { L: 'official', C: 'usual', P: 'nickname', A: 'anonymous', TEMP: 'temp' };

export function humanName(element: XmlElement): HumanName | undefined {
  const given = element.elements('given').map((g) => g.text()).filter(Boolean);
  const family = element.elements('family').map((f) => f.text()).filter(Boolean).join(' ');
  const prefix = element.elements('prefix').map((p) => p.text()).filter(Boolean);
  const suffix = element.elements('suffix').map((s) => s.text()).filter(Boolean);
  const text = !given.length && !family ? element.text() : undefined;
  if (!given.length && !family && !text) return undefined;
  const use = NAME_USE[element.attr('use')?.split(' ')[0] ?? ''];
  return { ...(use ? { use } : {}), ...(family ? { family } : {}), ...(given.length ? { given } : {}), ...(prefix.length ? { prefix } : {}), ...(suffix.length ? { suffix } : {}), ...(text ? { text } : {}) };
}

const ADDRESS_USE: Record<string, Address['use']> = { H: 'home', HP: 'home', HV: 'home', WP: 'work', DIR: 'work', PUB: 'work', TMP: 'temp', OLD: 'old', BAD: 'old' };

export function address(element: XmlElement): Address | undefined {
  if (element.attr('nullFlavor')) return undefined;
  const line = element.elements('streetAddressLine').map((l) => l.text()).filter(Boolean);
  const part = (name: string) => element.first(name)?.text() || undefined;
  const result: Address = {
    ...(ADDRESS_USE[element.attr('use') ?? ''] ? { use: ADDRESS_USE[element.attr('use') as string] } : {}),
    ...(line.length ? { line } : {}),
    ...(part('city') ? { city: part('city') } : {}),
    ...(part('state') ? { state: part('state') } : {}),
    ...(part('postalCode') ? { postalCode: part('postalCode') } : {}),
    ...(part('country') ? { country: part('country') } : {}),
  };
  return Object.keys(result).length > (result.use ? 1 : 0) ? result : undefined;
}

const TELECOM_USE: Record<string, ContactPoint['use']> = { HP: 'home', H: 'home', HV: 'home', WP: 'work', MC: 'mobile', TMP: 'temp', BAD: 'old' };

/** A TEL ("tel:+1(555)555-2003", "mailto:x@y", "fax:...") as a ContactPoint. */
export function contactPoint(element: XmlElement): ContactPoint | undefined {
  const value = element.attr('value');
  if (!value || element.attr('nullFlavor')) return undefined;
  const m = /^(tel|mailto|fax|http|https):(.*)$/i.exec(value.trim());
  const scheme = m?.[1].toLowerCase();
  const system: ContactPoint['system'] = scheme === 'mailto' ? 'email' : scheme === 'fax' ? 'fax' : scheme?.startsWith('http') ? 'url' : 'phone';
  const use = TELECOM_USE[element.attr('use')?.split(' ')[0] ?? ''];
  return { system, value: scheme?.startsWith('http') ? value.trim() : (m?.[2] ?? value).trim(), ...(use ? { use } : {}) };
}
