import { FIELD_LEVELS, FIELDS, type ComparisonVector, type Field } from './comparison.js';
import { combined, levelCounts, levelsOf, normalised, type LevelProbabilities } from './level-probabilities.js';
import type { Probabilities } from './match-model.js';

export interface TrainingResult {
  probabilities: Probabilities;
  /** Estimated share of candidate pairs that are matches: the prior odds of a match before any field is compared. */
  matchShare: number;
  iterations: number;
}

/** Pseudo-count that keeps every m away from 0 (a level unseen in training stays possible). */
const SMOOTHING = 0.5;

/**
 * Estimates m for every field and level, and the share of matches, from unlabelled candidate pairs (pairs
 * that share a blocking key, as the linker compares them) by expectation-maximisation under the model's
 * assumption that fields agree independently given match status. u is held at `u`, measured on random
 * pairs (u-estimation.ts): candidate pairs agree on their blocking fields by construction, so EM's own u
 * for those fields comes out near m and the weights lose their meaning (+10 for two different birth
 * dates, in the first version that estimated both). The same selection is why `sharedKeyShare` is needed:
 * two strangers are candidates only with that probability (a true match nearly always is), so among
 * candidates a vector's likelihood as strangers is u / sharedKeyShare. Without it every candidate pair
 * looks far likelier a match than the random-pair u's allow, and EM calls them all matches.
 * Starts from `startM` (the priors or the last model). Identical vectors are counted once with a weight,
 * which keeps a run over a million pairs quick.
 */
export function trainEm(
  pairs: ComparisonVector[],
  startM: Probabilities,
  u: LevelProbabilities,
  sharedKeyShare: number,
  options: { maxIterations?: number; tolerance?: number } = {},
): TrainingResult {
  const maxIterations = options.maxIterations ?? 500;
  const tolerance = options.tolerance ?? 1e-7;
  const patterns = new Map<string, { vector: ComparisonVector; count: number }>();
  for (const vector of pairs) {
    const key = FIELDS.map((f) => vector[f]).join('|');
    const entry = patterns.get(key);
    if (entry) entry.count++;
    else patterns.set(key, { vector, count: 1 });
  }
  let m = levelsOf(startM, 'm');
  let matchShare = 0.1;
  let iterations = 0;
  for (; iterations < maxIterations; iterations++) {
    const mCounts = levelCounts(SMOOTHING);
    let matchWeight = 0;
    let total = 0;
    const priorLogOdds = Math.log(matchShare / (1 - matchShare)) + Math.log(sharedKeyShare);
    for (const { vector, count } of patterns.values()) {
      let logOdds = priorLogOdds;
      for (const field of FIELDS) {
        const level = vector[field];
        if (level !== 'missing') logOdds += Math.log(m[field][level] / u[field][level]);
      }
      const g = 1 / (1 + Math.exp(-logOdds));
      matchWeight += g * count;
      total += count;
      for (const field of FIELDS) {
        const level = vector[field];
        if (level !== 'missing') mCounts[field][level] += g * count;
      }
    }
    const next = atMostU(normalised(mCounts), u);
    const nextShare = Math.min(Math.max(matchWeight / total, 1e-6), 1 - 1e-6);
    const change = maxChange(m, next) + Math.abs(nextShare - matchShare);
    m = next;
    matchShare = nextShare;
    if (change < tolerance) {
      iterations++;
      break;
    }
  }
  return { probabilities: combined(m, u), matchShare, iterations };
}

/**
 * Levels that say the two records disagree. However EM apportions the pairs, such a level is never
 * evidence *for* a match: its m is held at or below its u (weight <= 0). Without this, EM's match class
 * takes in look-alike strangers (the same common name in one decade, fathers and sons) and learned, on
 * the 100,000-person evaluation, that 40 % of matches have birth dates agreeing in the year only
 * (weight +5.3), which sent thousands of such strangers to review. The weights only use m / u, so the
 * capped m's need not sum to one.
 */
export const DISAGREEMENT_LEVELS: { [F in Field]?: string[] } = {
  surname: ['sound-alike', 'different'],
  firstName: ['initial', 'sound-alike', 'different'],
  middleInitial: ['different'],
  birthDate: ['year-only', 'different'],
  gender: ['different'],
  ssn: ['different'],
  phone: ['different'],
  postalCode: ['different'],
  street: ['different'],
  suffix: ['different'],
};

function atMostU(m: LevelProbabilities, u: LevelProbabilities): LevelProbabilities {
  for (const field of FIELDS) {
    for (const level of DISAGREEMENT_LEVELS[field] ?? []) m[field][level] = Math.min(m[field][level], u[field][level]);
  }
  return m;
}

function maxChange(a: LevelProbabilities, b: LevelProbabilities): number {
  let max = 0;
  for (const field of FIELDS) {
    for (const level of FIELD_LEVELS[field]) max = Math.max(max, Math.abs(a[field][level] - b[field][level]));
  }
  return max;
}
