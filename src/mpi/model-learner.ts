import { Worker } from 'node:worker_threads';
import type { StoreAddress } from '../store/store-address.js';
import type { Probabilities } from './match-model.js';
import type { TrainedModel, TrainingOptions } from './training.js';

export interface LearnRequest {
  /** Where the thread reads the index: the running store's database (storeAddressOf), by its own connection. */
  store: StoreAddress;
  startM: Probabilities;
  options: Omit<TrainingOptions, 'onProgress'>;
}

/**
 * `trainFromIndex` on a thread of its own (model-learner-worker.ts), for a server: estimating u compares a
 * million random pairs, 40 s of CPU for a 1,000-record index on the development machine, which on the
 * request thread would stop every request that long. The thread reads the committed index; the caller
 * stores the model. `signal`: aborting it ends the thread at once (a server closing does not wait out a
 * learning) and rejects.
 */
/** The rejection of a learning ended by its signal (not a failure: the caller asked for it). */
export class LearningStopped extends Error {
  constructor() {
    super('learning the match model was stopped');
  }
}

export function learnOffThread(request: LearnRequest, signal?: AbortSignal): Promise<TrainedModel> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new LearningStopped());
    const worker = new Worker(new URL('./model-learner-entry.mjs', import.meta.url), { workerData: request });
    let settled = false;
    const onAbort = () => {
      if (settled) return;
      settled = true;
      void worker.terminate();
      reject(new LearningStopped());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    // The signal outlives many learnings (an upkeep's): each one's listener goes when it ends.
    worker.once('exit', () => signal?.removeEventListener('abort', onAbort));
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
