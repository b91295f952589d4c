import type { SqlExecutor } from '../store/database.js';
import { completeProbabilities, DEFAULT_THRESHOLDS, MatchModel, PRIORS, type Probabilities, type SystemProbabilities, type Thresholds } from './match-model.js';
import type { PosteriorTargets } from './posterior-thresholds.js';
import type { TermFrequencies } from './term-frequencies.js';
import type { TrainedModel } from './training.js';

export interface StoredModel {
  version: number;
  createdAt: number;
  pairs: number;
  matchShare: number;
  iterations: number;
  probabilities: Probabilities;
  thresholds: Thresholds;
  /** Identifier systems learned on their own (empty in models trained before them). */
  identifierSystems: SystemProbabilities;
  /** The targets the thresholds were derived for, and what the data was too small to learn (absent in older models). */
  targets?: PosteriorTargets;
  notLearned: string[];
  /** Source records the index held when the model was learned from it (absent in models stored before model upkeep). */
  records?: number;
  /** Postal codes' and localities' frequencies among the people sampled (absent in models learned before them). */
  termFrequencies?: TermFrequencies;
}

/**
 * What a model learned beyond the field levels travels in the probabilities' JSON, beside the fields
 * (no schema change; older models simply lack it).
 */
interface StoredLearning {
  identifierSystems?: SystemProbabilities;
  targets?: PosteriorTargets;
  notLearned?: string[];
  records?: number;
  termFrequencies?: TermFrequencies;
}

/** The model in force before any was trained: the hand priors, as training starts from and reports against. */
export const PRIOR_MODEL: Pick<StoredModel, 'probabilities' | 'thresholds' | 'identifierSystems'> = { probabilities: PRIORS, thresholds: DEFAULT_THRESHOLDS, identifierSystems: {} };

/** The newest trained match model (`tessera mpi train`), or undefined while only the priors exist. */
export async function latestModel(sql: SqlExecutor): Promise<StoredModel | undefined> {
  const rows = await sql.query<{ version: number; created_at: number; probabilities: string; pairs: number; match_share: number; iterations: number; thresholds: string | null }>(
    'SELECT version, created_at, probabilities, pairs, match_share, iterations, thresholds FROM mpi_model ORDER BY version DESC LIMIT 1',
  );
  const r = rows[0];
  const json = r && (JSON.parse(r.probabilities) as Partial<Probabilities> & StoredLearning);
  return (
    r && {
      version: Number(r.version),
      createdAt: Number(r.created_at),
      pairs: Number(r.pairs),
      matchShare: Number(r.match_share),
      iterations: Number(r.iterations),
      probabilities: completeProbabilities(json),
      thresholds: r.thresholds ? (JSON.parse(r.thresholds) as Thresholds) : DEFAULT_THRESHOLDS,
      identifierSystems: json.identifierSystems ?? {},
      targets: json.targets,
      notLearned: json.notLearned ?? [],
      records: json.records,
      termFrequencies: json.termFrequencies,
    }
  );
}

/** The model the linker starts with: the newest trained one, else the hand-set priors. */
export async function currentMatchModel(sql: SqlExecutor): Promise<MatchModel> {
  const model = await latestModel(sql);
  return model ? matchModelOf(model) : new MatchModel(PRIORS);
}

/** The linker's model made from a stored one. */
export function matchModelOf(model: StoredModel): MatchModel {
  return new MatchModel(model.probabilities, model.thresholds, model.identifierSystems, { version: model.version, termFrequencies: model.termFrequencies });
}

export async function saveModel(
  sql: SqlExecutor,
  model: Pick<TrainedModel, 'probabilities' | 'pairs' | 'matchShare' | 'iterations' | 'thresholds'> & Partial<Pick<TrainedModel, 'identifierSystems' | 'targets' | 'notLearned' | 'termFrequencies'>>,
  records?: number,
): Promise<void> {
  const learning: StoredLearning = { identifierSystems: model.identifierSystems, targets: model.targets, notLearned: model.notLearned, records, termFrequencies: model.termFrequencies };
  await sql.run('INSERT INTO mpi_model (created_at, probabilities, pairs, match_share, iterations, thresholds) VALUES (?, ?, ?, ?, ?, ?)', [
    Date.now(),
    JSON.stringify({ ...model.probabilities, ...learning }),
    model.pairs,
    model.matchShare,
    model.iterations,
    JSON.stringify(model.thresholds),
  ]);
}
