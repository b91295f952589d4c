import type { PersonFeatures } from './features.js';
import { canonicalGivenName } from './nicknames.js';
import { phoneticCodes } from './similarity.js';

/**
 * Blocking keys: a new record is compared only with records that share at least one key, so candidate
 * search is a few index lookups instead of a scan of the population. The keys are chosen so that a true
 * match with one error in any single field still shares a key:
 * - surname sound + birth year       (survives day/month errors, typos and nicknames in the first name)
 * - first name (canonical) + birth date   (survives a changed or misspelt surname)
 * - birth date + postal code          (survives both names being mangled)
 * - SSN, phone                        (survive everything demographic)
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
  if (f.ssn) {
    keys.add(`ss:${f.ssn}`);
  }
  for (const phone of f.phones) {
    keys.add(`ph:${phone}`);
  }
  return [...keys];
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}
