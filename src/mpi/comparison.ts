import { areNicknames } from './nicknames.js';
import type { PersonFeatures } from './features.js';
import { compareBirthDates, damerauLevenshtein, jaroWinkler, soundAlike } from './similarity.js';
import { TERM_FIELDS, type TermField } from './term-frequencies.js';

/**
 * The agreement level of each compared field for a pair of records: the comparison vector of the
 * Fellegi-Sunter model. `missing` (either side has no value) carries no weight either way.
 */
export const FIELD_LEVELS = {
  surname: ['exact', 'compound-part', 'similar', 'sound-alike', 'different'],
  firstName: ['exact', 'nickname', 'similar', 'initial', 'sound-alike', 'different'],
  middleInitial: ['same', 'different'],
  birthDate: ['exact', 'transposed', 'one-digit', 'year-only', 'different'],
  gender: ['same', 'different'],
  ssn: ['exact', 'one-edit', 'different'],
  /** Person-level identifiers of any other system, compared only under the same system. */
  identifier: ['exact', 'one-edit', 'different'],
  phone: ['shared', 'different'],
  email: ['shared', 'different'],
  postalCode: ['same', 'different'],
  street: ['similar', 'different'],
  locality: ['same', 'different'],
  suffix: ['same', 'different'],
} as const;

export type Field = keyof typeof FIELD_LEVELS;
export type Level<F extends Field = Field> = (typeof FIELD_LEVELS)[F][number] | 'missing';
export type IdentifierLevel = Exclude<Level<'identifier'>, 'missing'>;
/**
 * The comparison vector: a level per field and, for identifiers, a level per system both records carry
 * (`identifier` is the best of them, which the vetoes read; the score weighs each system on its own).
 */
export type ComparisonVector = { [F in Field]: Level<F> } & {
  identifierSystems?: Record<string, IdentifierLevel>;
  /** The value both records bear where a field weighed by its frequency agrees (term-frequencies.ts). */
  agreed?: Partial<Record<TermField, string>>;
};
export const FIELDS = Object.keys(FIELD_LEVELS) as Field[];

const SIMILAR_NAME = 0.92;

/**
 * Names alike enough to be one name mistyped: Jaro-Winkler at least SIMILAR_NAME, or one keystroke apart
 * (dropped, doubled, swapped or replaced letter) in a name of four letters or more, which Jaro-Winkler
 * rates low when the slip is early in a short name ("james" / "jkmes" 0.88, "smith" / "smuth" 0.89).
 */
function similarNames(x: string, y: string): boolean {
  return jaroWinkler(x, y) >= SIMILAR_NAME || (Math.min(x.length, y.length) >= 4 && damerauLevenshtein(x, y) === 1);
}
const SIMILAR_STREET = 0.9;

export function compareFeatures(a: PersonFeatures, b: PersonFeatures): ComparisonVector {
  const names = compareNames(a, b);
  const vector: ComparisonVector = {
    ...names,
    middleInitial: a.middleInitial && b.middleInitial ? (a.middleInitial === b.middleInitial ? 'same' : 'different') : 'missing',
    birthDate: a.birthDate && b.birthDate ? compareBirthDates(a.birthDate, b.birthDate) : 'missing',
    gender: a.gender && b.gender ? (a.gender === b.gender ? 'same' : 'different') : 'missing',
    ssn: a.ssn && b.ssn ? (a.ssn === b.ssn ? 'exact' : damerauLevenshtein(a.ssn, b.ssn) === 1 ? 'one-edit' : 'different') : 'missing',
    ...compareIdentifiers(a.identifiers ?? {}, b.identifiers ?? {}),
    phone: a.phones.length && b.phones.length ? (a.phones.some((p) => b.phones.includes(p)) ? 'shared' : 'different') : 'missing',
    email: a.emails?.length && b.emails?.length ? (a.emails.some((e) => b.emails?.includes(e)) ? 'shared' : 'different') : 'missing',
    postalCode: a.postalCode && b.postalCode ? (a.postalCode === b.postalCode ? 'same' : 'different') : 'missing',
    street: a.street && b.street ? compareStreets(a.street, b.street) : 'missing',
    // The town says again what the postal code says: weighed only where a postal code is missing, so the
    // same fact is not counted twice.
    locality: a.locality && b.locality && !(a.postalCode && b.postalCode) ? (a.locality === b.locality || similarNames(a.locality, b.locality) ? 'same' : 'different') : 'missing',
    // Only a suffix on both sides is evidence: Jr against Sr is a different person; Jr against none is not.
    suffix: a.suffix && b.suffix ? (a.suffix === b.suffix ? 'same' : 'different') : 'missing',
  };
  const agreed = agreedTerms(a, vector);
  return agreed ? { ...vector, agreed } : vector;
}

/** The values a 'same' postal code or locality agrees on, for their frequency weights. */
function agreedTerms(a: PersonFeatures, vector: ComparisonVector): ComparisonVector['agreed'] {
  let agreed: ComparisonVector['agreed'];
  for (const field of TERM_FIELDS) {
    const value = a[field];
    if (vector[field] === 'same' && value) (agreed ??= {})[field] = value;
  }
  return agreed;
}

/**
 * Names as written, or given and family swapped (a clerk who filled the fields the other way round):
 * whichever reading agrees better. Swapping costs nothing when the names are the same either way.
 */
