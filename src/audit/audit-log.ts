import { retryingConflicts, type Database, type SqlExecutor, type SqlValue } from '../store/database.js';
import { CHAIN_LOCK, chainHash, chainHead } from './audit-chain.js';
import { searchKeys, toAuditEvent } from './audit-event.js';
import { journalMark, leftoverJournals, readJournal, removeJournal, type AuditJournal } from './audit-journal.js';
import type { AuditRecord } from './audit-record.js';

const EVENT_COLUMNS = ['seq', 'recorded_at', 'content', 'prev_hash', 'hash'] as const;
const REF_COLUMNS = ['kind', 'ref', 'seq'] as const;
/** Events per transaction at most, so one commit never holds the chain lock for long. */
const MAX_GROUP = 500;
/**
 * How long a journalled record waits before the background flush commits it. Short enough that an
 * AuditEvent search sees recent events (it flushes first anyway); long enough that one commit serves many
 * requests: a commit costs about 0.2 ms on this machine's storage, as much as a whole read.
 */
const FLUSH_DELAY_MS = 50;
/** After a failed flush (the database unreachable), the records stay journalled and are tried again. */
const RETRY_DELAY_MS = 1000;

/**
 * The append-only, hash-chained audit log. `record` journals the record (audit-journal.ts) and returns:
 * from then on the event survives a crash of the process, so a caller that records before answering
 * never answers a request whose event a crash could lose. A background flush then appends the journalled
 * records to the chain, up to 500 per transaction, and removes their journal file. `flush` commits what
 * was recorded so far (AuditEvent searches call it, so that they see their own process's latest events).
 */
export class AuditLog {
  private pending: AuditRecord[] = [];
  /** Sealed journal files whose records are not yet committed (a failed flush keeps them). */
  private unflushed: string[] = [];
  /** Marks of committed and removed files, deleted by the next flush's transaction. */
  private forgettable: string[] = [];
  private flushing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    /** The database holding the audit tables: the main one on PostgreSQL, audit.db on SQLite. */
    readonly db: Database,
    private readonly ownsDatabase: boolean,
    private readonly journal: AuditJournal,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  /** Journals the record (it survives a crash once this returns) and schedules its commit. */
  async record(record: AuditRecord): Promise<void> {
    if (this.closed) throw new Error('The audit log is closed');
    this.journal.append(record);
    this.pending.push(record);
    if (this.pending.length >= MAX_GROUP) this.schedule(0);
    else this.schedule(FLUSH_DELAY_MS);
  }

  /** Commits every record journalled so far (and whatever is journalled meanwhile). */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (!this.pending.length && !this.unflushed.length) return;
    this.flushing = this.flushOnce().finally(() => (this.flushing = undefined));
    await this.flushing;
  }

  /**
   * Appends the records of journal files left by processes that died before committing them (this data
   * directory's), in their order, then removes the files. A file whose mark is in the log was committed
   * already (the process died between commit and removal): it is only removed.
   */
  async recover(): Promise<number> {
    let recovered = 0;
    for (const path of leftoverJournals(this.journal.dir)) {
      const mark = journalMark(path);
      const records = readJournal(path);
      await retryingConflicts(this.db, () =>
        this.db.transaction(async (tx) => {
          const [done] = await tx.query<{ name: string }>('SELECT name FROM audit_journal_mark WHERE name = ?', [mark]);
          if (done) return;
          for (let i = 0; i < records.length; i += MAX_GROUP) await append(tx, records.slice(i, i + MAX_GROUP));
          await tx.run('INSERT INTO audit_journal_mark (name) VALUES (?)', [mark]);
          recovered += records.length;
        }),
      );
      removeJournal(path);
      this.forgettable.push(mark);
    }
    return recovered;
  }

  private schedule(delay: number): void {
    if (this.timer && delay > 0) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush().catch((err) => {
        this.onError(err);
        if (!this.closed) this.schedule(RETRY_DELAY_MS);
      });
    }, delay);
    this.timer.unref();
  }

  /** One transaction: the records journalled since the last flush, with their files' marks. */
  private async flushOnce(): Promise<void> {
    const sealed = this.journal.seal();
    if (sealed) this.unflushed.push(sealed);
    const batch = this.pending;
    this.pending = [];
    const files = this.unflushed.map(journalMark);
    const forget = this.forgettable;
    try {
      await retryingConflicts(this.db, () =>
        this.db.transaction(async (tx) => {
          for (let i = 0; i < batch.length; i += MAX_GROUP) await append(tx, batch.slice(i, i + MAX_GROUP));
          await tx.insertRows('audit_journal_mark', ['name'], files.map((name) => [name]));
          for (const name of forget) await tx.run('DELETE FROM audit_journal_mark WHERE name = ?', [name]);
        }),
      );
    } catch (err) {
      this.pending = [...batch, ...this.pending];
      throw err;
    }
    for (const path of this.unflushed) removeJournal(path);
    this.unflushed = [];
    this.forgettable = [...files];
  }

  /** Commits what was recorded, then closes the audit database if it is its own. */
  async close(): Promise<void> {
    clearTimeout(this.timer);
    await this.flush();
    this.closed = true;
    if (this.ownsDatabase) await this.db.close();
  }
}

/** Appends records at the head of the chain, under the chain lock (one order across processes). */
async function append(tx: SqlExecutor, records: readonly AuditRecord[]): Promise<void> {
  await tx.lock(CHAIN_LOCK);
  let { seq, hash } = await chainHead(tx);
  const events: SqlValue[][] = [];
  const refs: SqlValue[][] = [];
  for (const record of records) {
    const content = JSON.stringify(toAuditEvent(record));
    const prev = hash;
    seq += 1;
    hash = chainHash(prev, seq, content);
    events.push([seq, record.recorded, content, prev, hash]);
    for (const [kind, ref] of searchKeys(record)) refs.push([kind, ref, seq]);
  }
  await tx.insertRowSets([
    { table: 'audit_event', columns: EVENT_COLUMNS, rows: events },
    { table: 'audit_ref', columns: REF_COLUMNS, rows: refs },
  ]);
}
