import { doubleMetaphone } from 'double-metaphone';
import type { BirthDate } from './normalize.js';

/**
 * String and date similarity used by the match model. Jaro-Winkler for names (it rewards agreeing
 * prefixes, where typing errors are rarest), Damerau-Levenshtein for short codes, Double Metaphone for
 * names that sound alike but are spelled apart (Smith / Smyth, Catherine / Kathryn).
 */

export function jaroWinkler(a: string, b: string): number {
  if (a === b) {
    return a ? 1 : 0;
  }
  if (!a || !b) {
    return 0;
  }
  const window = Math.max(0, Math.floor(Math.max(a.length, b.length) / 2) - 1);
  const aMatched = new Array<boolean>(a.length).fill(false);
  const bMatched = new Array<boolean>(b.length).fill(false);
  let matches = 0;
  for (let i = 0; i < a.length; i++) {
    for (let j = Math.max(0, i - window); j < Math.min(b.length, i + window + 1); j++) {
      if (!bMatched[j] && a[i] === b[j]) {
        aMatched[i] = bMatched[j] = true;
        matches++;
        break;
      }
    }
  }
  if (!matches) {
    return 0;
  }
  let transpositions = 0;
  for (let i = 0, j = 0; i < a.length; i++) {
    if (aMatched[i]) {
      while (!bMatched[j]) j++;
      if (a[i] !== b[j]) transpositions++;
      j++;
    }
  }
  const jaro = (matches / a.length + matches / b.length + (matches - transpositions / 2) / matches) / 3;
  let prefix = 0;
  while (prefix < 4 && prefix < a.length && prefix < b.length && a[prefix] === b[prefix]) prefix++;
  return jaro + prefix * 0.1 * (1 - jaro);
}

/** Edits (insert, delete, substitute, swap two adjacent characters) that turn `a` into `b`. */
export function damerauLevenshtein(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/** Both Double Metaphone codes of a name (primary, alternate). */
export function phoneticCodes(name: string): [string, string] {
  return doubleMetaphone(name) as [string, string];
}

/** True when any code of one name equals any code of the other. */
export function soundAlike(a: string, b: string): boolean {
  if (!a || !b) {
    return false;
  }
  const [a1, a2] = phoneticCodes(a);
  const [b1, b2] = phoneticCodes(b);
  return !!a1 && (a1 === b1 || a1 === b2 || (!!a2 && (a2 === b1 || a2 === b2)));
}

/** How two birth dates agree, from strongest to weakest evidence of the same person. */
export type DateAgreement = 'exact' | 'transposed' | 'one-digit' | 'year-only' | 'different';

/**
 * Compares birth dates the way registration errors happen: day and month swapped (03/04 for 04/03), one
 * mistyped digit anywhere, or only the year agreeing.
 */
export function compareBirthDates(a: BirthDate, b: BirthDate): DateAgreement {
  if (a.year === b.year && a.month === b.month && a.day === b.day) {
    return 'exact';
  }
  if (a.year === b.year && a.month === b.day && a.day === b.month) {
    return 'transposed';
  }
  // One digit mistyped, or one day off (a date of birth shifted across midnight by a time-zone conversion).
  // Not when the slip moves the year by a decade or more: that is how a father and a son born on the same
  // day of the year look, and a false merge is worse than a missed link.
  const oneDigit = damerauLevenshtein(dateDigits(a), dateDigits(b)) === 1 && Math.abs(a.year - b.year) < 10;
  if (oneDigit || (a.year === b.year && a.month === b.month && Math.abs(a.day - b.day) === 1)) {
    return 'one-digit';
  }
  return a.year === b.year ? 'year-only' : 'different';
}

function dateDigits(d: BirthDate): string {
  return `${d.year}${String(d.month).padStart(2, '0')}${String(d.day).padStart(2, '0')}`;
}