function compareNames(a: PersonFeatures, b: PersonFeatures): Pick<ComparisonVector, 'surname' | 'firstName'> {
  const straight = { surname: compareSurnames(a, b), firstName: compareFirstNames(a, b) };
  const swapped = swapNames(b);
  if (!swapped || straight.firstName === 'exact' || straight.surname === 'exact') {
    return straight;
  }
  const crosswise = { surname: compareSurnames(a, swapped), firstName: compareFirstNames(a, swapped) };
  const rank = (v: typeof straight) => FIELD_LEVELS.surname.indexOf(v.surname as never) + FIELD_LEVELS.firstName.indexOf(v.firstName as never);
  return crosswise.surname !== 'missing' && crosswise.firstName !== 'missing' && rank(crosswise) < rank(straight) ? crosswise : straight;
}

/** The record read with its first given name as the surname and its surname as the given name. */
function swapNames(f: PersonFeatures): PersonFeatures | undefined {
  const [first] = f.firstNames;
  const [surname] = f.surnames;
  if (!first || first.length < 2 || !surname) {
    return undefined;
  }
  return { ...f, surnames: [{ full: first, parts: [first] }], firstNames: [surname.parts.join('')], givenJoined: surname.parts.join('') };
}

/**
 * Identifiers compared system by system: the same value under one system is the strongest evidence;
 * one keystroke apart, a typing error; different values under one system, two people (or a reissued
 * number). Values under different systems say nothing. Each system keeps its own level (its weight is
 * learned on its own); `identifier` is the best of them.
 */
function compareIdentifiers(a: Record<string, string>, b: Record<string, string>): Pick<ComparisonVector, 'identifier' | 'identifierSystems'> {
  let best: Level<'identifier'> = 'missing';
  const systems: Record<string, IdentifierLevel> = {};
  for (const [system, value] of Object.entries(a)) {
    const other = b[system];
    if (other === undefined) continue;
    const level: IdentifierLevel = other === value ? 'exact' : damerauLevenshtein(value, other) === 1 ? 'one-edit' : 'different';
    systems[system] = level;
    if (best === 'missing' || FIELD_LEVELS.identifier.indexOf(level) < FIELD_LEVELS.identifier.indexOf(best)) best = level;
  }
  return best === 'missing' ? { identifier: best } : { identifier: best, identifierSystems: systems };
}

/**
 * Neighbours share a street name but not a house number: "12 elm street" and "48 elm street" are
 * different addresses however alike the text (Jaro-Winkler rates them about 0.9).
 */
function compareStreets(a: string, b: string): Level<'street'> {
  const [numberA, numberB] = [/^\d+\w?\b/.exec(a)?.[0], /^\d+\w?\b/.exec(b)?.[0]];
  if (numberA && numberB && numberA !== numberB) {
    return 'different';
  }
  return jaroWinkler(a, b) >= SIMILAR_STREET ? 'similar' : 'different';
}

/** The best agreement between any surname of one record and any of the other (maiden names, compounds). */
function compareSurnames(a: PersonFeatures, b: PersonFeatures): Level<'surname'> {
  if (!a.surnames.length || !b.surnames.length) {
    return 'missing';
  }
  let best: Level<'surname'> = 'different';
  const rank = FIELD_LEVELS.surname;
  for (const x of a.surnames) {
    for (const y of b.surnames) {
      let level: Level<'surname'> = 'different';
      if (x.full === y.full || x.parts.join('') === y.parts.join('')) {
        level = 'exact';
      } else if (x.parts.some((p) => y.parts.includes(p))) {
        level = 'compound-part';
      } else if (similarNames(x.parts.join(''), y.parts.join(''))) {
        level = 'similar';
      } else if (soundAlike(x.parts.join(''), y.parts.join(''))) {
        level = 'sound-alike';
      }
      if (rank.indexOf(level) < rank.indexOf(best as (typeof rank)[number])) {
        best = level;
      }
    }
  }
  return best;
}

function compareFirstNames(fa: PersonFeatures, fb: PersonFeatures): Level<'firstName'> {
  const [a, b] = [fa.firstNames, fb.firstNames];
  if (!a.length || !b.length) {
    return 'missing';
  }
  // "kate lin" and "katelin": one name written with and without a space or hyphen.
  const joined = [fa.givenJoined ?? a[0], fb.givenJoined ?? b[0]];
  if (joined[0] === joined[1] || (joined[0].length > a[0].length && joined[0] === b[0]) || (joined[1].length > b[0].length && joined[1] === a[0])) {
    return 'exact';
  }
  const rank = FIELD_LEVELS.firstName;
  let best: Level<'firstName'> = 'different';
  for (const x of a) {
    for (const y of b) {
      let level: Level<'firstName'> = 'different';
      if (x === y) {
        level = 'exact';
      } else if (areNicknames(x, y)) {
        level = 'nickname';
      } else if (similarNames(x, y)) {
        level = 'similar';
      } else if ((x.length === 1 || y.length === 1) && x[0] === y[0]) {
        level = 'initial';
      } else if (soundAlike(x, y)) {
        level = 'sound-alike';
      }
      if (rank.indexOf(level) < rank.indexOf(best as (typeof rank)[number])) {
        best = level;
      }
    }
  }
  return best;
}
