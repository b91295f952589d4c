import { parentPort, workerData } from 'node:worker_threads';
import { lowerThreadPriority } from '../audit/background-priority.js';
import type { Database } from '../store/database.js';
import { connect } from '../store/store-address.js';
import type { LearnRequest } from './model-learner.js';
import { trainFromIndex } from './training.js';

// Learning a model off the thread that answers requests: a million random pairs compared take tens of
// seconds (model-learner.ts). Its own connection, reading only.
const { store, startM, options } = workerData as LearnRequest;
lowerThreadPriority(19);
let db: Database | undefined;
try {
  db = await connect(store, false); // the server's connection checkpoints the file
  parentPort?.postMessage({ model: await trainFromIndex(db, startM, options) });
} catch (err) {
  parentPort?.postMessage({ error: (err as Error).message ?? String(err) });
} finally {
  await db?.close();
}
