import { randomUUID } from 'node:crypto';
import type { SqlExecutor } from '../store/database.js';

/**
 * The topics (and `resource:{type}` criteria topics) that at least one active Subscription listens to,
 * so that a write no Subscription could match leaves no outbox row. The set is cached in memory; what
 * is checked on each write is one row, `notify_state.subscriptions_stamp`, which every Subscription write
 * changes inside its own transaction. So a write sees every Subscription committed before it, in any
 * process on the same database (a time-bounded cache could not promise that across processes), and a
 * Subscription written in the same transaction as the data (a Bundle) sees that data too.
 */
export class ActiveTopics {
  private stamp?: string;
  private topics: ReadonlySet<string> = new Set();

  /** The active topics as the transaction of `sql` sees them. */
  async current(sql: SqlExecutor): Promise<ReadonlySet<string>> {
    const [row] = await sql.query<{ subscriptions_stamp: string }>('SELECT subscriptions_stamp FROM notify_state WHERE id = 1');
    const stamp = row?.subscriptions_stamp ?? '';
    if (stamp !== this.stamp) {
      // Read after the stamp: at worst newer than it, and then re-read at the next write (never older).
      const rows = await sql.query<{ topic: string }>('SELECT DISTINCT topic FROM notify_subscription WHERE active = 1');
      this.topics = new Set(rows.map((r) => r.topic));
      this.stamp = stamp;
    }
    return this.topics;
  }
}

/** Marks a change of the Subscriptions, inside the transaction that makes it (a new random stamp: a rolled-back change can't be mistaken for a later one). */
export async function subscriptionsChanged(sql: SqlExecutor): Promise<void> {
  await sql.run('UPDATE notify_state SET subscriptions_stamp = ? WHERE id = 1', [randomUUID()]);
}
