import type { SqlExecutor } from '../store/database.js';
import type { ChannelType, Filters, PayloadContent, SubscriptionEntry } from './subscription-registry.js';

export interface SubscriptionRow {
  id: string;
  participant_id: string | null;
  topic: string;
  filters: string;
  channel_type: string;
  endpoint: string | null;
  headers: string | null;
  secret: string | null;
  payload: string;
  heartbeat_s: number;
  active: number;
}

export function entryOf(row: SubscriptionRow): SubscriptionEntry {
  const { filters, criteria } = JSON.parse(row.filters) as { filters: Filters; criteria?: string };
  return {
    id: row.id,
    participantId: row.participant_id ?? undefined,
    topic: row.topic,
    filters,
    criteria,
    channelType: row.channel_type as ChannelType,
    endpoint: row.endpoint ?? undefined,
    headers: row.headers ? (JSON.parse(row.headers) as string[]) : [],
    secret: row.secret ?? undefined,
    payload: row.payload as PayloadContent,
    heartbeatSeconds: Number(row.heartbeat_s),
    active: !!Number(row.active),
  };
}

export const SUBSCRIPTION_COLUMNS = 'id, participant_id, topic, filters, channel_type, endpoint, headers, secret, payload, heartbeat_s, active';

/**
 * The active subscriptions by topic, held in memory for matching events (1,000 subscriptions are
 * matched per event without a query). Reloaded when notify_subscription changes: at once after a local
 * write, and within `maxAgeMs` after another process's.
 */
export class SubscriptionCache {
  private byTopic = new Map<string, SubscriptionEntry[]>();
  private byId = new Map<string, SubscriptionEntry>();
  private stamp = '';
  private checkedAt = 0;
  private stale = true;

  constructor(private readonly maxAgeMs = 1000) {}

  invalidate(): void {
    this.stale = true;
  }

  /**
   * Reloads when due (or, with `now`, whenever the table changed: the dispatcher checks before each batch
   * of events, so that a Subscription committed before an event always sees it). Returns whether anything
   * changed.
   */
  async refresh(sql: SqlExecutor, now = false): Promise<boolean> {
    if (!now && !this.stale && Date.now() - this.checkedAt < this.maxAgeMs) return false;
    this.checkedAt = Date.now();
    this.stale = false;
    const [row] = await sql.query<{ subscriptions_stamp: string }>('SELECT subscriptions_stamp FROM notify_state WHERE id = 1');
    const stamp = row?.subscriptions_stamp ?? '';
    if (stamp === this.stamp) return false;
    const rows = await sql.query<SubscriptionRow>(`SELECT ${SUBSCRIPTION_COLUMNS} FROM notify_subscription WHERE active = 1`);
    this.byTopic = new Map();
    this.byId = new Map();
    for (const entry of rows.map(entryOf)) {
      this.byId.set(entry.id, entry);
      this.byTopic.set(entry.topic, [...(this.byTopic.get(entry.topic) ?? []), entry]);
    }
    this.stamp = stamp;
    return true;
  }

  forTopic(topic: string): SubscriptionEntry[] {
    return this.byTopic.get(topic) ?? [];
  }

  get(id: string): SubscriptionEntry | undefined {
    return this.byId.get(id);
  }
}
