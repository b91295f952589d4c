import type { Patient } from '@medplum/fhirtypes';
import {
  generationalSuffix,
  normalizeGivenNames,
  normalizePhone,
  normalizePostalCode,
  normalizeSsn,
  normalizeStreet,
  normalizeSurname,
  parseBirthDate,
  type BirthDate,
  type NormalizedSurname,
} from './normalize.js';

export const SSN_SYSTEM = 'http://hl7.org/fhir/sid/us-ssn';

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
  phones: string[];
  postalCode?: string;
  street?: string;
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
    phones: [...new Set((patient.telecom ?? []).filter((t) => t.system === 'phone' || !t.system).map((t) => normalizePhone(t.value)).filter((p): p is string => !!p))],
    postalCode: normalizePostalCode(address?.postalCode),
    street: normalizeStreet(address?.line),
  };
}
