import type { Thresholds } from './match-model.js';

/**
 * What a deployment asks of its links, from which the thresholds follow (`tessera mpi train
 * --target-precision`): the expected share of automatic links that are one person, and the expected
 * share of true matches among candidates that either link or reach a steward.
 */
export interface PosteriorTargets {
  precision: number;
  recall: number;
}

export const DEFAULT_TARGETS: PosteriorTargets = { precision: 0.999, recall: 0.995 };

/** A pair's posterior probability of being one person, from its score and the prior log2-odds of a match among candidates. */
export function posterior(score: number, priorLogOdds: number): number {
  return 1 / (1 + 2 ** -(score + priorLogOdds));
}

/**
 * Thresholds read off the posterior match probabilities of the candidate pairs the model was trained
 * on (each pair's score under the trained model plus the prior odds of a match among candidates):
 * - auto-link at the lowest score where the pairs at or above it are, in expectation, `precision`
 *   one person (the sum of their posteriors over their number): the target is met by the links as a
 *   whole, not by each pair;
 * - review from the highest score where the pairs at or above it hold `recall` of the expected
 *   matches: below it lie, in expectation, fewer than 1 - recall of them. The band between holds the
 *   pairs the model is unsure of, and the queue is as long as the data makes it, no longer.
 * Where no pair meets the precision target, auto-link falls back to the posterior itself reaching it.
 */
export function thresholdsFromPosterior(scores: number[], priorLogOdds: number, targets: PosteriorTargets = DEFAULT_TARGETS): Thresholds {
  const sorted = [...scores].sort((a, b) => b - a);
  const p = sorted.map((s) => posterior(s, priorLogOdds));
  const expectedMatches = p.reduce((a, b) => a + b, 0);
  let autoLink = Math.log2(targets.precision / (1 - targets.precision)) - priorLogOdds;
  let matches = 0;
  for (let i = 0; i < sorted.length; i++) {
    matches += p[i];
    // Ties: a threshold is a score, so it takes every pair of that score or none.
    if (i + 1 < sorted.length && sorted[i + 1] === sorted[i]) continue;
    if (matches / (i + 1) >= targets.precision) autoLink = Math.min(autoLink, sorted[i]);
    else break;
  }
  let review = autoLink;
  let reached = 0;
  for (let i = 0; i < sorted.length; i++) {
    reached += p[i];
    if (sorted[i] < autoLink) review = sorted[i];
    if (reached >= targets.recall * expectedMatches) break;
  }
  return { autoLink, review: Math.min(review, autoLink) };
}
