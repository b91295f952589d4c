import { retryingConflicts, type Database, type SqlExecutor, type SqlValue } from '../store/database.js';
import { CHAIN_LOCK, chainHash, chainHead } from './audit-chain.js';
import { searchKeys, toAuditEvent } from './audit-event.js';
import type { AuditRecord } from './audit-record.js';

interface PendingEvent {
  content: string;
  recordedAt: number;
  keys: [string, string][];
  resolve: () => void;
  reject: (err: unknown) => void;
}

const EVENT_COLUMNS = ['seq', 'recorded_at', 'content', 'prev_hash', 'hash'] as const;
const REF_COLUMNS = ['kind', 'ref', 'seq'] as const;
/** Events per transaction at most, so one commit never holds the chain lock for long. */
const MAX_GROUP = 500;

/**
 * The append-only, hash-chained audit log. `record` resolves once the event is committed, so a caller
 * that awaits it before answering never answers a request whose event a crash could lose. Events
 * recorded while a commit is running wait for it and are then committed together, in one transaction
 * (group commit): under load, requests share commits instead of paying one each.
 */
export class AuditLog {
  private pending: PendingEvent[] = [];
  private flushing: Promise<void> | undefined;

  constructor(
    /** The database holding the audit tables: the main one on PostgreSQL, audit.db on SQLite. */
    readonly db: Database,
    private readonly ownsDatabase: boolean,
  ) {}

  record(record: AuditRecord): Promise<void> {
    const content = JSON.stringify(toAuditEvent(record));
    const keys = searchKeys(record);
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ content, recordedAt: record.recorded, keys, resolve, reject });
      this.flushing ??= this.flushAll();
    });
  }

  private async flushAll(): Promise<void> {
    while (this.pending.length) {
      const group = this.pending.splice(0, MAX_GROUP);
      try {
        await retryingConflicts(this.db, () => this.db.transaction((tx) => append(tx, group)));
        for (const event of group) event.resolve();
      } catch (err) {
        for (const event of group) event.reject(err);
      }
    }
    this.flushing = undefined;
  }

  /** Waits for the events recorded so far to be committed, then closes the audit database if it is its own. */
  async close(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.ownsDatabase) await this.db.close();
  }
}

/** Appends a group at the head of the chain, under the chain lock (one order across processes). */
async function append(tx: SqlExecutor, group: PendingEvent[]): Promise<void> {
  await tx.lock(CHAIN_LOCK);
  let { seq, hash } = await chainHead(tx);
  const events: SqlValue[][] = [];
  const refs: SqlValue[][] = [];
  for (const event of group) {
    const prev = hash;
    seq += 1;
    hash = chainHash(prev, seq, event.content);
    events.push([seq, event.recordedAt, event.content, prev, hash]);
    for (const [kind, ref] of event.keys) refs.push([kind, ref, seq]);
  }
  await tx.insertRowSets([
    { table: 'audit_event', columns: EVENT_COLUMNS, rows: events },
    { table: 'audit_ref', columns: REF_COLUMNS, rows: refs },
  ]);
}
