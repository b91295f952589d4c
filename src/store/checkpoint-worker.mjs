// The SQLite checkpointer's thread (src/store/wal-checkpointer.ts). Plain JavaScript: it needs no
// TypeScript loader, so it starts in milliseconds. It copies committed WAL frames into the database
// file with PASSIVE checkpoints, which never block the writer or readers, so that the writer's COMMIT
// is a WAL append only and never pays for a checkpoint (and its fsync). Only the occasional RESTART
// below makes the writer wait, while it copies the last frames and syncs.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const { file, idleMs, busyMs, restartFrames } = workerData;
const db = new Database(file);
// A RESTART that waits (for the commit under way, then for readers) holds off the writer meanwhile, so
// it gives up after a second and is tried again later. The writer's BEGIN IMMEDIATE was seen failing with
// SQLITE_BUSY well before its busy timeout (about 130 ms, in profiled intake runs), presumably against
// such a RESTART (not confirmed): the writer retries it itself (beginWrite in sqlite.ts).
db.pragma('busy_timeout = 1000');
let stopped = false;
let wake = () => {};
parentPort.on('message', (m) => {
  if (m === 'stop') {
    stopped = true;
    wake(); // a store closing does not wait out the pause
  }
});

const sleep = (ms) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    wake = () => {
      clearTimeout(timer);
      resolve();
    };
  });
let lastFrames = 0;
while (!stopped) {
  let frames = lastFrames;
  try {
    frames = db.pragma('wal_checkpoint(PASSIVE)')[0].log;
    if (frames > restartFrames) {
      // Under steady writes a passive pass seldom catches up with the last commit, and the writer starts
      // the WAL over only after one has. RESTART waits for the commit under way, copies the few frames
      // left and lets the next transaction start the WAL from the beginning, so it stays this small.
      db.pragma('wal_checkpoint(RESTART)');
    }
  } catch (err) {
    parentPort.postMessage({ error: String(err?.message ?? err) });
  }
  // Sooner again while the WAL is growing (a load under way), else at the idle pace.
  const growing = frames > lastFrames;
  lastFrames = frames;
  await sleep(growing ? busyMs : idleMs);
}
db.close();
// The message listener would keep this thread alive until stop() gives up and terminates it (5 s).
parentPort.close();
