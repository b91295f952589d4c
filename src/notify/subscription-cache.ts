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
 * A topic's subscriptions, in load order, and indexed by the person filter they name (`patient:in` groups,
 * else `patient` records): an event about one person is matched against the subscriptions of that
 * person's groups and records and those without a person filter, not against all 1,000. The index only
 * leaves out subscriptions whose person filter could not match; every filter is still checked.
 */
export interface TopicSubscriptions {
  all: SubscriptionEntry[];
  byGroup: Map<string, SubscriptionEntry[]>;
  byPatient: Map<string, SubscriptionEntry[]>;
  unkeyed: SubscriptionEntry[];
}

const NO_SUBSCRIPTIONS: TopicSubscriptions = { all: [], byGroup: new Map(), byPatient: new Map(), unkeyed: [] };

function addTo<T>(map: Map<string, T[]>, key: string, value: T): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

function indexed(entries: SubscriptionEntry[]): TopicSubscriptions {
  const topic: TopicSubscriptions = { all: entries, byGroup: new Map(), byPatient: new Map(), unkeyed: [] };
  for (const entry of entries) {
    const groups = entry.filters['patient:in'];
    const patients = entry.filters.patient;
    if (groups?.length) groups.forEach((g) => addTo(topic.byGroup, g.replace(/^Group\//, ''), entry));
    else if (patients?.length) patients.forEach((p) => addTo(topic.byPatient, p.replace(/^Patient\//, ''), entry));
    else topic.unkeyed.push(entry);
  }
  return topic;
}

/**
 * The active subscriptions by topic, held in memory for matching events (1,000 subscriptions are
 * matched per event without a query). Reloaded when notify_subscription changes: at once after a local
 * write, and within `maxAgeMs` after another process's.
 */
export class SubscriptionCache {
  private byTopic = new Map<string, TopicSubscriptions>();
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
    const topics = new Map<string, SubscriptionEntry[]>();
    this.byId = new Map();
    for (const entry of rows.map(entryOf)) {
      this.byId.set(entry.id, entry);
      addTo(topics, entry.topic, entry);
    }
    this.byTopic = new Map([...topics].map(([topic, entries]) => [topic, indexed(entries)]));
    this.stamp = stamp;
    return true;
  }

  forTopic(topic: string): TopicSubscriptions {
    return this.byTopic.get(topic) ?? NO_SUBSCRIPTIONS;
  }

  get(id: string): SubscriptionEntry | undefined {
    return this.byId.get(id);
  }
}
