import { retryingConflicts, type Database, type SqlExecutor, type SqlValue } from '../store/database.js';
import { CHAIN_LOCK, chainHash, chainHead } from './audit-chain.js';
import type { JournalEntry } from './stored-event.js';
import { journalMark, readJournal, removeJournal, type JournalSegment } from './audit-journal.js';

const EVENT_COLUMNS = ['seq', 'recorded_at', 'content', 'prev_hash', 'hash'] as const;
const REF_COLUMNS = ['kind', 'ref', 'seq'] as const;
/** Events per INSERT batch, so one statement stays of a sane size. */
const MAX_GROUP = 500;

/**
 * Appends the records of journal segments to the chain, in one transaction with each file's mark (how far
 * it is committed: a segment, or the part of it, that a crash left committed is not appended again),
 * deletes the marks of files removed earlier (`forget`), then removes the files whose last segment this
 * was. Returns the events appended and the names of the files removed. Runs on the audit writer thread
 * (audit-writer-worker.ts), and on the main thread for recovery and the CLI.
 */
export async function commitJournals(db: Database, segments: readonly JournalSegment[], forget: readonly string[]): Promise<{ appended: number; removed: string[] }> {
  let appended = 0;
  await retryingConflicts(db, () =>
    db.transaction(async (tx) => {
      appended = 0;
      for (const segment of segments) {
        const mark = journalMark(segment.path);
        const [done] = await tx.query<{ committed_to: number | string }>('SELECT committed_to FROM audit_journal_mark WHERE name = ?', [mark]);
        const from = Math.max(segment.from, Number(done?.committed_to ?? 0));
        if (from >= segment.to) continue; // nothing (left) to append: a closing segment only removes its file
        const { entries, end } = readJournal(segment.path, from, segment.to);
        for (let i = 0; i < entries.length; i += MAX_GROUP) await append(tx, entries.slice(i, i + MAX_GROUP));
        await tx.run('INSERT INTO audit_journal_mark (name, committed_to) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET committed_to = excluded.committed_to', [mark, end]);
        appended += entries.length;
      }
      for (const name of forget) await tx.run('DELETE FROM audit_journal_mark WHERE name = ?', [name]);
    }),
  );
  const removed = segments.filter((s) => s.last);
  for (const segment of removed) removeJournal(segment.path);
  return { appended, removed: removed.map((s) => journalMark(s.path)) };
}

/** Appends events at the head of the chain, under the chain lock (one order across processes). */
async function append(tx: SqlExecutor, entries: readonly JournalEntry[]): Promise<void> {
  await tx.lock(CHAIN_LOCK);
  let { seq, hash } = await chainHead(tx);
  const events: SqlValue[][] = [];
  const refs: SqlValue[][] = [];
  for (const { recorded, keys, content } of entries) {
    const prev = hash;
    seq += 1;
    hash = chainHash(prev, seq, content);
    events.push([seq, recorded, content, prev, hash]);
    for (const [kind, ref] of keys) refs.push([kind, ref, seq]);
  }
  await tx.insertRowSets([
    { table: 'audit_event', columns: EVENT_COLUMNS, rows: events },
    { table: 'audit_ref', columns: REF_COLUMNS, rows: refs },
  ]);
}
