import type { Bundle, Identifier, Patient } from '@medplum/fhirtypes';
import { parse } from 'csv-parse/sync';
import { SSN_SYSTEM } from './source-identity.js';

/** One record of a labelled sample: the Patient to load and who it really is. */
export interface LabelledRecord {
  patient: Patient;
  person: string;
  /** Where it came from, for messages: the CSV line or the Bundle entry. */
  where: string;
}

export interface LabelledSample {
  records: LabelledRecord[];
  /** What was left out of a record and why (never the value itself: no PHI in messages). */
  notes: string[];
}

/** Identifier system of person-level id columns of a CSV sample ("soc_sec_id" -> urn:tessera:sample-id:soc_sec_id). */
export const SAMPLE_ID_SYSTEM = 'urn:tessera:sample-id:';

/** CSV headers each field is recognised by (lower case, spaces as underscores). */
const COLUMNS = {
  truth: ['truth', 'person_id', 'true_id', 'cluster', 'rec_id'],
  given: ['given_name', 'given', 'first_name', 'firstname', 'forename'],
  middle: ['middle_name', 'middle'],
  family: ['surname', 'family', 'family_name', 'last_name', 'lastname'],
  streetNumber: ['street_number', 'house_number'],
  line1: ['address_1', 'address', 'street', 'address_line'],
  line2: ['address_2'],
  city: ['suburb', 'city', 'locality', 'town'],
  postalCode: ['postcode', 'postal_code', 'zip', 'zipcode'],
  state: ['state', 'region'],
  birthDate: ['date_of_birth', 'birth_date', 'birthdate', 'dob'],
  sex: ['sex', 'gender'],
  phone: ['phone', 'phone_number', 'telephone'],
  email: ['email', 'e_mail'],
  ssn: ['ssn'],
  personId: ['soc_sec_id', 'national_id', 'id_number', 'passport', 'drivers_license', 'insurance_id', 'member_id'],
} as const;

/**
 * A labelled CSV sample (one record a row, a truth column naming the person) as FHIR Patients, the way a
 * deployment would map its own extract. FEBRL's rec_id ("rec-12-org", "rec-12-dup-0") names the person
 * by its number. Person-level id columns become identifiers of their own system (typed NI, so that they
 * are evidence and never taken for the record's MRN). A birth date that is no calendar date is left out
 * with a note, as a registration interface would.
 */
export function labelledFromCsv(text: string, truthColumn?: string): LabelledSample {
  const rows = parse(text, { columns: (header: string[]) => header.map((h) => h.trim().toLowerCase().replace(/\s+/g, '_')), skip_empty_lines: true, trim: true, relax_column_count: true }) as Record<string, string>[];
  const headers = rows.length ? Object.keys(rows[0]) : [];
  const pick = (names: readonly string[]) => names.find((n) => headers.includes(n));
  const truth = truthColumn ? truthColumn.trim().toLowerCase() : pick(COLUMNS.truth);
  if (!truth || !headers.includes(truth)) {
    throw new Error(`the sample has no truth column (${truthColumn ?? COLUMNS.truth.join(', ')}); its columns are ${headers.join(', ')}`);
  }
  const col = Object.fromEntries(Object.entries(COLUMNS).map(([field, names]) => [field, pick(names)])) as Record<keyof typeof COLUMNS, string | undefined>;
  const idColumns = headers.filter((h) => (COLUMNS.personId as readonly string[]).includes(h));
  const notes: string[] = [];
  const records = rows.map((row, i): LabelledRecord => {
    const where = `line ${i + 2}`;
    const get = (c: string | undefined) => (c ? row[c]?.trim() || undefined : undefined);
    const person = personOf(get(truth));
    if (!person) throw new Error(`${where}: the truth column ${truth} is empty`);
    const patient: Patient = { resourceType: 'Patient' };
    const given = [get(col.given), get(col.middle)].filter((g): g is string => !!g);
    const family = get(col.family);
    if (given.length || family) patient.name = [{ ...(family && { family }), ...(given.length && { given }) }];
    const line = [[get(col.streetNumber), get(col.line1)].filter(Boolean).join(' '), get(col.line2)].filter((l): l is string => !!l);
    const [city, postalCode, state] = [get(col.city), get(col.postalCode), get(col.state)];
    if (line.length || city || postalCode) patient.address = [{ ...(line.length && { line }), ...(city && { city }), ...(postalCode && { postalCode }), ...(state && { state }) }];
    const birth = get(col.birthDate);
    if (birth) {
      const date = fhirDate(birth);
      if (date) patient.birthDate = date;
      else notes.push(`${where}: birth date is not a calendar date; loaded without it`);
    }
    const gender = genderOf(get(col.sex));
    if (gender) patient.gender = gender;
    const telecom = [
      ...(get(col.phone) ? [{ system: 'phone' as const, value: get(col.phone) }] : []),
      ...(get(col.email) ? [{ system: 'email' as const, value: get(col.email) }] : []),
    ];
    if (telecom.length) patient.telecom = telecom;
    const identifier: Identifier[] = [];
    if (get(col.ssn)) identifier.push({ system: SSN_SYSTEM, value: get(col.ssn) });
    for (const c of idColumns) {
      const value = get(c);
      if (value) identifier.push({ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'NI' }] }, system: `${SAMPLE_ID_SYSTEM}${c}`, value });
    }
    if (identifier.length) patient.identifier = identifier;
    return { patient, person, where };
  });
  return { records, notes };
}

