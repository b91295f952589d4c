// How the audit writer appends to the chain when several processes share it, and when a commit may have
// happened although it was reported failed. Two writers, each with its own journal directory and its own
// database connection, stand for two Tessera processes on one store; on PostgreSQL a writer that knows the
// chain's head appends in one statement without the chain lock (audit-commit.ts), and the other process's
// appends must send it back to the locked path, never fork the chain. The records are synthetic.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { commitJournals, type ChainCursor } from '../src/audit/audit-commit.js';
import { AuditJournal, type JournalSegment } from '../src/audit/audit-journal.js';
import type { AuditRecord } from '../src/audit/audit-record.js';
import { openAuditDatabase } from '../src/audit/audit-store.js';
import { verifyAuditLog } from '../src/audit/audit-verify.js';
import { journalEntryOf } from '../src/audit/stored-event.js';
import type { Database } from '../src/store/database.js';
import { BACKENDS, dropTestSchema, testConfig } from './helpers/backends.js';

function readRecord(n: number): AuditRecord {
  const patient = `patient-${n % 7}`;
  return {
    kind: 'rest', subtype: 'read', action: 'R', outcome: 0, httpStatus: 200, recorded: Date.parse('2026-12-07T10:00:00Z') + n, requestId: `request-${n}`,
    clientId: 'commit-test-client', resourceType: 'Patient', purposeOfUse: 'TREAT',
    subjects: { resources: [`Patient/${patient}`], patients: new Map([[patient, new Map([['Patient', 1]])]]), unattached: [] },
  };
}

/** A writer as a process has one: its journal, its connection, its memory of the chain's head; transactions counted. */
class Writer {
  readonly cursor: ChainCursor = {};
  transactions = 0;
  private next = 0;
  private readonly counted: Database;

  constructor(
    readonly name: string,
    readonly journal: AuditJournal,
    db: Database,
  ) {
    this.counted = new Proxy(db, {
      get: (target, key) => {
        if (key === 'transaction') this.transactions++;
        const value = Reflect.get(target, key);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  }

  /** Journals `n` records and seals them as one segment. */
  write(n: number): JournalSegment {
    for (let i = 0; i < n; i++) this.journal.append(journalEntryOf(readRecord(this.next++)));
    return this.journal.seal() as JournalSegment;
  }

  commit(segments: JournalSegment[]): Promise<{ appended: number }> {
    return commitJournals(this.counted, segments, [], this.cursor);
  }
}

async function eventCount(db: Database): Promise<number> {
  const [{ n }] = await db.query<{ n: number }>('SELECT COUNT(*) AS n FROM audit_event');
  return Number(n);
}

for (const backend of BACKENDS) {
  describe(`audit commits from two processes (${backend})`, () => {
    const { config, cleanup } = testConfig(backend);
    const opened: Database[] = [];
    after(async () => {
      for (const db of opened) await db.close();
      await dropTestSchema(config);
      cleanup();
    });

    it('interleaved commits keep one unbroken chain; a writer that knows the head appends without a transaction on PostgreSQL', async () => {
      const [dbA, dbB] = [await openAuditDatabase(config), await openAuditDatabase(config)];
      opened.push(dbA, dbB);
      const a = new Writer('a', new AuditJournal(join(config.dataDir, 'journal-a')), dbA);
      // A journal's files are named by pid and start time (one per process): B's must start another millisecond.
      await new Promise((resolve) => setTimeout(resolve, 5));
      const b = new Writer('b', new AuditJournal(join(config.dataDir, 'journal-b')), dbB);

      assert.equal((await a.commit([a.write(3)])).appended, 3);
      assert.equal(a.cursor.head?.seq, 3, 'the first commit reads the head and remembers where it left it');
      const before = a.transactions;
      assert.equal((await a.commit([a.write(4)])).appended, 4);
      assert.equal(a.transactions - before, backend === 'postgres' ? 0 : 1, 'the second commit of a writer that knows the head');

      // B appends after A: A's memory of the head is now stale, and its next commit must find that out.
      let total = 7;
      for (let round = 0; round < 4; round++) {
        assert.equal((await b.commit([b.write(2 + round)])).appended, 2 + round);
        assert.equal((await a.commit([a.write(5)])).appended, 5);
        total += 7 + round;
      }
      assert.equal(await eventCount(dbA), total);
      const report = await verifyAuditLog(dbA);
      assert.equal(report.problem, undefined, JSON.stringify(report.problem));
      assert.equal(report.current, total);
      assert.equal(a.cursor.head?.seq, total, "A's last commit came last");
    });

    it('a segment whose commit may have happened is checked against its mark, not appended twice', async () => {
      const db = await openAuditDatabase(config);
      opened.push(db);
      await new Promise((resolve) => setTimeout(resolve, 5));
      const writer = new Writer('c', new AuditJournal(join(config.dataDir, 'journal-c')), db);
      await writer.commit([writer.write(1)]);
      const segment = writer.write(3);
      assert.equal((await writer.commit([segment])).appended, 3);
      const count = await eventCount(db);
      // As the audit log marks it after a failed commit (the connection lost after the commit was sent).
      segment.uncertain = true;
      assert.equal((await writer.commit([segment])).appended, 0);
      assert.equal(await eventCount(db), count);
      assert.equal((await verifyAuditLog(db)).problem, undefined);
    });
  });
}
