import { FIELD_LEVELS, FIELDS } from '../mpi/comparison.js';
import type { Probabilities, Thresholds } from '../mpi/match-model.js';

interface ModelView {
  probabilities: Probabilities;
  thresholds: Thresholds;
}

/** A table of each field level's m, u and weight (log2 m/u) before and after training, and the thresholds, for an operator to judge. */
export function formatModelChange(before: ModelView, after: ModelView): string {
  const cell = (p: Probabilities, field: (typeof FIELDS)[number], level: string): string => {
    const { m, u } = p[field][level];
    return `${m.toFixed(4).padStart(7)} ${u.toExponential(1).padStart(8)} ${Math.log2(m / u).toFixed(2).padStart(7)}`;
  };
  const lines = [`${'field'.padEnd(14)} ${'level'.padEnd(14)} ${'before: m'.padStart(9)} ${'u'.padStart(8)} ${'weight'.padStart(7)}   ${'after: m'.padStart(8)} ${'u'.padStart(8)} ${'weight'.padStart(7)}`];
  for (const field of FIELDS) {
    for (const level of FIELD_LEVELS[field]) {
      lines.push(`${field.padEnd(14)} ${level.padEnd(14)}   ${cell(before.probabilities, field, level)}   ${cell(after.probabilities, field, level)}`);
    }
  }
  const t = (x: Thresholds) => `auto-link ${x.autoLink.toFixed(1)}, review ${x.review.toFixed(1)}`;
  lines.push(`thresholds (score): before ${t(before.thresholds)}; after ${t(after.thresholds)}`);
  return lines.join('\n');
}
