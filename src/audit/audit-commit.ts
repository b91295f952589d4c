import { retryingConflicts, type Database, type SqlExecutor, type SqlValue } from '../store/database.js';
import { CHAIN_LOCK, chainHash, chainHead, type ChainLink } from './audit-chain.js';
import type { JournalEntry } from './stored-event.js';
import { journalMark, readJournal, removeJournal, type JournalSegment } from './audit-journal.js';

const EVENT_COLUMNS = ['seq', 'recorded_at', 'content', 'prev_hash', 'hash'] as const;
const REF_COLUMNS = ['kind', 'ref', 'seq'] as const;
/** Events per INSERT batch, so one statement stays of a sane size. */
const MAX_GROUP = 500;

/**
 * What a writer knows of the chain between its commits: the head it last appended. Unknown at first and
 * after any failure; then the next commit reads it under the chain lock.
 */
export interface ChainCursor {
  head?: ChainLink;
}

/**
 * Appends the records of journal segments to the chain, in one transaction with each file's mark (how far
 * it is committed: a segment, or the part of it, that a crash left committed is not appended again),
 * deletes the marks of files removed earlier (`forget`), then removes the files whose last segment this
 * was. Returns the events appended and the names of the files removed. Runs on the audit writer thread
 * (audit-writer-worker.ts), and on the main thread for recovery and the CLI.
 *
 * On PostgreSQL a writer that knows the head and has only segments no commit can have taken before
 * (`uncertain` unset, not a recovery's) appends in one statement (appendInOneStatement).
 */
export async function commitJournals(db: Database, segments: readonly JournalSegment[], forget: readonly string[], cursor: ChainCursor = {}): Promise<{ appended: number; removed: string[] }> {
  if (db.dialect.name === 'postgres' && cursor.head && segments.every((s) => !s.uncertain && s.to !== Infinity)) {
    try {
      return await appendInOneStatement(db, segments, forget, cursor, cursor.head);
    } catch (err) {
      cursor.head = undefined;
      // Another process appended since this writer's last commit (its sequence numbers are taken): the
      // chain's head is read again under the lock. Anything else is the caller's to retry.
      if ((err as { code?: string }).code !== UNIQUE_VIOLATION) throw err;
    }
  }
  cursor.head = undefined;
  let appended = 0;
  let head: ChainLink | undefined;
  await retryingConflicts(db, () =>
    db.transaction(async (tx) => {
      appended = 0;
      head = undefined;
      for (const segment of segments) {
        const mark = journalMark(segment.path);
        const [done] = await tx.query<{ committed_to: number | string }>('SELECT committed_to FROM audit_journal_mark WHERE name = ?', [mark]);
        const from = Math.max(segment.from, Number(done?.committed_to ?? 0));
        if (from >= segment.to) continue; // nothing (left) to append: a closing segment only removes its file
        const { entries, end } = readJournal(segment.path, from, segment.to);
        for (let i = 0; i < entries.length; i += MAX_GROUP) head = await append(tx, entries.slice(i, i + MAX_GROUP));
        await tx.run('INSERT INTO audit_journal_mark (name, committed_to) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET committed_to = excluded.committed_to', [mark, end]);
        appended += entries.length;
      }
      for (const name of forget) await tx.run('DELETE FROM audit_journal_mark WHERE name = ?', [name]);
    }),
  );
  cursor.head = head;
  return { appended, removed: removeFinished(segments) };
}

/** Removes the files whose last segment was committed; their names, for the marks to forget. */
function removeFinished(segments: readonly JournalSegment[]): string[] {
  const removed = segments.filter((s) => s.last);
  for (const segment of removed) removeJournal(segment.path);
  return removed.map((s) => journalMark(s.path));
}

/** The chain's rows for entries following `head`, and the new head. */
function chainRows(head: ChainLink, entries: readonly JournalEntry[]): { events: SqlValue[][]; refs: SqlValue[][]; head: ChainLink } {
  let { seq, hash } = head;
  const events: SqlValue[][] = [];
  const refs: SqlValue[][] = [];
  for (const { recorded, keys, content } of entries) {
    const prev = hash;
    seq += 1;
    hash = chainHash(prev, seq, content);
    events.push([seq, recorded, content, prev, hash]);
    for (const [kind, ref] of keys) refs.push([kind, ref, seq]);
  }
  return { events, refs, head: { seq, hash } };
}

/** Appends events at the head of the chain, under the chain lock (one order across processes); returns the new head. */
async function append(tx: SqlExecutor, entries: readonly JournalEntry[]): Promise<ChainLink> {
  await tx.lock(CHAIN_LOCK);
  const { events, refs, head } = chainRows(await chainHead(tx), entries);
  await tx.insertRowSets([
    { table: 'audit_event', columns: EVENT_COLUMNS, rows: events },
    { table: 'audit_ref', columns: REF_COLUMNS, rows: refs },
  ]);
  return head;
}

const UNIQUE_VIOLATION = '23505';

/**
 * The events, their keys, the files' marks and the forgotten marks in one statement, a transaction of its
 * own (7 round trips in the locked path). Each round trip costs the writer thread and PostgreSQL about
 * 0.3 ms of CPU on this machine (bench/audit-append.ts): at a commit every 50 ms (then; 250 ms now) that was CPU taken from
 * the requests being answered. Without the chain lock: the sequence numbers' primary key keeps the chain
 * whole, since an event numbered after this writer's last one can be inserted only while no other process
 * has taken that number, and then its predecessor is the event this writer appended last. Columns go as
 * arrays, so the statement's text and its plan are the same whatever the number of events.
 */
async function appendInOneStatement(db: Database, segments: readonly JournalSegment[], forget: readonly string[], cursor: ChainCursor, from: ChainLink): Promise<{ appended: number; removed: string[] }> {
  let head = from;
  const events: SqlValue[][] = [];
  const refs: SqlValue[][] = [];
  const marks = new Map<string, number>();
  for (const segment of segments) {
    if (segment.from >= segment.to) continue;
    const { entries, end } = readJournal(segment.path, segment.from, segment.to);
    const rows = chainRows(head, entries);
    head = rows.head;
    events.push(...rows.events);
    refs.push(...rows.refs);
    marks.set(journalMark(segment.path), end);
  }
  if (marks.size || forget.length) {
    const columns = (rows: SqlValue[][], n: number) => Array.from({ length: n }, (_, i) => rows.map((row) => row[i])) as unknown as SqlValue[];
    await db.run(ONE_STATEMENT_APPEND, [...columns(events, EVENT_COLUMNS.length), ...columns(refs, REF_COLUMNS.length), [...marks.keys()], [...marks.values()], [...forget]] as unknown as SqlValue[]);
  }
  cursor.head = head;
  return { appended: events.length, removed: removeFinished(segments) };
}

const ONE_STATEMENT_APPEND = `WITH events AS (
  INSERT INTO audit_event (${EVENT_COLUMNS.join(', ')}) SELECT * FROM unnest(?::bigint[], ?::bigint[], ?::text[], ?::text[], ?::text[])
), refs AS (
  INSERT INTO audit_ref (${REF_COLUMNS.join(', ')}) SELECT * FROM unnest(?::text[], ?::text[], ?::bigint[])
), marks AS (
  INSERT INTO audit_journal_mark (name, committed_to) SELECT * FROM unnest(?::text[], ?::bigint[])
  ON CONFLICT (name) DO UPDATE SET committed_to = excluded.committed_to
)
DELETE FROM audit_journal_mark WHERE name = ANY(?::text[])`;
