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
  postalCode: { same: { m: 0.8, u: 0.05 }, different: { m: 0.2, u: 0.95 } },
  street: { similar: { m: 0.7, u: 0.01 }, different: { m: 0.3, u: 0.99 } },
  suffix: { same: { m: 0.95, u: 0.5 }, different: { m: 0.05, u: 0.5 } },
};

export interface Thresholds {
  /** At or above: link automatically (unless a veto applies). */
  autoLink: number;
  /** At or above (and below autoLink, or vetoed): a possible match for a data steward. */
  review: number;
}

export const DEFAULT_THRESHOLDS: Thresholds = { autoLink: 20, review: 8 };

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
    } else if (score >= this.thresholds.review) {
      outcome = 'review';
    }
    return { outcome, score, contributions, vetoes };
  }
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
  return vetoes;
}
