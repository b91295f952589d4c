import { FIELD_LEVELS, FIELDS } from '../mpi/comparison.js';
import type { Probabilities, SystemProbabilities, Thresholds } from '../mpi/match-model.js';
import type { PosteriorTargets } from '../mpi/posterior-thresholds.js';
import { MIN_RECORDS_TO_LEARN } from '../mpi/learn-before-rebuild.js';
import type { StoredModel } from '../mpi/model-store.js';

interface ModelView {
  probabilities: Probabilities;
  thresholds: Thresholds;
  identifierSystems?: SystemProbabilities;
  targets?: PosteriorTargets;
  notLearned?: string[];
}

const cell = (p: { m: number; u: number } | undefined): string =>
  p ? `${p.m.toFixed(4).padStart(7)} ${p.u.toExponential(1).padStart(8)} ${Math.log2(p.m / p.u).toFixed(2).padStart(7)}` : `${'(identifier)'.padStart(24)}`;

/**
 * A table of each field level's m, u and weight (log2 m/u) before and after training, identifier systems
 * learned on their own each with their rows, the thresholds and the targets they come from, and what the
 * data was too small to learn: for an operator to judge.
 */
export function formatModelChange(before: ModelView, after: ModelView): string {
  const lines = [`${'field'.padEnd(14)} ${'level'.padEnd(14)} ${'before: m'.padStart(9)} ${'u'.padStart(8)} ${'weight'.padStart(7)}   ${'after: m'.padStart(8)} ${'u'.padStart(8)} ${'weight'.padStart(7)}`];
  for (const field of FIELDS) {
    for (const level of FIELD_LEVELS[field]) {
      lines.push(`${field.padEnd(14)} ${level.padEnd(14)}   ${cell(before.probabilities[field][level])}   ${cell(after.probabilities[field][level])}`);
    }
  }
  const systems = [...new Set([...Object.keys(before.identifierSystems ?? {}), ...Object.keys(after.identifierSystems ?? {})])].sort();
  for (const system of systems) {
    lines.push(`identifier system ${system}`);
    for (const level of FIELD_LEVELS.identifier) {
      lines.push(`${''.padEnd(14)} ${level.padEnd(14)}   ${cell(before.identifierSystems?.[system]?.[level])}   ${cell(after.identifierSystems?.[system]?.[level])}`);
    }
  }
  const t = (x: Thresholds) => `auto-link ${x.autoLink.toFixed(1)}, review ${x.review.toFixed(1)}`;
  lines.push(`thresholds (score): before ${t(before.thresholds)}; after ${t(after.thresholds)}`);
  if (after.targets) {
    lines.push(`thresholds from the posterior match probability: links expected ${after.targets.precision} one person; links and review hold ${after.targets.recall} of the expected matches`);
  }
  if (after.notLearned?.length) {
    lines.push(`not learned (too few pairs; the starting model's m and u kept, hand priors on a first training): ${after.notLearned.join('; ')}`);
  }
  return lines.join('\n');
}

/**
 * Which model the index links with, for `tessera serve`'s start: the hand priors are a stand-in for data
 * (issue 16), so the operator is told when they are in force, whole or for the fields the data was too
 * small to learn.
 */
export function modelInForce(model: Pick<StoredModel, 'version' | 'createdAt' | 'pairs' | 'notLearned'> | undefined): string {
  if (!model) {
    return `master patient index: hand-set priors (no model learned from this index yet; \`tessera mpi rebuild\` learns one once the index holds ${MIN_RECORDS_TO_LEARN.toLocaleString('en')} source records)`;
  }
  const learned = `master patient index: model ${model.version}, learned ${new Date(model.createdAt).toISOString().slice(0, 10)} from ${model.pairs.toLocaleString('en')} candidate pairs`;
  const priors = model.notLearned.map((n) => n.split(':')[0]);
  return priors.length ? `${learned}; hand-set priors for what the data was too small to learn: ${priors.join(', ')}` : learned;
}
