import type { PersonFeatures } from './features.js';
import { canonicalGivenName } from './nicknames.js';
import { phoneticCodes } from './similarity.js';

/**
 * Blocking keys: a new record is compared only with records that share at least one key, so candidate
 * search is a few index lookups instead of a scan of the population. The keys are a union of rules, so
 * that a true match with an error in, or without, any one field still shares a key:
 * - surname sound + birth year       (survives day/month errors, typos and nicknames in the first name)
 * - first name (canonical, and its sound) + birth date   (survives a changed or misspelt surname, and a
 *   typo in the first name that the nickname table does not know)
 * - birth date + postal code, birth date + locality  (survive both names being mangled, and a typo in
 *   either the postal code or the town)
 * - surname sound + postal code       (survives a missing birth date and a typo in the first name)
 * - the sounds of both names, in either order, + postal code or locality (no birth date; swapped names)
 * - the sounds of both names alone    (no birth date, no address)
 * - house number and street + postal code, or + surname sound (a missing birth date with a replaced
 *   first name, or a moved postal code)
 * - each identifier (SSN and every other system), phone, e-mail (survive everything demographic), and
 *   each identifier with one character left out (the deletion neighbourhood: two numbers one typing error
 *   apart, a digit replaced, dropped, added or two swapped, share one of these)
 * Each key's candidates are capped when read (mpi-store.ts), so a value shared by thousands costs the
 * cap, not the population.
 */
/** The key of the people sharing a record's first name (canonical) and birth date: counted for the namesake risk. */
export function firstNameDateKey(f: PersonFeatures): string | undefined {
  const first = f.firstNames[0];
  return first && f.birthDate ? `fd:${canonicalGivenName(first)}:${f.birthDate.year}${pad(f.birthDate.month)}${pad(f.birthDate.day)}` : undefined;
}

export function blockingKeys(f: PersonFeatures): string[] {
  const keys = new Set<string>();
  const date = f.birthDate ? `${f.birthDate.year}${pad(f.birthDate.month)}${pad(f.birthDate.day)}` : undefined;
  for (const surname of f.surnames) {
    for (const part of surname.parts) {
      const [primary] = phoneticCodes(part);
      if (primary && f.birthDate) {
        keys.add(`sy:${primary}:${f.birthDate.year}`);
      }
    }
  }
  if (date) {
    for (const first of f.firstNames) {
      keys.add(`fd:${canonicalGivenName(first)}:${date}`);
      const [sound] = phoneticCodes(first);
      if (sound) keys.add(`fs:${sound}:${date}`);
    }
    if (f.postalCode) {
      keys.add(`dz:${date}:${f.postalCode}`);
    }
    if (f.locality) {
      keys.add(`dl:${date}:${f.locality}`);
    }
  }
  const surnameSound = f.surnames[0] && phoneticCodes(f.surnames[0].parts.join(''))[0];
  if (surnameSound && f.postalCode) {
    keys.add(`sz:${surnameSound}:${f.postalCode}`);
  }
  for (const names of nameSounds(f)) {
    keys.add(`nn:${names}`);
    if (f.postalCode) keys.add(`nz:${names}:${f.postalCode}`);
    if (f.locality) keys.add(`nl:${names}:${f.locality}`);
  }
  const house = houseKey(f.street);
  if (house) {
    if (f.postalCode) keys.add(`ad:${house}:${f.postalCode}`);
    if (surnameSound) keys.add(`as:${house}:${surnameSound}`);
  }
  if (f.ssn) {
    keys.add(`ss:${f.ssn}`);
    for (const variant of deletionNeighbourhood(f.ssn)) keys.add(`s1:${variant}`);
  }
  for (const [system, value] of Object.entries(f.identifiers ?? {})) {
    keys.add(`id:${system}|${value}`);
    for (const variant of deletionNeighbourhood(value)) keys.add(`i1:${system}|${variant}`);
  }
  for (const phone of f.phones) {
    keys.add(`ph:${phone}`);
  }
  for (const email of f.emails ?? []) {
    keys.add(`em:${email}`);
  }
  return [...keys];
}

/**
 * The sounds of the first given name and the first surname, sorted: the same key with the two swapped.
 * The first name is taken as written and in its canonical form (Bill = William), so that a swapped
 * record, whose surname is never read as a nickname, still shares one.
 */
function nameSounds(f: PersonFeatures): string[] {
  const [first] = f.firstNames;
  const [surname] = f.surnames;
  if (!first || first.length < 2 || !surname) {
    return [];
  }
  const family = phoneticCodes(surname.parts.join(''))[0];
  const out = new Set<string>();
  for (const given of [first, canonicalGivenName(first)]) {
    const codes = [phoneticCodes(given)[0], family];
    if (codes.every(Boolean)) out.add(codes.sort().join('+'));
  }
  return [...out];
}

/** House number and the first four letters of the street name ("12 elm street" -> "12elm "): survives spacing and suffix typos. */
function houseKey(street: string | undefined): string | undefined {
  const m = /^(\d+\w?)\s+([a-z]{3,})/.exec(street ?? '');
  return m ? `${m[1]}${m[2].slice(0, 4)}` : undefined;
}

/** The value with each character left out in turn (identifiers of 5 characters or more). */
function deletionNeighbourhood(value: string): string[] {
  if (value.length < 5) return [];
  return [...new Set(Array.from(value, (_, i) => value.slice(0, i) + value.slice(i + 1)))];
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}
