import type { Database } from '../store/database.js';
import { leftoverJournals, type AuditJournal, type JournalSegment } from './audit-journal.js';
import { journalEntryOf } from './stored-event.js';
import type { AuditRecord } from './audit-record.js';
import { InlineAuditWriter, type AuditWriter } from './audit-writer.js';

/** Records per flush at most: a flush starts early when this many are waiting. */
const MAX_GROUP = 500;
/**
 * How long a journalled record waits before the background flush commits it. Only another process's
 * AuditEvent searches wait for it (this process's flush first; a crash loses nothing journalled). Each
 * flush costs a fixed amount besides its events: on PostgreSQL seven round trips, about 2.1 ms of the
 * writer thread's CPU and 0.7 ms of PostgreSQL's here (decision 0050), taken from the requests answered
 * beside it: at 50 ms that is 5-6 % of a core under steady load, at 250 ms about 1 %.
 */
const FLUSH_DELAY_MS = 250;
/** After a failed flush (the database unreachable), the records stay journalled and are tried again. */
const RETRY_DELAY_MS = 1000;

/**
 * The append-only, hash-chained audit log. `record` journals the record (audit-journal.ts) and returns:
 * from then on the event survives a crash of the process, so a caller that records before answering
 * never answers a request whose event a crash could lose. A background flush then hands the journal
 * segments written since the last one to the writer (audit-writer.ts: a thread of its own in a server),
 * which appends their records to the chain. `flush` commits what was recorded so far (AuditEvent searches
 * call it, so that they see their own process's latest events).
 */
export class AuditLog {
  /** Records appended since the last seal. */
  private unsealed = 0;
  /** Sealed journal segments not yet committed (a failed flush keeps them). */
  private unflushed: JournalSegment[] = [];
  /** Marks of committed and removed files, deleted by the next commit. */
  private forgettable: string[] = [];
  private flushing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private timerDelay = 0;
  private closed = false;

  constructor(
    /** The database holding the audit tables (the main one on PostgreSQL, audit.db on SQLite), for searches. */
    readonly db: Database,
    private readonly ownsDatabase: boolean,
    private readonly journal: AuditJournal,
    private readonly writer: AuditWriter = new InlineAuditWriter(db),
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  /** Journals the record (it survives a crash once this returns) and schedules its commit. */
  async record(record: AuditRecord): Promise<void> {
    if (this.closed) throw new Error('The audit log is closed');
    this.journal.append(journalEntryOf(record));
    this.schedule(++this.unsealed >= MAX_GROUP ? 0 : FLUSH_DELAY_MS);
  }

  /** Commits every record journalled so far (and whatever is journalled meanwhile). */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (!this.unsealed && !this.unflushed.length) return;
    this.flushing = this.flushOnce().finally(() => (this.flushing = undefined));
    await this.flushing;
  }

  /**
   * Appends the records of journal files left by processes that died (this data directory's), from where
   * each was committed, in their order, and removes the files.
   */
  async recover(): Promise<number> {
    const leftovers = leftoverJournals(this.journal.dir);
    if (!leftovers.length) return 0;
    const { appended, removed } = await new InlineAuditWriter(this.db).commit(
      leftovers.map((path) => ({ path, from: 0, to: Infinity, last: true })),
      [],
    );
    this.forgettable.push(...removed);
    return appended;
  }

  private schedule(delay: number): void {
    // A flush already due no later than asked serves this record too (re-arming the timer on every
    // record past MAX_GROUP cost each of those requests a few µs).
    if (this.timer && (delay > 0 || this.timerDelay === 0)) return;
    clearTimeout(this.timer);
    this.timerDelay = delay;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush().catch((err) => {
        this.onError(err);
        if (!this.closed) this.schedule(RETRY_DELAY_MS);
      });
    }, delay);
    this.timer.unref();
  }

  /** One commit: the segments sealed since the last one, deleting the marks of files removed before. */
  private async flushOnce(): Promise<void> {
    const sealed = this.journal.seal();
    this.unsealed = 0;
    if (sealed) this.unflushed.push(sealed);
    const segments = [...this.unflushed];
    const forget = this.forgettable;
    const { removed } = await this.writer.commit(segments, forget);
    this.unflushed = this.unflushed.filter((s) => !segments.includes(s));
    this.forgettable = removed;
  }

  /** Commits what was recorded, removes the journal file, stops the writer, closes its own database. */
  async close(): Promise<void> {
    clearTimeout(this.timer);
    await this.flush();
    this.closed = true;
    const file = this.journal.close();
    // Every record of the open file is committed: its last, empty segment only removes it.
    const { removed } = await this.writer.commit(file ? [{ path: file.path, from: file.size, to: file.size, last: true }] : [], this.forgettable);
    await this.writer.commit([], removed);
    await this.writer.close();
    if (this.ownsDatabase) await this.db.close();
  }
}
