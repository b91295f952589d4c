import type { SqlExecutor } from '../store/database.js';
import { completeProbabilities, DEFAULT_THRESHOLDS, MatchModel, PRIORS, type Probabilities, type Thresholds } from './match-model.js';
import type { TrainedModel } from './training.js';

export interface StoredModel {
  version: number;
  createdAt: number;
  pairs: number;
  matchShare: number;
  iterations: number;
  probabilities: Probabilities;
  thresholds: Thresholds;
}

/** The newest trained match model (`tessera mpi train`), or undefined while only the priors exist. */
export async function latestModel(sql: SqlExecutor): Promise<StoredModel | undefined> {
  const rows = await sql.query<{ version: number; created_at: number; probabilities: string; pairs: number; match_share: number; iterations: number; thresholds: string | null }>(
    'SELECT version, created_at, probabilities, pairs, match_share, iterations, thresholds FROM mpi_model ORDER BY version DESC LIMIT 1',
  );
  const r = rows[0];
  return (
    r && {
      version: Number(r.version),
      createdAt: Number(r.created_at),
      pairs: Number(r.pairs),
      matchShare: Number(r.match_share),
      iterations: Number(r.iterations),
      probabilities: completeProbabilities(JSON.parse(r.probabilities) as Partial<Probabilities>),
      thresholds: r.thresholds ? (JSON.parse(r.thresholds) as Thresholds) : DEFAULT_THRESHOLDS,
    }
  );
}

/** The model the linker starts with: the newest trained one, else the hand-set priors. */
export async function currentMatchModel(sql: SqlExecutor): Promise<MatchModel> {
  const model = await latestModel(sql);
  return model ? new MatchModel(model.probabilities, model.thresholds) : new MatchModel(PRIORS);
}

export async function saveModel(sql: SqlExecutor, model: Pick<TrainedModel, 'probabilities' | 'pairs' | 'matchShare' | 'iterations' | 'thresholds'>): Promise<void> {
  await sql.run('INSERT INTO mpi_model (created_at, probabilities, pairs, match_share, iterations, thresholds) VALUES (?, ?, ?, ?, ?, ?)', [
    Date.now(),
    JSON.stringify(model.probabilities),
    model.pairs,
    model.matchShare,
    model.iterations,
    JSON.stringify(model.thresholds),
  ]);
}
