/**
 * Normalisation of the demographic fields the master patient index compares. Each function maps the many
 * ways a registration clerk or an EHR writes a value to one form, or to undefined when nothing usable is
 * left (a placeholder SSN, a phone number with too few digits), so that missing is never mistaken for a
 * disagreement.
 */

/** Lower case, no diacritics (José -> jose, Müller -> muller), punctuation dropped, spaces collapsed. */
export function foldText(text: string): string {
  return text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/['’`.]/g, '')
    .replace(/[^a-z0-9]+/g, ' ')
    .trim();
}

/** Surname particles that registrations keep or drop at will ("van der Berg", "Berg"). */
const PARTICLES = new Set(['van', 'von', 'der', 'den', 'de', 'del', 'della', 'di', 'da', 'du', 'la', 'le', 'st', 'saint', 'mac', 'bin', 'ibn', 'al', 'el']);
/** Generational suffixes: kept apart from the name because they distinguish Jr from Sr. */
const SUFFIXES = new Set(['jr', 'sr', 'ii', 'iii', 'iv', 'v', 'junior', 'senior', '2nd', '3rd']);

export interface NormalizedSurname {
  /** The whole surname folded, particles kept, compound parts joined by a space ("garcia lopez"). */
  full: string;
  /** Each meaningful part of a hyphenated or compound surname, particles removed (["garcia", "lopez"]). */
  parts: string[];
}

export function normalizeSurname(family: string | undefined): NormalizedSurname | undefined {
  if (!family) {
    return undefined;
  }
  const words = foldText(family).split(' ').filter((w) => w && !SUFFIXES.has(w));
  const parts = words.filter((w) => !PARTICLES.has(w));
  if (!parts.length) {
    return undefined;
  }
  return { full: words.join(' '), parts };
}

/** Given names folded and split ("Mary-Ann Louise" -> ["mary", "ann", "louise"]); initials kept as one letter. */
export function normalizeGivenNames(given: string[] | undefined): string[] {
  return (given ?? []).flatMap((g) => foldText(g).split(' ')).filter(Boolean);
}

/** The generational suffix written anywhere in a name (suffix element, family or given). */
export function generationalSuffix(texts: (string | undefined)[]): string | undefined {
  for (const text of texts) {
    for (const word of foldText(text ?? '').split(' ')) {
      if (SUFFIXES.has(word)) {
        return word === 'junior' ? 'jr' : word === 'senior' ? 'sr' : word === '2nd' ? 'ii' : word === '3rd' ? 'iii' : word;
      }
    }
  }
  return undefined;
}

/** Phone: digits only, North American country code dropped; fewer than 7 digits is no phone. */
export function normalizePhone(value: string | undefined): string | undefined {
  let digits = (value ?? '').replace(/\D/g, '');
  if (digits.length === 11 && digits.startsWith('1')) {
    digits = digits.slice(1);
  }
  return digits.length >= 7 ? digits : undefined;
}

/** Postal code: US ZIP+4 cut to five digits; others upper case without spaces. */
export function normalizePostalCode(value: string | undefined): string | undefined {
  const compact = (value ?? '').toUpperCase().replace(/[\s-]/g, '');
  if (/^\d{9}$/.test(compact) || /^\d{5}$/.test(compact)) {
    return compact.slice(0, 5);
  }
  return compact.length >= 3 ? compact : undefined;
}

/**
 * US Social Security number: nine digits, or undefined for the invalid and placeholder values registration
 * systems fill in (area 000, 666 or 9xx, group 00, serial 0000, and runs such as 123456789 or 999999999).
 */
export function normalizeSsn(value: string | undefined): string | undefined {
  const digits = (value ?? '').replace(/\D/g, '');
  if (digits.length !== 9) {
    return undefined;
  }
  const area = digits.slice(0, 3);
  if (area === '000' || area === '666' || area.startsWith('9') || digits.slice(3, 5) === '00' || digits.slice(5) === '0000') {
    return undefined;
  }
  if (digits === '123456789' || /^(\d)\1{8}$/.test(digits)) {
    return undefined;
  }
  return digits;
}

/** E-mail: trimmed, lower case; undefined without an @ between two parts. */
export function normalizeEmail(value: string | undefined): string | undefined {
  const email = (value ?? '').trim().toLowerCase();
  return /^[^@\s]+@[^@\s]+$/.test(email) ? email : undefined;
}

/** Town or suburb, folded ("St. James" = "st james"). */
export function normalizeLocality(value: string | undefined): string | undefined {
  return foldText(value ?? '') || undefined;
}

export interface BirthDate {
  year: number;
  month: number;
  day: number;
}

/** A FHIR date with day precision (YYYY-MM-DD); partial dates carry too little to match on. */
export function parseBirthDate(value: string | undefined): BirthDate | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(value ?? '');
  if (!m) {
    return undefined;
  }
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return month >= 1 && month <= 12 && day >= 1 && day <= new Date(Date.UTC(year, month, 0)).getUTCDate() ? { year, month, day } : undefined;
}

/** Street address folded with the usual abbreviations expanded, so "12 Main St." equals "12 main street". */
export function normalizeStreet(lines: string[] | undefined): string | undefined {
  const text = foldText((lines ?? []).join(' '));
  if (!text) {
    return undefined;
  }
  return text
    .split(' ')
    .map((w) => STREET_WORDS[w] ?? w)
    .join(' ');
}

const STREET_WORDS: Record<string, string> = {
  st: 'street',
  str: 'street',
  ave: 'avenue',
  av: 'avenue',
  rd: 'road',
  dr: 'drive',
  ln: 'lane',
  blvd: 'boulevard',
  ct: 'court',
  pl: 'place',
  apt: 'apartment',
  ste: 'suite',
  hwy: 'highway',
  n: 'north',
  s: 'south',
  e: 'east',
  w: 'west',
};
