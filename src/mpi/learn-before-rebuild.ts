import type { SqlExecutor } from '../store/database.js';
import { latestModel, PRIOR_MODEL, saveModel, type StoredModel } from './model-store.js';
import type { LearnRequest } from './model-learner.js';
import { DEFAULT_TARGETS, type PosteriorTargets } from './posterior-thresholds.js';
import { trainFromIndex, type TrainedModel } from './training.js';

/**
 * Fewest source records an index must hold before `tessera mpi rebuild` learns its model from them
 * (decision 0038): the size of FEBRL data set 1, the smallest sample on which the learned model was
 * measured to link better than the hand priors. Below it the model in force (the priors on a fresh
 * deployment) is kept, and the rebuild says so.
 */
export const MIN_RECORDS_TO_LEARN = 1_000;
/** Fewest candidate pairs to learn from, as `tessera mpi train` asks. */
const MIN_CANDIDATE_PAIRS = 100;
const MAX_PAIRS = 200_000;

export interface Learning {
  /** The model learned and stored, when the index held enough. */
  learned?: TrainedModel;
  /** The model in force before, for the report (the priors when none was stored). */
  before: Pick<StoredModel, 'probabilities' | 'thresholds' | 'identifierSystems'>;
  /** Why nothing was learned, when nothing was. */
  skipped?: string;
}

/**
 * The first step of `tessera mpi rebuild`: learn the model from the records the index holds (unlabelled,
 * as `tessera mpi train` does, starting from the model in force and aiming at its targets) and store it,
 * so that the relinking that follows uses it. A deployment thus moves from the priors to its own model
 * by the operation it already schedules, and the model follows the data as the index grows.
 */
export async function learnBeforeRebuild(sql: SqlExecutor): Promise<Learning> {
  const stored = await latestModel(sql);
  const before = stored ?? PRIOR_MODEL;
  const [{ n }] = await sql.query<{ n: number }>('SELECT COUNT(*) AS n FROM mpi_source');
  if (Number(n) < MIN_RECORDS_TO_LEARN) {
    return { before, skipped: `the index holds ${Number(n)} source records; the model is learned from ${MIN_RECORDS_TO_LEARN.toLocaleString('en')} on` };
  }
  const learned = await learnAndStore(sql, { start: before, targets: stored?.targets, records: Number(n) });
  if (!learned.stored) {
    return { before, skipped: `only ${learned.model.pairs} candidate pairs in the index; the model is learned from ${MIN_CANDIDATE_PAIRS} on` };
  }
  return { before, learned: learned.model };
}

/**
 * The learning step the rebuild and the model upkeep (model-upkeep.ts) share: the model learned from the
 * index's `records` source records, starting from `start` and aiming at `targets`, stored with that count
 * when it saw enough candidate pairs. `learn` runs `trainFromIndex` (the upkeep's runs it on a thread).
 */
export async function learnAndStore(
  sql: SqlExecutor,
  from: { start: Pick<StoredModel, 'probabilities' | 'identifierSystems'>; targets: PosteriorTargets | undefined; records: number },
  learn: (request: Omit<LearnRequest, 'store'>) => Promise<TrainedModel> = (request) => trainFromIndex(sql, request.startM, request.options),
): Promise<{ model: TrainedModel; stored: boolean }> {
  const model = await learn({ startM: from.start.probabilities, options: { maxPairs: MAX_PAIRS, targets: from.targets ?? DEFAULT_TARGETS, startSystems: from.start.identifierSystems } });
  if (model.pairs < MIN_CANDIDATE_PAIRS) return { model, stored: false };
  await saveModel(sql, model, from.records);
  return { model, stored: true };
}
