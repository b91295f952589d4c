import { retryingConflicts } from '../store/database.js';
import type { Repository } from '../store/repository.js';
import { Hl7v2Intake, type IntakeResult } from './hl7v2-intake.js';

interface Pending {
  raw: string | Buffer;
  channel: string;
  /** Who sent it (an MLLP connection): used to tell how many senders a batch can wait for. */
  sender: string;
  resolve: (result: IntakeResult) => void;
  reject: (err: unknown) => void;
}

/** Most messages applied in one transaction. */
const MAX_BATCH = 64;
/** Longest wait for a batch to fill up to as many messages as recent batches had senders (gather). */
const GATHER_MS = 1;

/**
 * Group commit: the messages waiting when a batch starts are logged and applied in one transaction, and
 * every ACK is released after the commit. The batch is first applied without a savepoint per message
 * (without them, in-process runs were 5-18 % faster in four pairs of five, docs/decisions/0015); if any message
 * fails, that transaction is rolled back and the batch applied again with a savepoint per message, so
 * that the bad one is rolled back alone and logged failed in the same commit as the others. Each sender
 * waits for its ACK before sending the next message, so a connection's order is kept; a single
 * connection gets batches of one. The commit is paid once per batch (docs/decisions/0013).
 *
 * As many batches run at once as the database has useful writers (`concurrentWriters`: one on SQLite;
 * on PostgreSQL several, so that mapping and validation here overlap the server's work on another
 * batch instead of waiting for each round trip). Concurrent batches lock what they update in the order
 * their messages need it, so two of them can deadlock; the one PostgreSQL ends is run again whole.
 */
export class IntakeBatcher {
  private queue: Pending[] = [];
  /** The senders of the last batches started: those likely to send again as soon as they have their ACK. */
  private recentSenders: Set<string>[] = [];
  /** Senders with a message in a batch being applied: they send nothing more until it commits. */
  private readonly busySenders = new Map<string, number>();
  private running = 0;
  private gathering = false;
  private anonymous = 0;
  private readonly concurrency: number;

  /**
   * `gatherMs`: the longest wait for a batch to fill (see gather); tests lengthen it to be independent of
   * timing. `concurrency`: batches applied at once (default: the database's `concurrentWriters`).
   */
  constructor(
    private readonly repo: Repository,
    private readonly gatherMs = GATHER_MS,
    concurrency?: number,
  ) {
    this.concurrency = concurrency ?? repo.db.concurrentWriters;
  }

  submit(raw: string | Buffer, channel: string, sender?: string): Promise<IntakeResult> {
    return new Promise<IntakeResult>((resolve, reject) => {
      this.queue.push({ raw, channel, sender: sender ?? `anonymous:${this.anonymous++}`, resolve, reject });
      this.schedule();
    });
  }

  /** Starts gathering the next batch if messages wait and a writer is free (and no gather is under way). */
  private schedule(): void {
    if (this.gathering || this.running >= this.concurrency || !this.queue.length) return;
    this.gathering = true;
    void this.gather(this.batchSize()).then(() => {
      this.gathering = false;
      this.start(this.queue.splice(0, this.batchSize()));
      this.schedule();
    });
  }

  /**
   * Messages per batch: the recent senders (or the messages queued, if more) shared among the writers, so
   * that with several writers (PostgreSQL) eight senders make batches that overlap instead of one batch
   * that waits for each round trip in turn; with one writer, everything queued.
   */
  private batchSize(): number {
    const senders = Math.max(new Set(this.recentSenders.flatMap((batch) => [...batch])).size, this.queue.length, 1);
    return Math.min(MAX_BATCH, Math.ceil(senders / this.concurrency));
  }

  /**
   * Waits for the messages of a batch to arrive: at least one turn of the event loop (the I/O already
   * waiting is read), then more turns while fewer messages are queued than the batch's size or the
   * recent batches' senders not waiting for an ACK now, up to `gatherMs` (1 ms unless a test says otherwise).
   * Senders that each wait for their ACK fell into step in two groups that took turns: eight connections
   * made batches of exactly four, each paying a commit. A lone sender's batches hold its one message, so
   * it never waits beyond the first turn.
   */
  private async gather(size: number): Promise<void> {
    const started = performance.now();
    const idle = new Set(this.recentSenders.flatMap((senders) => [...senders].filter((s) => !this.busySenders.has(s)))).size;
    const expected = Math.min(size, idle);
    do {
      await new Promise<void>((turn) => setImmediate(turn));
    } while (this.queue.length < expected && performance.now() - started < this.gatherMs);
  }

  private start(batch: Pending[]): void {
    // The senders of the last `concurrency + 1` batches: with one writer, the last two.
    this.recentSenders = [new Set(batch.map((p) => p.sender)), ...this.recentSenders].slice(0, this.concurrency + 1);
    this.running++;
    for (const p of batch) this.busySenders.set(p.sender, (this.busySenders.get(p.sender) ?? 0) + 1);
    void retryingConflicts(this.repo.db, () => this.apply(batch))
      .then(
        (results) => batch.forEach((p, i) => p.resolve(results[i])),
        // Nothing was committed and nothing is acknowledged: the senders send these messages again.
        (err) => batch.forEach((p) => p.reject(err)),
      )
      .finally(() => {
        this.running--;
        for (const p of batch) {
          const left = (this.busySenders.get(p.sender) ?? 1) - 1;
          if (left) this.busySenders.set(p.sender, left);
          else this.busySenders.delete(p.sender);
        }
        this.schedule();
      });
  }

  /** One transaction for the batch (without a savepoint per message unless one of them fails). */
  private async apply(batch: Pending[]): Promise<IntakeResult[]> {
    return this.repo.optimistically(async (repo) => {
      const intake = new Hl7v2Intake(repo);
      const out: IntakeResult[] = [];
      for (const p of batch) out.push(await intake.process(await intake.admit(p.raw, p.channel)));
      return out;
    });
  }
}
