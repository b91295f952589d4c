import { FIELD_LEVELS, FIELDS, type ComparisonVector } from './comparison.js';
import type { Probabilities } from './match-model.js';

export interface TrainingResult {
  probabilities: Probabilities;
  /** Estimated share of candidate pairs that are matches. */
  matchShare: number;
  iterations: number;
}

/** Pseudo-count that keeps every probability away from 0 and 1 (a level unseen in training stays possible). */
const SMOOTHING = 0.5;

/**
 * Estimates m and u for every field and level from unlabelled candidate pairs (those that share a
 * blocking key) by expectation-maximisation, under the model's assumption that fields agree independently
 * given match status. Starts from `start` (the priors or the last trained model), so the two latent
 * classes keep their meaning: the class with the higher m for exact agreement stays "match".
 * Identical vectors are counted once with a weight, which keeps a run over a million pairs quick.
 */
export function trainEm(pairs: ComparisonVector[], start: Probabilities, options: { maxIterations?: number; tolerance?: number } = {}): TrainingResult {
  const maxIterations = options.maxIterations ?? 200;
  const tolerance = options.tolerance ?? 1e-6;
  const patterns = new Map<string, { vector: ComparisonVector; count: number }>();
  for (const vector of pairs) {
    const key = FIELDS.map((f) => vector[f]).join('|');
    const entry = patterns.get(key);
    if (entry) entry.count++;
    else patterns.set(key, { vector, count: 1 });
  }
  let probabilities = structuredClone(start);
  let matchShare = 0.1;
  let iterations = 0;
  for (; iterations < maxIterations; iterations++) {
    const mCounts = emptyCounts();
    const uCounts = emptyCounts();
    let matchWeight = 0;
    let total = 0;
    for (const { vector, count } of patterns.values()) {
      let logM = Math.log(matchShare);
      let logU = Math.log(1 - matchShare);
      for (const field of FIELDS) {
        const level = vector[field];
        if (level !== 'missing') {
          logM += Math.log(probabilities[field][level].m);
          logU += Math.log(probabilities[field][level].u);
        }
      }
      const g = 1 / (1 + Math.exp(logU - logM));
      matchWeight += g * count;
      total += count;
      for (const field of FIELDS) {
        const level = vector[field];
        if (level !== 'missing') {
          mCounts[field][level] += g * count;
          uCounts[field][level] += (1 - g) * count;
        }
      }
    }
    const next = normalise(mCounts, uCounts);
    const nextShare = Math.min(Math.max(matchWeight / total, 1e-6), 1 - 1e-6);
    const change = maxChange(probabilities, next) + Math.abs(nextShare - matchShare);
    probabilities = next;
    matchShare = nextShare;
    if (change < tolerance) {
      iterations++;
      break;
    }
  }
  return { probabilities, matchShare, iterations };
}

function emptyCounts(): Record<string, Record<string, number>> {
  return Object.fromEntries(FIELDS.map((f) => [f, Object.fromEntries(FIELD_LEVELS[f].map((l) => [l, SMOOTHING]))]));
}

function normalise(m: Record<string, Record<string, number>>, u: Record<string, Record<string, number>>): Probabilities {
  const out: Record<string, Record<string, { m: number; u: number }>> = {};
  for (const field of FIELDS) {
    const mTotal = Object.values(m[field]).reduce((a, b) => a + b, 0);
    const uTotal = Object.values(u[field]).reduce((a, b) => a + b, 0);
    out[field] = Object.fromEntries(FIELD_LEVELS[field].map((l) => [l, { m: m[field][l] / mTotal, u: u[field][l] / uTotal }]));
  }
  return out as Probabilities;
}

function maxChange(a: Probabilities, b: Probabilities): number {
  let max = 0;
  for (const field of FIELDS) {
    for (const level of FIELD_LEVELS[field]) {
      max = Math.max(max, Math.abs(a[field][level].m - b[field][level].m), Math.abs(a[field][level].u - b[field][level].u));
    }
  }
  return max;
}
