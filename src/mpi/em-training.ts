import { FIELD_LEVELS, FIELDS, type ComparisonVector, type Field, type IdentifierLevel } from './comparison.js';
import { combined, identifierLevelCounts, levelCounts, levelsOf, normalised, normalisedLevels, type LevelProbabilities, type SystemLevels } from './level-probabilities.js';
import type { Probabilities, SystemProbabilities } from './match-model.js';

export interface TrainingResult {
  probabilities: Probabilities;
  /** m and u of each identifier system learned on its own (`systems` of trainEm's options). */
  identifierSystems: SystemProbabilities;
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
  options: {
    maxIterations?: number;
    tolerance?: number;
    /**
     * Identifier systems learned on their own: u of each (random pairs) and where m starts. A system not
     * listed counts towards the `identifier` field, shared by every system with too few pairs of its own.
     */
    systems?: { u: SystemLevels; startM: SystemLevels };
  } = {},
): TrainingResult {
  const systemU = options.systems?.u ?? {};
  let systemM: SystemLevels = structuredClone(options.systems?.startM ?? {});
  const maxIterations = options.maxIterations ?? 500;
  const tolerance = options.tolerance ?? 1e-7;
  const patterns = new Map<string, { vector: ComparisonVector; count: number }>();
  for (const vector of pairs) {
    const systems = Object.entries(vector.identifierSystems ?? {}).sort(([a], [b]) => (a < b ? -1 : 1));
    const key = `${FIELDS.map((f) => vector[f]).join('|')}|${systems.map(([s, l]) => `${s}=${l}`).join('|')}`;
    const entry = patterns.get(key);
    if (entry) entry.count++;
    else patterns.set(key, { vector, count: 1 });
  }
  let m = levelsOf(startM, 'm');
  let matchShare = 0.1;
  let iterations = 0;
  for (; iterations < maxIterations; iterations++) {
    const mCounts = levelCounts(SMOOTHING);
    const systemCounts = Object.fromEntries(Object.keys(systemU).map((system) => [system, identifierLevelCounts(SMOOTHING)]));
    let matchWeight = 0;
    let total = 0;
    const priorLogOdds = Math.log(matchShare / (1 - matchShare)) + Math.log(sharedKeyShare);
    // Each field's level, identifiers one per system: a learned system's own table, else the shared field's.
    const columns = (vector: ComparisonVector, visit: (table: 'own' | Field, level: string, system?: string) => void) => {
      for (const field of FIELDS) {
        const level = vector[field];
        if (level === 'missing') continue;
        if (field === 'identifier' && vector.identifierSystems) {
          for (const [system, l] of Object.entries(vector.identifierSystems)) {
            if (systemU[system]) visit('own', l, system);
            else visit('identifier', l);
          }
        } else {
          visit(field, level);
        }
      }
    };
    for (const { vector, count } of patterns.values()) {
      let logOdds = priorLogOdds;
      columns(vector, (table, level, system) => {
        logOdds += table === 'own' ? Math.log(systemM[system as string][level as IdentifierLevel] / systemU[system as string][level as IdentifierLevel]) : Math.log(m[table][level] / u[table][level]);
      });
      const g = 1 / (1 + Math.exp(-logOdds));
      matchWeight += g * count;
      total += count;
      columns(vector, (table, level, system) => {
        if (table === 'own') systemCounts[system as string][level as IdentifierLevel] += g * count;
        else mCounts[table][level] += g * count;
      });
    }
    const next = atMostU(normalised(mCounts), u);
    const nextSystems = systemsAtMostU(Object.fromEntries(Object.entries(systemCounts).map(([system, c]) => [system, normalisedLevels(c)])), systemU);
    const nextShare = Math.min(Math.max(matchWeight / total, 1e-6), 1 - 1e-6);
    const change = maxChange(m, next) + maxSystemChange(systemM, nextSystems) + Math.abs(nextShare - matchShare);
    m = next;
    systemM = nextSystems;
    matchShare = nextShare;
    if (change < tolerance) {
      iterations++;
      break;
    }
  }
  const identifierSystems = Object.fromEntries(
    Object.entries(systemM).map(([system, levels]) => [system, Object.fromEntries(FIELD_LEVELS.identifier.map((l) => [l, { m: levels[l], u: systemU[system][l] }]))]),
  ) as SystemProbabilities;
  return { probabilities: combined(m, u), identifierSystems, matchShare, iterations };
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
  identifier: ['different'],
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

/** The same for each identifier system: a number that differs under one system is never evidence for a match. */
function systemsAtMostU(m: SystemLevels, u: SystemLevels): SystemLevels {
  for (const system of Object.keys(m)) m[system].different = Math.min(m[system].different, u[system].different);
  return m;
}

function maxSystemChange(a: SystemLevels, b: SystemLevels): number {
  let max = 0;
  for (const system of Object.keys(b)) {
    for (const level of FIELD_LEVELS.identifier) max = Math.max(max, Math.abs((a[system]?.[level] ?? 0) - b[system][level]));
  }
  return max;
}

function maxChange(a: LevelProbabilities, b: LevelProbabilities): number {
  let max = 0;
  for (const field of FIELDS) {
    for (const level of FIELD_LEVELS[field]) max = Math.max(max, Math.abs(a[field][level] - b[field][level]));
  }
  return max;
}
