import { parentPort, workerData } from 'node:worker_threads';
import type { Database } from '../store/database.js';
import { PostgresDatabase } from '../store/postgres.js';
import { SqliteDatabase } from '../store/sqlite.js';
import { commitJournals } from './audit-commit.js';
import { AUDIT_WRITER_NICE, lowerThreadPriority } from './background-priority.js';
import { AUDIT_CHECKPOINTS, type AuditWriterTarget, type CommitReply, type CommitRequest } from './audit-writer.js';

// The audit writer thread: turns sealed journal files into chained AuditEvents, off the thread that
// answers requests (building, hashing and inserting an event costs 0.1-0.2 ms, as much as a read).
const target = workerData as AuditWriterTarget;
lowerThreadPriority(AUDIT_WRITER_NICE);
let db: Database;
if (target.kind === 'postgres') {
  const pg = new PostgresDatabase({ connectionString: target.connectionString, schema: target.schema });
  await pg.init();
  db = pg;
} else {
  db = new SqliteDatabase(target.file, { checkpoints: AUDIT_CHECKPOINTS });
}
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
