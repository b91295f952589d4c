import { FIELD_LEVELS, FIELDS } from '../mpi/comparison.js';
import type { Probabilities } from '../mpi/match-model.js';

/** A table of each field level's weight (log2 m/u) before and after training, for an operator to judge. */
export function formatModelChange(before: Probabilities, after: Probabilities): string {
  const weight = (p: Probabilities, field: (typeof FIELDS)[number], level: string): string => {
    const { m, u } = p[field][level];
    return Math.log2(m / u).toFixed(2).padStart(7);
  };
  const lines = ['field          level           before    after'];
  for (const field of FIELDS) {
    for (const level of FIELD_LEVELS[field]) {
      lines.push(`${field.padEnd(14)} ${level.padEnd(14)} ${weight(before, field, level)}  ${weight(after, field, level)}`);
    }
  }
  return lines.join('\n');
}
