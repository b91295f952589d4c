import type { SqlExecutor } from '../store/database.js';
import type { TrainingResult } from './em-training.js';
import { MatchModel, PRIORS, type Probabilities } from './match-model.js';

export interface StoredModel {
  version: number;
  createdAt: number;
  pairs: number;
  matchShare: number;
  iterations: number;
  probabilities: Probabilities;
}

/** The newest trained match model (`tessera mpi train`), or undefined while only the priors exist. */
export async function latestModel(sql: SqlExecutor): Promise<StoredModel | undefined> {
  const rows = await sql.query<{ version: number; created_at: number; probabilities: string; pairs: number; match_share: number; iterations: number }>(
    'SELECT version, created_at, probabilities, pairs, match_share, iterations FROM mpi_model ORDER BY version DESC LIMIT 1',
  );
  const r = rows[0];
  return (
    r && {
      version: Number(r.version),
      createdAt: Number(r.created_at),
      pairs: Number(r.pairs),
      matchShare: Number(r.match_share),
      iterations: Number(r.iterations),
      probabilities: JSON.parse(r.probabilities) as Probabilities,
    }
  );
}

/** The model the linker starts with: the newest trained one, else the hand-set priors. */
export async function currentMatchModel(sql: SqlExecutor): Promise<MatchModel> {
  return new MatchModel((await latestModel(sql))?.probabilities ?? PRIORS);
}

export async function saveModel(sql: SqlExecutor, result: TrainingResult & { pairs: number }): Promise<void> {
  await sql.run('INSERT INTO mpi_model (created_at, probabilities, pairs, match_share, iterations) VALUES (?, ?, ?, ?, ?)', [
    Date.now(),
    JSON.stringify(result.probabilities),
    result.pairs,
    result.matchShare,
    result.iterations,
  ]);
}