/**
 * A labelled sample as FHIR Patients (a Bundle, or NDJSON: one Patient a line), the truth in an
 * identifier of `truthSystem`; that identifier is taken off before the Patient is loaded.
 */
export function labelledFromFhir(text: string, truthSystem: string): LabelledSample {
  const lines = text.split('\n').filter((l) => l.trim());
  // NDJSON starts with '{' too: it is a Bundle only when the whole text is one JSON object that says so.
  const whole = lines.length === 1 ? (JSON.parse(lines[0]) as { resourceType?: string }) : tryParse(text);
  const patients: Patient[] = whole?.resourceType === 'Bundle'
    ? ((whole as Bundle).entry ?? []).map((e) => e.resource as Patient)
    : lines.map((l) => JSON.parse(l) as Patient);
  const records = patients.map((patient, i): LabelledRecord => {
    const where = `entry ${i + 1}`;
    if (patient?.resourceType !== 'Patient') throw new Error(`${where}: not a Patient`);
    const person = patient.identifier?.find((id) => id.system === truthSystem)?.value;
    if (!person) throw new Error(`${where}: no identifier of the truth system ${truthSystem}`);
    const identifier = patient.identifier?.filter((id) => id.system !== truthSystem);
    const { id: _id, meta: _meta, ...rest } = patient;
    return { patient: { ...rest, identifier: identifier?.length ? identifier : undefined }, person, where };
  });
  return { records, notes: [] };
}

/** The text as one JSON value, or undefined when it is not one (NDJSON of several lines). */
function tryParse(text: string): { resourceType?: string } | undefined {
  try {
    return JSON.parse(text) as { resourceType?: string };
  } catch {
    return undefined;
  }
}

function personOf(value: string | undefined): string | undefined {
  return value && (/^(rec-\d+)-(?:org|dup-\d+)$/.exec(value)?.[1] ?? value);
}

/** YYYYMMDD or YYYY-MM-DD (or with slashes) that names a real day, as a FHIR date. */
function fhirDate(value: string): string | undefined {
  const m = /^(\d{4})[-/]?(\d{2})[-/]?(\d{2})$/.exec(value);
  if (!m) return undefined;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const real = month >= 1 && month <= 12 && day >= 1 && day <= new Date(Date.UTC(year, month, 0)).getUTCDate();
  return real ? `${m[1]}-${m[2]}-${m[3]}` : undefined;
}

function genderOf(value: string | undefined): Patient['gender'] | undefined {
  const v = value?.toLowerCase();
  return v === 'm' || v === 'male' ? 'male' : v === 'f' || v === 'female' ? 'female' : undefined;
}
