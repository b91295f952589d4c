import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { SQLITE_PRAGMAS } from '../src/store/sqlite.js';
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
