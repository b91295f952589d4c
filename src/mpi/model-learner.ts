import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { StoreConfig } from '../store/open.js';
import type { Probabilities } from './match-model.js';
import type { TrainedModel, TrainingOptions } from './training.js';

/** Where the learner thread reads the index from: the running store's database, by its own connection. */
export type LearnerStore = { kind: 'sqlite'; file: string } | { kind: 'postgres'; connectionString: string; schema?: string; statementTimeoutMs?: number };

export interface LearnRequest {
  store: LearnerStore;
  startM: Probabilities;
  options: Omit<TrainingOptions, 'onProgress'>;
}

export function learnerStoreOf(config: StoreConfig): LearnerStore {
  return config.databaseUrl?.startsWith('postgres')
    ? { kind: 'postgres', connectionString: config.databaseUrl, schema: config.schema, statementTimeoutMs: config.statementTimeoutMs }
    : { kind: 'sqlite', file: join(config.dataDir, 'tessera.db') };
}

/**
 * `trainFromIndex` on a thread of its own (model-learner-worker.ts), for a server: estimating u compares a
 * million random pairs, 40 s of CPU for a 1,000-record index on the development machine, which on the
 * request thread would stop every request that long. The thread reads the committed index; the caller
 * stores the model.
 */
export function learnOffThread(request: LearnRequest): Promise<TrainedModel> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./model-learner-entry.mjs', import.meta.url), { workerData: request });
    let settled = false;
    worker.once('message', (reply: { model: TrainedModel } | { error: string }) => {
      settled = true;
      if ('error' in reply) reject(new Error(`learning the match model failed: ${reply.error}`));
      else resolve(reply.model);
    });
    worker.once('error', (err) => {
      settled = true;
      reject(err);
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`the match model's learner thread stopped (exit code ${code})`));
    });
  });
}
