import type { Random } from '../synthetic/random.js';
import { blockingKeys } from './blocking.js';
import { compareFeatures, FIELD_LEVELS, FIELDS } from './comparison.js';
import type { PersonFeatures } from './features.js';
import { identifierLevelCounts, levelCounts, normalised, normalisedLevels, type LevelProbabilities, type SystemLevels } from './level-probabilities.js';
import type { IdentifierLevel } from './comparison.js';

/** Pseudo-count per level: a level never seen among random pairs (two equal SSNs) stays possible, just rare. */
const SMOOTHING = 0.5;

/**
 * How often random pairs of records agree at each level of each field: u, how often two records of
 * *different* people agree that way, once the few same-person pairs among them are taken out
 * (withoutMatches). Pairs that share a blocking key would not do: they agree on the blocking fields by
 * construction, which is what made EM's own u estimates on them useless (docs/matching.md).
 */
export function estimateU(records: PersonFeatures[], pairs: number, random: Random): RandomPairStatistics {
  if (records.length < 2) {
    throw new Error('estimating u needs at least two records');
  }
  const keys = records.map((r) => new Set(blockingKeys(r)));
  const counts = levelCounts(SMOOTHING);
  const systemCounts: Record<string, Record<IdentifierLevel, number>> = {};
  const observed = new Map<string, number>();
  let sharingKey = SMOOTHING;
  for (let n = 0; n < pairs; n++) {
    const i = Math.floor(random.next() * records.length);
    let j = Math.floor(random.next() * (records.length - 1));
    if (j >= i) j++; // never a record with itself
    const vector = compareFeatures(records[i], records[j]);
    for (const field of FIELDS) {
      const level = vector[field];
      if (level === 'missing') continue;
      counts[field][level]++;
      observed.set(field, (observed.get(field) ?? 0) + 1);
    }
    for (const [system, level] of Object.entries(vector.identifierSystems ?? {})) {
      (systemCounts[system] ??= identifierLevelCounts(SMOOTHING))[level]++;
      observed.set(system, (observed.get(system) ?? 0) + 1);
    }
    for (const key of keys[i]) {
      if (keys[j].has(key)) {
        sharingKey++;
        break;
      }
    }
  }
  const systemFrequencies = Object.fromEntries(Object.entries(systemCounts).map(([system, c]) => [system, normalisedLevels(c)]));
  return { frequencies: normalised(counts), systemFrequencies, observed, sharedKeyShare: sharingKey / (pairs + SMOOTHING) };
}

export interface RandomPairStatistics {
  /** Per field, how often random pairs agree at each level (u, once withoutMatches takes the same-person pairs out). */
  frequencies: LevelProbabilities;
  /** The same per identifier system, for each system some random pair carried on both sides. */
  systemFrequencies: SystemLevels;
  /** How many random pairs had each field (or identifier system) on both sides: too few, and u is not learned. */
  observed: Map<string, number>;
  /**
   * The share of random pairs that share a blocking key, i.e. would be candidates: the linker and EM only
   * ever see those, so two strangers' comparison vector, given that they are candidates, is u / this share.
   */
  sharedKeyShare: number;
}

/**
 * u from the random-pair frequencies `f`: a random pair is the same person with probability
 * `matchShare` (about one in the number of records; not negligible in a small index, where it would
 * make an exact SSN or birth date look common among strangers), so f = share x m + (1 - share) x u.
 * Floored at `floor` so that no level becomes impossible.
 */
export function withoutMatches(f: LevelProbabilities, m: LevelProbabilities, matchShare: number, floor: number): LevelProbabilities {
  const strangers = levelCounts(0);
  for (const field of FIELDS) {
    for (const l of FIELD_LEVELS[field]) strangers[field][l] = Math.max(floor, (f[field][l] - matchShare * m[field][l]) / (1 - matchShare));
  }
  return normalised(strangers);
}

/** withoutMatches for each identifier system learned on its own. */
export function systemsWithoutMatches(f: SystemLevels, m: SystemLevels, matchShare: number, floor: number): SystemLevels {
  return Object.fromEntries(
    Object.entries(m).map(([system, levels]) => {
      const strangers = identifierLevelCounts(0);
      for (const l of FIELD_LEVELS.identifier) strangers[l] = Math.max(floor, (f[system][l] - matchShare * levels[l]) / (1 - matchShare));
      return [system, normalisedLevels(strangers)];
    }),
  );
}
