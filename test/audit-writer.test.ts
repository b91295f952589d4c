// The audit writer thread failing: commits go on, on the calling thread, and the connection there takes
// over the audit file's checkpoints (the thread's connection ran them; without a checkpointer the file's
// WAL would grow until SQLite's backstop of 100,000 pages). A real worker thread and a real SQLite file;
// the thread fails because the file it is given cannot be opened. The event is synthetic.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { AuditJournal } from '../src/audit/audit-journal.js';
import { migrateAuditFile } from '../src/audit/audit-schema.js';
import { InlineAuditWriter, ThreadAuditWriter } from '../src/audit/audit-writer.js';
import { journalEntryOf } from '../src/audit/stored-event.js';
import { SqliteDatabase } from '../src/store/sqlite.js';

describe('audit writer thread failing (sqlite)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-audit-writer-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('commits inline and starts the checkpointer on the calling thread once, not on a normal close', async () => {
    const db = new SqliteDatabase(join(dir, 'audit.db'), { checkpoints: false });
    await migrateAuditFile(db);
    const journal = new AuditJournal(join(dir, 'journal'));
    journal.append(journalEntryOf({ kind: 'rest', subtype: 'read', action: 'R', outcome: 0, httpStatus: 200, recorded: Date.now(), requestId: 'req-1', clientId: 'c', subjects: { resources: [], patients: new Map() } }));
    const failures: string[] = [];
    const takeOver = (err: Error) => {
      failures.push(err.message);
      db.startCheckpoints({ busyMs: 1000 });
    };
    // A file under /dev/null cannot be created: the thread fails as it opens its connection.
    const broken = new ThreadAuditWriter({ kind: 'sqlite', file: '/dev/null/audit.db' }, new InlineAuditWriter(db), takeOver);
    try {
      assert.equal(db.checkpointing, false);
      const result = await broken.commit([journal.seal() as NonNullable<ReturnType<AuditJournal['seal']>>], []);
      assert.equal(result.appended, 1, 'committed on the calling thread');
      assert.equal(failures.length, 1);
      assert.equal(db.checkpointing, true, 'the calling thread checkpoints the file now');
      const [{ n }] = await db.query<{ n: number }>('SELECT COUNT(*) AS n FROM audit_event');
      assert.equal(Number(n), 1);
    } finally {
      await broken.close();
      journal.close();
    }

    // A writer thread that works and is closed as a server closes it tells nobody it failed.
    const quiet: string[] = [];
    const working = new ThreadAuditWriter({ kind: 'sqlite', file: join(dir, 'audit.db') }, new InlineAuditWriter(db), (err) => quiet.push(err.message));
    await working.commit([], []);
    await working.close();
    assert.deepEqual(quiet, []);
    await db.close();
  });
});
