import type { Repository } from '../store/repository.js';
import { Hl7v2Intake, type IntakeResult } from './hl7v2-intake.js';

interface Pending {
  raw: string;
  channel: string;
  /** Who sent it (an MLLP connection): used to tell how many senders a batch can wait for. */
  sender?: string;
  resolve: (result: IntakeResult) => void;
  reject: (err: unknown) => void;
}

/** Most messages applied in one transaction. */
const MAX_BATCH = 64;
/** Longest wait for a batch to fill up to as many messages as the last two batches had senders (gather). */
const GATHER_MS = 1;

/**
 * Group commit: the messages waiting when a batch starts are logged and applied in one transaction, and
 * every ACK is released after the commit. The batch is first applied without a savepoint per message
 * (without them, in-process runs were 5-18 % faster in four pairs of five, docs/decisions/0015); if any message
 * fails, that transaction is rolled back and the batch applied again with a savepoint per message, so
 * that the bad one is rolled back alone and logged failed in the same commit as the others. Each sender
 * waits for its ACK before sending the next message, so a connection's order is kept; a single
 * connection gets batches of one. The commit is paid once per batch (docs/decisions/0013).
 */
export class IntakeBatcher {
  private queue: Pending[] = [];
  /** The senders of the last two batches: those likely to send again as soon as they have their ACK. */
  private sendersLast = new Set<string>();
  private sendersBefore = new Set<string>();
  private draining?: Promise<void>;

  /** `gatherMs`: the longest wait for a batch to fill (see gather); tests lengthen it to be independent of timing. */
  constructor(
    private readonly repo: Repository,
    private readonly gatherMs = GATHER_MS,
  ) {}

  submit(raw: string, channel: string, sender?: string): Promise<IntakeResult> {
    return new Promise<IntakeResult>((resolve, reject) => {
      this.queue.push({ raw, channel, sender, resolve, reject });
      // Started once the I/O already waiting (other senders' messages) has been read and queued, so that it
      // joins this batch: a transaction runs to its commit without yielding to I/O.
      this.draining ??= this.gather().then(() => this.drain());
    });
  }

  /**
   * Waits for the messages of a batch to arrive: at least one turn of the event loop (the I/O already
   * waiting is read), then more turns while fewer messages are queued than there were senders in the
   * last two batches, up to `gatherMs` (1 ms unless a test says otherwise). Senders that each wait for
   * their ACK fell into step in two groups that took turns: eight connections made batches of exactly
   * four, each paying a commit. A lone sender's batches hold its one message, so it never waits beyond
   * the first turn.
   */
  private async gather(): Promise<void> {
    const started = performance.now();
    const expected = new Set([...this.sendersLast, ...this.sendersBefore]).size;
    do {
      await new Promise<void>((turn) => setImmediate(turn));
    } while (this.queue.length < expected && performance.now() - started < this.gatherMs);
  }

  private async drain(): Promise<void> {
    while (this.queue.length) {
      const batch = this.queue.splice(0, MAX_BATCH);
      this.sendersBefore = this.sendersLast;
      this.sendersLast = new Set(batch.map((p, i) => p.sender ?? `anonymous:${i}`));
      try {
        const results = await this.apply(batch);
        batch.forEach((p, i) => p.resolve(results[i]));
      } catch (err) {
        // Nothing was committed and nothing is acknowledged: the senders send these messages again.
        batch.forEach((p) => p.reject(err));
      }
    }
    // Cleared in the same synchronous turn as the last look at the queue: a sender whose ACK was just
    // released submits its next message in a later microtask and must then start a drain of its own.
    this.draining = undefined;
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
