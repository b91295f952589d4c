// Two Tessera processes appending to one audit chain: each has its own journal directory and database
// connection (two InlineAuditWriters here), and their commits interleave. The chain must stay one
// unbroken sequence, every event appended once: the guard for any faster commit path (decision 0050
// tried one without the chain lock and withdrew it). The records are synthetic.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { AuditJournal, type JournalSegment } from '../src/audit/audit-journal.js';
import type { AuditRecord } from '../src/audit/audit-record.js';
import { openAuditDatabase } from '../src/audit/audit-store.js';
import { verifyAuditLog } from '../src/audit/audit-verify.js';
import { InlineAuditWriter } from '../src/audit/audit-writer.js';
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

/** A process's side of the log: its journal and its writer. */
class Appender {
  private next = 0;
  readonly writer: InlineAuditWriter;

  constructor(
    readonly journal: AuditJournal,
    db: Database,
  ) {
    this.writer = new InlineAuditWriter(db);
  }

  /** Journals `n` records, seals them as one segment and commits it. */
  async append(n: number): Promise<number> {
    for (let i = 0; i < n; i++) this.journal.append(journalEntryOf(readRecord(this.next++)));
    return (await this.writer.commit([this.journal.seal() as JournalSegment], [])).appended;
  }
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

    it('interleaved commits keep one unbroken chain, each event once', async () => {
      const [dbA, dbB] = [await openAuditDatabase(config), await openAuditDatabase(config)];
      opened.push(dbA, dbB);
      const a = new Appender(new AuditJournal(join(config.dataDir, 'journal-a')), dbA);
      // A journal's files are named by pid and start time (one per process): B's must start another millisecond.
      await new Promise((resolve) => setTimeout(resolve, 5));
      const b = new Appender(new AuditJournal(join(config.dataDir, 'journal-b')), dbB);
      let total = 0;
      for (let round = 0; round < 4; round++) {
        total += await a.append(3 + round);
        total += await b.append(2 + round);
        // Both at once, as two servers' flushes can be.
        const [x, y] = await Promise.all([a.append(4), b.append(5)]);
        total += x + y;
      }
      assert.equal(total, 4 * (3 + 2 + 4 + 5) + 2 * (0 + 1 + 2 + 3));
      const [{ n }] = await dbA.query<{ n: number }>('SELECT COUNT(*) AS n FROM audit_event');
      assert.equal(Number(n), total);
      const report = await verifyAuditLog(dbA);
      assert.equal(report.problem, undefined, JSON.stringify(report.problem));
      assert.equal(report.current, total);
    });
  });
}
