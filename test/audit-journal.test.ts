// The audit journal across versions: a journal file left by a process that died is appended by the next
// start on the data directory, whether its lines are entries with the stored record (this version),
// entries with the AuditEvent JSON (decision 0033's version, which stored the AuditEvent) or audit
// records as JSON (the version before, which built the AuditEvent on the writer thread); a last line cut
// short by the kill is left out. All three are served as the same AuditEvent. The records are synthetic,
// written by the test.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { toAuditEvent } from '../src/audit/audit-event.js';
import { journalEntryOf, storedAuditEvent } from '../src/audit/stored-event.js';
import type { AuditRecord } from '../src/audit/audit-record.js';
import { auditJournalDir, openAuditLog } from '../src/audit/audit-store.js';
import { auditEventResource, findAuditEvents, parseAuditQuery } from '../src/audit/audit-search.js';
import { verifyAuditLog } from '../src/audit/audit-verify.js';
import { openDatabase } from '../src/store/open.js';
import { BACKENDS, dropTestSchema, testConfig } from './helpers/backends.js';

/** A pid no process has: the journal file's writer is dead (pids stop well below this on Linux). */
const DEAD_PID = 4_194_399;

function readRecord(patient: string, requestId: string): AuditRecord {
  return {
    kind: 'rest', subtype: 'read', action: 'R', outcome: 0, httpStatus: 200, recorded: Date.parse('2026-12-01T10:00:00Z'), requestId,
    clientId: 'journal-test-client', resourceType: 'Observation', purposeOfUse: 'TREAT',
    subjects: { resources: [`Observation/obs-${patient}`], patients: new Map([[patient, new Map([['Observation', 1]])]]), unattached: [] },
  };
}

/** A line as the version before this one journalled a record (the patients map as pairs). */
function recordLine(record: AuditRecord): string {
  const { resources, patients, unattached } = record.subjects;
  return JSON.stringify({ ...record, subjects: { resources, patients: [...patients].map(([id, seen]) => [id, [...seen]]), unattached } });
}

for (const backend of BACKENDS) {
  describe(`audit journal left by a dead process (${backend})`, () => {
    const { config, cleanup } = testConfig(backend);
    after(async () => {
      await dropTestSchema(config);
      cleanup();
    });

    it('appends its record lines, AuditEvent lines and entry lines alike, and leaves out a torn last line', async () => {
      const dir = auditJournalDir(config.dataDir);
      mkdirSync(dir, { recursive: true });
      const older = readRecord('pat-older', 'req-older');
      const newer = readRecord('pat-newer', 'req-newer');
      const asEvent = readRecord('pat-event', 'req-event');
      const torn = `E\t${Date.now()}\t[["p","Patient/pat-torn"]]\t{"resourceType":"AuditEv`;
      // An event line also starts with E, then time, keys and the event JSON, tab-separated.
      const entry = journalEntryOf(newer);
      const entryLine = `E\t${entry.recorded}\t${JSON.stringify(entry.keys)}\t${entry.content}`;
      // Decision 0033's entry line: the same, with the AuditEvent JSON as the content (stored as it stands).
      const eventLine = `E\t${asEvent.recorded}\t${JSON.stringify(journalEntryOf(asEvent).keys)}\t${JSON.stringify(toAuditEvent(asEvent))}`;
      writeFileSync(join(dir, `${DEAD_PID}-1-1.jsonl`), `${recordLine(older)}\n${eventLine}\n${entryLine}\n${torn}`, { mode: 0o600 });

      const store = await openDatabase(config);
      const log = await openAuditLog(config, store);
      try {
        const found = async (query: string) =>
          (await findAuditEvents(log.db, parseAuditQuery(new URLSearchParams(query)))).map((row) => auditEventResource(row));
        const all = await found('agent=journal-test-client');
        assert.equal(all.length, 3, 'the three whole lines, not the torn one');
        const [fromRecord] = await found('patient=pat-older');
        const [fromEvent] = await found('patient=pat-newer');
        // Both forms give the same event: the older line is built into one as it is appended.
        const { id: _a, meta: _m, ...olderEvent } = fromRecord;
        assert.deepEqual(olderEvent, storedAuditEvent(journalEntryOf(older).content));
        assert.equal(fromEvent.entity?.find((e) => e.type?.code === 'XrequestId')?.what?.identifier?.value, 'req-newer');
        const [storedAsEvent] = await found('patient=pat-event');
        const { id: _b, meta: _n, ...asServed } = storedAsEvent;
        assert.deepEqual(asServed, JSON.parse(JSON.stringify(toAuditEvent(asEvent))), 'an event stored as AuditEvent JSON is served as it stands');
        const storedForms = await log.db.query<{ content: string }>('SELECT content FROM audit_event ORDER BY seq');
        assert.deepEqual(storedForms.map((r) => r.content.startsWith('{"resourceType":"AuditEvent"')), [false, true, false], 'each line stored in its own form');
        assert.equal((await found('entity=Patient/pat-older')).length, 1, 'a patient is found as an entity');
        assert.equal((await found('entity=Observation/obs-pat-torn')).length, 0);
        assert.equal((await verifyAuditLog(log.db)).problem, undefined);
      } finally {
        await log.close();
        await store.close();
      }
    });
  });
}
