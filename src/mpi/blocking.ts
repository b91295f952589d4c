import type { PersonFeatures } from './features.js';
import { canonicalGivenName } from './nicknames.js';
import { phoneticCodes } from './similarity.js';

/**
 * Blocking keys: a new record is compared only with records that share at least one key, so candidate
 * search is a few index lookups instead of a scan of the population. The keys are a union of rules, so
 * that a true match with an error in, or without, any one field still shares a key:
 * - surname sound + birth year       (survives day/month errors, typos and nicknames in the first name)
 * - first name (canonical) + birth date   (survives a changed or misspelt surname)
 * - birth date + postal code          (survives both names being mangled)
 * - the sounds of both names, in either order, + postal code or locality (no birth date; swapped names)
 * - the sounds of both names alone    (no birth date, no address)
 * - each identifier (SSN and every other system), phone, e-mail (survive everything demographic)
 * Each key's candidates are capped when read (mpi-store.ts), so a value shared by thousands costs the
 * cap, not the population.
 */
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
    }
    if (f.postalCode) {
      keys.add(`dz:${date}:${f.postalCode}`);
    }
  }
  const names = nameSounds(f);
  if (names) {
    keys.add(`nn:${names}`);
    if (f.postalCode) keys.add(`nz:${names}:${f.postalCode}`);
    if (f.locality) keys.add(`nl:${names}:${f.locality}`);
  }
  if (f.ssn) {
    keys.add(`ss:${f.ssn}`);
  }
  for (const [system, value] of Object.entries(f.identifiers ?? {})) {
    keys.add(`id:${system}|${value}`);
  }
  for (const phone of f.phones) {
    keys.add(`ph:${phone}`);
  }
  for (const email of f.emails ?? []) {
    keys.add(`em:${email}`);
  }
  return [...keys];
}

/** The sounds of the first given name and the first surname, sorted: the same key with the two swapped. */
function nameSounds(f: PersonFeatures): string | undefined {
  const [first] = f.firstNames;
  const [surname] = f.surnames;
  if (!first || first.length < 2 || !surname) {
    return undefined;
  }
  const codes = [phoneticCodes(canonicalGivenName(first))[0], phoneticCodes(surname.parts.join(''))[0]];
  return codes.every(Boolean) ? codes.sort().join('+') : undefined;
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}
