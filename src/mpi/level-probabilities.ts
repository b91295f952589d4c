import { FIELD_LEVELS, FIELDS, type Field, type IdentifierLevel } from './comparison.js';
import type { Probabilities } from './match-model.js';

/** One probability per field and agreement level: a model's m's, or its u's, on their own. */
export type LevelProbabilities = { [F in Field]: Record<string, number> };

/** Per field and level, a count started at `pseudoCount` (so that a level never seen stays possible). */
export function levelCounts(pseudoCount: number): Record<Field, Record<string, number>> {
  return Object.fromEntries(FIELDS.map((f) => [f, Object.fromEntries(FIELD_LEVELS[f].map((l) => [l, pseudoCount]))])) as Record<Field, Record<string, number>>;
}

/** Counts as probabilities: each field's levels divided by that field's total. */
export function normalised(counts: Record<Field, Record<string, number>>): LevelProbabilities {
  return Object.fromEntries(
    FIELDS.map((field) => {
      const total = Object.values(counts[field]).reduce((a, b) => a + b, 0);
      return [field, Object.fromEntries(FIELD_LEVELS[field].map((l) => [l, counts[field][l] / total]))];
    }),
  ) as LevelProbabilities;
}

/** A model's m's or u's. */
export function levelsOf(p: Probabilities, key: 'm' | 'u'): LevelProbabilities {
  return Object.fromEntries(FIELDS.map((f) => [f, Object.fromEntries(FIELD_LEVELS[f].map((l) => [l, p[f][l][key]]))])) as LevelProbabilities;
}

/** m's and u's put together as a model's probabilities. */
export function combined(m: LevelProbabilities, u: LevelProbabilities): Probabilities {
  return Object.fromEntries(FIELDS.map((f) => [f, Object.fromEntries(FIELD_LEVELS[f].map((l) => [l, { m: m[f][l], u: u[f][l] }]))])) as Probabilities;
}

/** Per identifier system, one probability per level (m's or u's of the systems learned on their own). */
export type SystemLevels = Record<string, Record<IdentifierLevel, number>>;

/** A fresh count per level of one identifier system, started at `pseudoCount`. */
export function identifierLevelCounts(pseudoCount: number): Record<IdentifierLevel, number> {
  return Object.fromEntries(FIELD_LEVELS.identifier.map((l) => [l, pseudoCount])) as Record<IdentifierLevel, number>;
}

/** One system's counts as probabilities. */
export function normalisedLevels<L extends string>(counts: Record<L, number>): Record<L, number> {
  const total = Object.values<number>(counts).reduce((a, b) => a + b, 0);
  return Object.fromEntries(Object.entries<number>(counts).map(([l, n]) => [l, n / total])) as Record<L, number>;
}
