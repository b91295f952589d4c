import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { SQLITE_PRAGMAS, SqliteDatabase } from '../src/store/sqlite.js';
import { WalCheckpointer } from '../src/store/wal-checkpointer.js';

describe('SQLite WAL checkpoints on their own thread', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-wal-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('under steady commits the WAL is started over instead of growing, and every committed row reaches the database', async (t) => {
    const file = join(dir, 'wal.db');
    const db = new BetterSqlite3(file);
    SQLITE_PRAGMAS.forEach((pragma) => db.pragma(pragma));
    db.exec('CREATE TABLE t (n INTEGER PRIMARY KEY, payload BLOB NOT NULL)');
    // A restart every 1,000 frames (4 MB) here, so that the test writes little; Tessera's is 10,000.
    const checkpointer = new WalCheckpointer(file, { busyMs: 5, idleMs: 5, restartFrames: 1000 });
    const insert = db.prepare('INSERT INTO t (n, payload) VALUES (?, ?)');
    const payload = Buffer.alloc(16 * 1024, 7);
    const commits = 4000; // about 95 MB of WAL frames in all
    let largestWal = 0;
    for (let i = 0; i < commits; i++) {
      db.transaction(() => insert.run(i, payload))();
      if (i % 10 === 0) {
        largestWal = Math.max(largestWal, statSync(`${file}-wal`).size);
        await new Promise((resolve) => setTimeout(resolve, 1)); // let the other thread's messages be seen
      }
    }
    await checkpointer.stop();
    // Without restarts the WAL holds every frame written (about 95 MB); with them, what is written while
    // one restart waits for its turn and syncs (13 to 22 MB measured here).
    t.diagnostic(`largest WAL: ${(largestWal / 2 ** 20).toFixed(1)} MB`);
    assert.ok(largestWal < 48 * 1024 * 1024, `the WAL grew to ${(largestWal / 2 ** 20).toFixed(1)} MB`);
    db.close();
    const reopened = new BetterSqlite3(file, { readonly: true });
    assert.equal((reopened.prepare('SELECT COUNT(*) AS n FROM t').get() as { n: number }).n, commits);
    reopened.close();
  });
});

describe('SQLite write lock', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-lock-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a transaction waits for a write lock held elsewhere without stopping the event loop, then commits', async () => {
    const file = join(dir, 'lock.db');
    const store = new SqliteDatabase(file);
    await store.exec('CREATE TABLE t (n INTEGER PRIMARY KEY)');
    // Another connection (a checkpoint, another process) holds the write lock for 300 ms. Released by a
    // timer on this thread: a busy handler sleeping on it would never see the release, and fail.
    const other = new BetterSqlite3(file);
    other.exec('BEGIN IMMEDIATE');
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 10);
    setTimeout(() => other.exec('COMMIT'), 300);
    const started = performance.now();
    try {
      await store.transaction((tx) => tx.run('INSERT INTO t (n) VALUES (1)'));
    } finally {
      clearInterval(ticker);
    }
    const waited = performance.now() - started;
    other.close();
    assert.ok(waited >= 250, `began after ${waited.toFixed(0)} ms, while the lock was held`);
    assert.ok(ticks >= 10, `the event loop ran ${ticks} timer ticks while the transaction waited`);
    assert.deepEqual(await store.query('SELECT n FROM t'), [{ n: 1 }]);
    await store.close();
  });
});
