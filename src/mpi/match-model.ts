import { FIELD_LEVELS, FIELDS, type ComparisonVector, type Field } from './comparison.js';

/**
 * Fellegi-Sunter record linkage. For each field and agreement level, m is the probability of that level
 * when the two records are the same person and u when they are not; the level contributes log2(m/u) to
 * the pair's score (positive: evidence for a match). `missing` contributes nothing.
 *
 * PRIORS are the hand-set starting point; `tessera mpi train` re-estimates m and u from the data with EM.
 */
export type Probabilities = { [F in Field]: Record<string, { m: number; u: number }> };

export const PRIORS: Probabilities = {
  surname: { exact: { m: 0.9, u: 0.01 }, 'compound-part': { m: 0.03, u: 0.002 }, similar: { m: 0.04, u: 0.005 }, 'sound-alike': { m: 0.01, u: 0.01 }, different: { m: 0.02, u: 0.973 } },
  firstName: {
    exact: { m: 0.85, u: 0.01 },
    nickname: { m: 0.05, u: 0.002 },
    similar: { m: 0.04, u: 0.003 },
    initial: { m: 0.02, u: 0.02 },
    'sound-alike': { m: 0.01, u: 0.01 },
    different: { m: 0.03, u: 0.955 },
  },
  middleInitial: { same: { m: 0.9, u: 0.1 }, different: { m: 0.1, u: 0.9 } },
  birthDate: { exact: { m: 0.93, u: 0.002 }, transposed: { m: 0.015, u: 0.0003 }, 'one-digit': { m: 0.03, u: 0.003 }, 'year-only': { m: 0.01, u: 0.02 }, different: { m: 0.015, u: 0.975 } },
  gender: { same: { m: 0.98, u: 0.5 }, different: { m: 0.02, u: 0.5 } },
  ssn: { exact: { m: 0.97, u: 0.00001 }, 'one-edit': { m: 0.02, u: 0.0001 }, different: { m: 0.01, u: 0.99989 } },
  phone: { shared: { m: 0.6, u: 0.001 }, different: { m: 0.4, u: 0.999 } },
  postalCode: { same: { m: 0.65, u: 0.05 }, different: { m: 0.35, u: 0.95 } },
  street: { similar: { m: 0.55, u: 0.01 }, different: { m: 0.45, u: 0.99 } },
  suffix: { same: { m: 0.95, u: 0.5 }, different: { m: 0.05, u: 0.5 } },
};

export interface Thresholds {
  /** At or above: link automatically (unless a veto applies). */
  autoLink: number;
  /** At or above (and below autoLink, or vetoed): a possible match for a data steward. */
  review: number;
}

export const DEFAULT_THRESHOLDS: Thresholds = { autoLink: 20, review: 14 };

export type MatchOutcome = 'auto-link' | 'review' | 'no-match';

export interface MatchDecision {
  outcome: MatchOutcome;
  score: number;
  /** Each field's level and the weight it contributed, for the steward's "why". */
  contributions: { field: Field; level: string; weight: number }[];
  /** Why an otherwise high score was not linked automatically. */
  vetoes: string[];
}

export class MatchModel {
  private readonly weights: { [F in Field]: Record<string, number> };

  constructor(
    readonly probabilities: Probabilities = PRIORS,
    readonly thresholds: Thresholds = DEFAULT_THRESHOLDS,
  ) {
    this.weights = Object.fromEntries(
      FIELDS.map((field) => [
        field,
        Object.fromEntries(FIELD_LEVELS[field].map((level) => {
          const { m, u } = probabilities[field][level];
          return [level, Math.log2(m / u)];
        })),
      ]),
    ) as MatchModel['weights'];
  }

  decide(vector: ComparisonVector): MatchDecision {
    const contributions = FIELDS.map((field) => {
      const level = vector[field];
      return { field, level, weight: level === 'missing' ? 0 : this.weights[field][level] };
    });
    const score = contributions.reduce((sum, c) => sum + c.weight, 0);
    const vetoes = autoLinkVetoes(vector);
    let outcome: MatchOutcome = 'no-match';
    if (score >= this.thresholds.autoLink && !vetoes.length) {
      outcome = 'auto-link';
    } else if (score >= this.thresholds.review && !contradicts(vector)) {
      outcome = 'review';
    }
    return { outcome, score, contributions, vetoes };
  }
}

/**
 * Disagreements that say "two people" outright: a first name that is no form of the other (twins and
 * siblings), different SSNs, Jr against Sr, different genders, unrelated birth dates. A pair with one of
 * these is not shown to a steward however much else agrees (a household shares the rest); softer
 * disagreements (a sound-alike name, a birth date in the same year, another surname after a marriage)
 * still are. Measured on the evaluation population (10,000 people, docs/matching.md): of the 1,067
 * pairs this keeps out of the queue, 923 were two people (twins, households) and 144 one person.
 */
function contradicts(v: ComparisonVector): boolean {
  return v.firstName === 'different' || v.ssn === 'different' || v.suffix === 'different' || v.gender === 'different' || v.birthDate === 'different';
}

/**
 * Evidence that forbids an automatic link however high the score: the independence the model assumes
 * fails exactly for twins (same surname, birth date, address and phone, different first names), fathers
 * and sons (Jr/Sr) and household members, where the shared fields add up to a high score. Such pairs go
 * to a data steward at most. Two different people merged is the worst failure of an HIE.
 */
function autoLinkVetoes(v: ComparisonVector): string[] {
  const vetoes: string[] = [];
  if (v.firstName === 'different' || v.firstName === 'sound-alike' || v.firstName === 'initial') {
    vetoes.push('first names differ');
  }
  if (v.surname === 'different' || v.surname === 'sound-alike') {
    vetoes.push('surnames differ');
  }
  if (v.birthDate === 'different' || v.birthDate === 'year-only' || v.birthDate === 'missing') {
    vetoes.push('birth dates differ or are missing');
  }
  if (v.ssn === 'different') {
    vetoes.push('SSNs differ');
  }
  if (v.suffix === 'different') {
    vetoes.push('generational suffixes differ (Jr/Sr)');
  }
  if (v.gender === 'different') {
    vetoes.push('genders differ');
  }
  if (v.middleInitial === 'different') {
    vetoes.push('middle initials differ');
  }
  const corroborated = v.phone === 'shared' || v.ssn === 'exact' || v.ssn === 'one-edit' || v.postalCode === 'same' || v.street === 'similar' || v.middleInitial === 'same';
  if (!corroborated && v.phone === 'different') {
    // Two Michael Browns born the same day are not rare in a large population: name and birth date
    // alone, against two different phone numbers, is a question for a steward. (A different address
    // alone is not: people move, and vetoing that too sent 557 more true pairs, 3.8 % of all, to review
    // in the 10,000-person evaluation.)
    vetoes.push('only name and birth date agree, and the phone numbers differ');
  }
  return vetoes;
}
