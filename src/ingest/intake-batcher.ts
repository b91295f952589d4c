import type { Repository } from '../store/repository.js';
import { Hl7v2Intake, type Admitted, type IntakeResult } from './hl7v2-intake.js';

interface Pending {
  raw: string;
  channel: string;
  resolve: (result: IntakeResult) => void;
  reject: (err: unknown) => void;
}

/** Most messages applied in one transaction. */
const MAX_BATCH = 64;

/**
 * Group commit for messages arriving on several connections at once: the messages waiting when a batch
 * starts are stored in one transaction and applied in a second, each in a savepoint of its own (one bad
 * message fails alone), and every ACK is released after the second commits. Each sender still waits for
 * its ACK before sending the next message, so a connection's order is kept; a single connection gets
 * batches of one, exactly as before. What a commit costs is shared by the batch instead of paid twice per
 * message (docs/decisions/0013).
 */
export class IntakeBatcher {
  private queue: Pending[] = [];
  private draining?: Promise<void>;

  constructor(private readonly repo: Repository) {}

  submit(raw: string, channel: string): Promise<IntakeResult> {
    return new Promise<IntakeResult>((resolve, reject) => {
      this.queue.push({ raw, channel, resolve, reject });
      this.draining ??= this.drain().finally(() => (this.draining = undefined));
    });
  }

  /** Resolves when every submitted message has been answered. */
  async idle(): Promise<void> {
    while (this.draining) await this.draining;
  }

  private async drain(): Promise<void> {
    while (this.queue.length) {
      const batch = this.queue.splice(0, MAX_BATCH);
      try {
        const admitted = await this.repo.transaction(async (tx) => {
          const intake = new Hl7v2Intake(tx);
          const out: Admitted[] = [];
          for (const p of batch) out.push(await intake.admit(p.raw, p.channel));
          return out;
        });
        const results = await this.repo.transaction(async (tx) => {
          const intake = new Hl7v2Intake(tx);
          const out: IntakeResult[] = [];
          for (const a of admitted) out.push(await intake.process(a));
          return out;
        });
        batch.forEach((p, i) => p.resolve(results[i]));
      } catch (err) {
        // Nothing is acknowledged: stored messages stay 'received' and are applied at the next start,
        // and the senders, without an ACK, send them again.
        batch.forEach((p) => p.reject(err));
      }
    }
  }
}
