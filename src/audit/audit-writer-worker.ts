import { parentPort, workerData } from 'node:worker_threads';
import { connect, type StoreAddress } from '../store/store-address.js';
import { commitJournals } from './audit-commit.js';
import { AUDIT_WRITER_NICE, lowerThreadPriority } from './background-priority.js';
import { AUDIT_CHECKPOINTS, type CommitReply, type CommitRequest } from './audit-writer.js';

// The audit writer thread: turns sealed journal files into chained AuditEvents, off the thread that
// answers requests (building, hashing and inserting an event costs 0.1-0.2 ms, as much as a read).
lowerThreadPriority(AUDIT_WRITER_NICE);
// This connection checkpoints the SQLite audit file (the main thread's does not while the thread runs).
const db = await connect(workerData as StoreAddress, AUDIT_CHECKPOINTS);
// One commit at a time, in the order asked: the chain's order is the journal's.
let queue: Promise<unknown> = Promise.resolve();
parentPort?.on('message', (message: CommitRequest | 'close') => {
  if (message === 'close') {
    queue.then(() => db.close()).then(() => parentPort?.postMessage('closed'));
    return;
  }
  queue = queue.then(async () => {
    let reply: CommitReply;
    try {
      reply = { id: message.id, ...(await commitJournals(db, message.segments, message.forget)) };
    } catch (err) {
      reply = { id: message.id, error: (err as Error).message ?? String(err) };
    }
    parentPort?.postMessage(reply);
  });
});
parentPort?.postMessage('ready');
