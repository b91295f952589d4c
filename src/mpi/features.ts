import type { Identifier, Patient } from '@medplum/fhirtypes';
import { ENTERPRISE_ID_SYSTEM, SSN_SYSTEM, sourceIdentifier } from './source-identity.js';
import { normalizeIdentifier } from './identifier-formats.js';
import {
  generationalSuffix,
  normalizeGivenNames,
  normalizePhone,
  normalizePostalCode,
  normalizeEmail,
  normalizeLocality,
  normalizeSsn,
  normalizeStreet,
  normalizeSurname,
  parseBirthDate,
  type BirthDate,
  type NormalizedSurname,
} from './normalize.js';

export { SSN_SYSTEM };

/** What the match model compares about a person, normalised once per source record. */
export interface PersonFeatures {
  /** Every family name the record carries (current, maiden, other name entries). */
  surnames: NormalizedSurname[];
  /** First given name of each name entry. */
  firstNames: string[];
  /** Second given name's initial, when there is one. */
  middleInitial?: string;
  suffix?: string;
  birthDate?: BirthDate;
  gender?: string;
  ssn?: string;
  /**
   * Person-level identifiers of every other system (national ids, driver's licences, insurance member
   * ids ...), normalised per system, keyed by system. Not the source's own record number (its MRN, which
   * names a record, not a person) nor SSNs (own field). Absent in features stored before it existed.
   */
  identifiers?: Record<string, string>;
  /** All given names of the first name entry written together ("kate lin" -> "katelin"). */
  givenJoined?: string;
  phones: string[];
  emails?: string[];
  postalCode?: string;
  street?: string;
  locality?: string;
}

/**
 * Identifiers the index cannot use as evidence, with why: no system, no value, an SSN that is no valid
 * SSN. Written into the write's warnings rather than dropped without a word.
 */
export function unusableIdentifiers(patient: Patient): string[] {
  // The source's own record number names the record, not the person: it is never compared, so its shape is no concern here.
  const own = sourceIdentifier(patient);
  return (patient.identifier ?? []).flatMap((i, n) => {
    if (isOwn(i, own)) return [];
    if (!i.value) return [`identifier[${n}] has no value`];
    if (!i.system) return [`identifier[${n}] (${maskedValue(i.value)}) has no system: it cannot be compared with anything`];
    if (i.system === SSN_SYSTEM && !normalizeSsn(i.value)) return [`identifier[${n}] is not a valid US SSN (${maskedValue(i.value)}): not used for matching`];
    if (i.system !== SSN_SYSTEM && !normalizeIdentifier(i)) return [`identifier[${n}] of ${i.system} is not a number of that system's format, or a placeholder (${maskedValue(i.value)}): not used for matching`];
    return [];
  });
}

/** No PHI in warnings and logs: only the shape of the value. */
function maskedValue(value: string): string {
  return `${value.length} characters`;
}

function personIdentifiers(patient: Patient): Record<string, string> {
  const own = sourceIdentifier(patient);
  const out: Record<string, string> = {};
  for (const i of patient.identifier ?? []) {
    if (!i.system || !i.value || i.system === SSN_SYSTEM || i.system === ENTERPRISE_ID_SYSTEM || isOwn(i, own)) continue;
    const value = normalizeIdentifier(i);
    if (value && !(i.system in out)) out[i.system] = value;
  }
  return out;
}

function isOwn(i: Identifier, own: { system: string; value: string } | undefined): boolean {
  return !!own && i.system === own.system && i.value === own.value;
}

export function personFeatures(patient: Patient): PersonFeatures {
  const names = patient.name ?? [];
  const surnames = names.map((n) => normalizeSurname(n.family)).filter((s): s is NormalizedSurname => !!s);
  const givens = names.map((n) => normalizeGivenNames(n.given));
  const firstNames = [...new Set(givens.map((g) => g[0]).filter((g): g is string => !!g))];
  const middle = givens.find((g) => g.length > 1)?.[1];
  const address = patient.address?.find((a) => a.use !== 'old') ?? patient.address?.[0];
  const gender = patient.gender && patient.gender !== 'unknown' ? patient.gender : undefined;
  return {
    surnames,
    firstNames,
    middleInitial: middle?.[0],
    suffix: generationalSuffix(names.flatMap((n) => [...(n.suffix ?? []), n.family, ...(n.given ?? [])])),
    birthDate: parseBirthDate(patient.birthDate),
    gender,
    ssn: normalizeSsn(patient.identifier?.find((i) => i.system === SSN_SYSTEM)?.value),
    identifiers: personIdentifiers(patient),
    givenJoined: givens[0]?.length ? givens[0].join('') : undefined,
    phones: [...new Set((patient.telecom ?? []).filter((t) => t.system === 'phone' || !t.system).map((t) => normalizePhone(t.value)).filter((p): p is string => !!p))],
    emails: [...new Set((patient.telecom ?? []).filter((t) => t.system === 'email').map((t) => normalizeEmail(t.value)).filter((e): e is string => !!e))],
    postalCode: normalizePostalCode(address?.postalCode),
    street: normalizeStreet(address?.line),
    locality: normalizeLocality(address?.city),
  };
}
