import type { AuditEvent } from '@medplum/fhirtypes';
import { searchKeys, toAuditEvent } from './audit-event.js';
import type { AuditRecord } from './audit-record.js';

/**
 * What the chain stores for an event (`audit_event.content`, hashed exactly as it stands, decision 0039):
 * the audit record as compact JSON, tagged with its format. The AuditEvent is rendered from it when it is
 * read (AuditEvent search and read, disclosures), by the same `toAuditEvent` for every event of a format.
 *
 * Why not the AuditEvent itself: most of an AuditEvent is the same codings and agents in every event (a
 * read's came to 1.9 KB, the record to 0.5 KB), and every byte of it was serialised on the request's
 * thread, written to the journal, read back, hashed, inserted, and checkpointed: the audit log's whole
 * cost scaled with it. The facts the chain protects are the record's; the AuditEvent is their FHIR form.
 *
 * Events stored before this format hold their AuditEvent JSON, which is served as it stands.
 */
const FORMAT = 1;

/** The stored form: the record's fields, the patients' "saw what" as pairs, without what only keys need. */
interface StoredRecord extends Omit<AuditRecord, 'subjects'> {
  format: typeof FORMAT;
  patients: [patient: string, seen: [type: string, count: number][]][];
  resources: string[];
}

/** An event as journalled (audit-journal.ts) and committed (audit-commit.ts): built once, on the request's thread. */
export interface JournalEntry {
  /** Epoch ms (audit_event.recorded_at). */
  recorded: number;
  keys: [kind: 'p' | 'e' | 'a', ref: string][];
  /** The stored content, exactly as hashed into the chain. */
  content: string;
}

export function journalEntryOf(record: AuditRecord): JournalEntry {
  return { recorded: record.recorded, keys: searchKeys(record), content: storedContent(record) };
}

export function storedContent(record: AuditRecord): string {
  const { subjects, user, breakTheGlass, ...fields } = record;
  const stored: StoredRecord = {
    format: FORMAT,
    ...fields,
    // Only what the AuditEvent shows of the user; a flag that is false is left out like any absent field.
    user: user && { id: user.id, fhirUser: user.fhirUser, role: user.role },
    breakTheGlass: breakTheGlass || undefined,
    patients: [...subjects.patients].map(([id, seen]) => [id, [...seen]]),
    resources: subjects.resources,
  };
  return JSON.stringify(stored);
}

/** A record from its stored form, or from a journal line of the version that journalled records as JSON. */
export function recordOfJson(text: string): AuditRecord {
  return recordOf(JSON.parse(text) as StoredRecord | JournalledRecord);
}

/** The AuditEvent an event's stored content stands for (without id and meta: its place in the chain gives those). */
export function storedAuditEvent(content: string): AuditEvent {
  const parsed = JSON.parse(content) as StoredRecord | AuditEvent;
  return isAuditEvent(parsed) ? parsed : toAuditEvent(recordOf(parsed));
}

/** When the event was recorded (epoch ms), as its content says: `tessera audit verify` compares it with `recorded_at`. */
export function storedRecordedAt(content: string): number {
  const parsed = JSON.parse(content) as StoredRecord | AuditEvent;
  return isAuditEvent(parsed) ? Date.parse(parsed.recorded) : parsed.recorded;
}

/** Told apart by the format tag: a record's `resourceType` is the type it addressed, which may be AuditEvent. */
function isAuditEvent(parsed: StoredRecord | AuditEvent): parsed is AuditEvent {
  return (parsed as StoredRecord).format === undefined;
}

/** A record as the version before decision 0033 journalled it: the patients map as pairs, under subjects. */
interface JournalledRecord extends Omit<AuditRecord, 'subjects'> {
  subjects: { resources: string[]; patients: StoredRecord['patients']; unattached?: string[] };
}

function recordOf(parsed: StoredRecord | JournalledRecord): AuditRecord {
  const seenOf = (patients: StoredRecord['patients']) => new Map(patients.map(([id, seen]) => [id, new Map(seen)]));
  if ('subjects' in parsed) {
    const { resources, patients, unattached } = parsed.subjects;
    return { ...parsed, subjects: { resources, patients: seenOf(patients), unattached } };
  }
  const { format, patients, resources, ...fields } = parsed;
  if (format !== FORMAT) throw new Error(`audit event content of unknown format ${String(format)}`);
  // No `unattached`: a stored record's keys are stored beside it.
  return { ...fields, subjects: { resources, patients: seenOf(patients) } };
}
