import { areNicknames } from './nicknames.js';
import type { PersonFeatures } from './features.js';
import { compareBirthDates, damerauLevenshtein, jaroWinkler, soundAlike } from './similarity.js';

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
  phone: ['shared', 'different'],
  postalCode: ['same', 'different'],
  street: ['similar', 'different'],
  suffix: ['same', 'different'],
} as const;

export type Field = keyof typeof FIELD_LEVELS;
export type Level<F extends Field = Field> = (typeof FIELD_LEVELS)[F][number] | 'missing';
export type ComparisonVector = { [F in Field]: Level<F> };
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
  return {
    surname: compareSurnames(a, b),
    firstName: compareFirstNames(a.firstNames, b.firstNames),
    middleInitial: a.middleInitial && b.middleInitial ? (a.middleInitial === b.middleInitial ? 'same' : 'different') : 'missing',
    birthDate: a.birthDate && b.birthDate ? compareBirthDates(a.birthDate, b.birthDate) : 'missing',
    gender: a.gender && b.gender ? (a.gender === b.gender ? 'same' : 'different') : 'missing',
    ssn: a.ssn && b.ssn ? (a.ssn === b.ssn ? 'exact' : damerauLevenshtein(a.ssn, b.ssn) === 1 ? 'one-edit' : 'different') : 'missing',
    phone: a.phones.length && b.phones.length ? (a.phones.some((p) => b.phones.includes(p)) ? 'shared' : 'different') : 'missing',
    postalCode: a.postalCode && b.postalCode ? (a.postalCode === b.postalCode ? 'same' : 'different') : 'missing',
    street: a.street && b.street ? compareStreets(a.street, b.street) : 'missing',
    // Only a suffix on both sides is evidence: Jr against Sr is a different person; Jr against none is not.
    suffix: a.suffix && b.suffix ? (a.suffix === b.suffix ? 'same' : 'different') : 'missing',
  };
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
      if (x.full === y.full || x.parts.join(' ') === y.parts.join(' ')) {
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

function compareFirstNames(a: string[], b: string[]): Level<'firstName'> {
  if (!a.length || !b.length) {
    return 'missing';
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
