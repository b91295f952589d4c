import { Worker } from 'node:worker_threads';
import type { Database } from '../store/database.js';
import type { StoreAddress } from '../store/store-address.js';
import { commitJournals } from './audit-commit.js';
import type { JournalSegment } from './audit-journal.js';

/**
 * The audit file's checkpoints: at most one a second while it grows (the data file's pace is ten). Each
 * checkpoint fsyncs, and the audit file's WAL grows with every request (a commit every 250 ms): at the data
 * file's pace a server answering only reads synced it ten times a second. Its WAL grows larger between
 * checkpoints, which only AuditEvent searches read. One connection checkpoints it: the writer thread's.
 */
export const AUDIT_CHECKPOINTS = { busyMs: 1000 } as const;

export interface CommitRequest {
  id: number;
  segments: JournalSegment[];
  forget: string[];
}
export interface CommitResult {
  appended: number;
  /** Names of the journal files removed (their marks can go). */
  removed: string[];
}
export type CommitReply = ({ id: number } & CommitResult) | { id: number; error: string };

/** Commits sealed journal files to the chain (commitJournals), on this thread or on a writer thread. */
export interface AuditWriter {
  commit(segments: JournalSegment[], forget: string[]): Promise<CommitResult>;
  close(): Promise<void>;
}

/** On the calling thread: for short-lived processes (CLI commands) and recovery. */
export class InlineAuditWriter implements AuditWriter {
  constructor(private readonly db: Database) {}

  commit(segments: JournalSegment[], forget: string[]): Promise<CommitResult> {
    return commitJournals(this.db, segments, forget);
  }

  async close(): Promise<void> {}
}

/**
 * On a thread of its own (audit-writer-worker.ts), with its own database connection: a running server's
 * requests then pay only for the journal line. Should the thread fail, commits go on inline, and
 * `onFail` is told once (the thread's connection checkpointed the SQLite audit file: another must now).
 */
export class ThreadAuditWriter implements AuditWriter {
  private readonly worker: Worker;
  private readonly ready: Promise<void>;
  private readonly waiting = new Map<number, { resolve: (result: CommitResult) => void; reject: (err: Error) => void }>();
  private next = 0;
  private failed: Error | undefined;
  private closing = false;

  constructor(
    /** Where the thread commits: the SQLite audit file, or the store's PostgreSQL schema. */
    target: StoreAddress,
    private readonly fallback: InlineAuditWriter,
    private readonly onFail: (err: Error) => void = () => {},
  ) {
    this.worker = new Worker(new URL('./audit-writer-entry.mjs', import.meta.url), { workerData: target });
    this.ready = new Promise((resolve, reject) => {
      this.worker.once('message', () => resolve());
      this.worker.once('error', reject);
    });
    this.worker.on('message', (reply: CommitReply | 'ready' | 'closed') => {
      if (typeof reply !== 'object') return;
      const waiter = this.waiting.get(reply.id);
      this.waiting.delete(reply.id);
      if ('error' in reply) waiter?.reject(new Error(reply.error));
      else waiter?.resolve({ appended: reply.appended, removed: reply.removed });
    });
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', () => {
      if (!this.closing) this.fail(new Error('the audit writer thread stopped'));
    });
  }

  async commit(segments: JournalSegment[], forget: string[]): Promise<CommitResult> {
    if (!this.failed) {
      try {
        await this.ready;
      } catch (err) {
        this.fail(err as Error);
      }
    }
    if (this.failed) return this.fallback.commit(segments, forget);
    const id = ++this.next;
    return new Promise<CommitResult>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ id, segments, forget } satisfies CommitRequest);
    });
  }

  async close(): Promise<void> {
    if (this.failed) return;
    this.closing = true;
    const closed = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.once('message', () => void this.worker.terminate());
    this.worker.postMessage('close');
    await closed;
  }

  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = err;
    this.onFail(err);
    for (const waiter of this.waiting.values()) waiter.reject(err);
    this.waiting.clear();
  }
}
