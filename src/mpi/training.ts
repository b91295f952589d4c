import type { SqlExecutor } from '../store/database.js';
import { blockingKeys } from './blocking.js';
import { compareFeatures, type ComparisonVector } from './comparison.js';
import { trainEm, type TrainingResult } from './em-training.js';
import type { PersonFeatures } from './features.js';
import type { Probabilities } from './match-model.js';
import { MpiStore } from './mpi-store.js';

/** Candidates per record in the training sample: what the linker itself would score, capped. */
const CANDIDATES_PER_RECORD = 50;

/**
 * `tessera mpi train`: the comparison vectors of candidate pairs (records sharing a blocking key, as
 * the linker sees them), each pair once, at most `maxPairs`, then EM from the current probabilities.
 * Unlabelled: nothing a steward decided is needed, though rulings are what to check a model against.
 */
export async function trainFromIndex(sql: SqlExecutor, start: Probabilities, maxPairs: number, onProgress?: (pairs: number) => void): Promise<TrainingResult & { pairs: number }> {
  const store = new MpiStore(sql);
  const vectors: ComparisonVector[] = [];
  const seen = new Set<string>();
  let after = '';
  while (vectors.length < maxPairs) {
    const rows = await sql.query<{ patient_id: string; features: string }>('SELECT patient_id, features FROM mpi_source WHERE patient_id > ? ORDER BY patient_id LIMIT 1000', [after]);
    if (!rows.length) {
      break;
    }
    after = rows[rows.length - 1].patient_id;
    for (const row of rows) {
      const features = JSON.parse(row.features) as PersonFeatures;
      for (const candidate of await store.candidates(blockingKeys(features), row.patient_id, CANDIDATES_PER_RECORD)) {
        const key = row.patient_id < candidate.patientId ? `${row.patient_id}|${candidate.patientId}` : `${candidate.patientId}|${row.patient_id}`;
        if (!seen.has(key) && vectors.length < maxPairs) {
          seen.add(key);
          vectors.push(compareFeatures(features, candidate.features));
        }
      }
    }
    onProgress?.(vectors.length);
  }
  return { ...trainEm(vectors, start), pairs: vectors.length };
}
