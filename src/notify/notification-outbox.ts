import type { Resource } from '@medplum/fhirtypes';
import type { SqlExecutor } from '../store/database.js';
import type { Repository, WriteObserver } from '../store/repository.js';
import { ActiveTopics } from './active-topics.js';
import { topicEvents, type TopicEvent } from './topic-events.js';
import { TOPICS } from './topics.js';

/** Signalled by each commit that writes outbox events: delivery workers (of every process on PostgreSQL) wake on it. */
export const OUTBOX_CHANNEL = 'tessera_notify';

/** The outbox topic of a write of `type` that plain R4 criteria Subscriptions look at. */
export const CRITERIA_TOPIC_PREFIX = 'resource:';

const TOPIC_TYPES = new Set(TOPICS.flatMap((t) => t.resources));

/**
 * The types whose writes the outbox looks at: those of the topics, and those plain criteria
 * Subscriptions watch as last seen. Not every type: the bulk load would parse every resource it writes.
 */
class ObservedTypes extends Set<string> {
  criteria: ReadonlySet<string> = new Set();
  override has(type: string): boolean {
    return TOPIC_TYPES.has(type) || this.criteria.has(type);
  }
}

/**
 * Writes the events that notifications are made of into `notify_event`, inside the transaction of the
 * write that raises them: they commit with the data or not at all, so a crash can lose neither (the
 * dispatcher fans them out to subscriptions afterwards). Only events of a topic some active Subscription
 * listens to are written (ActiveTopics, decision 0027); writes of a type a plain criteria Subscription
 * watches are recorded too (`resource:{type}`), and matched against the criteria when dispatched.
 */
export class NotificationOutbox implements WriteObserver {
  readonly types = new ObservedTypes();
  private readonly active = new ActiveTopics();

  /**
   * Re-reads the active topics if the Subscriptions changed. Each write of an observed type does; the
   * delivery worker does too each round, so that a criteria Subscription on a type no topic covers,
   * written by another process, is observed here within a round even if this process writes nothing else.
   */
  async refresh(sql: SqlExecutor): Promise<ReadonlySet<string>> {
    const active = await this.active.current(sql);
    this.types.criteria = new Set([...active].filter((t) => t.startsWith(CRITERIA_TOPIC_PREFIX)).map((t) => t.slice(CRITERIA_TOPIC_PREFIX.length)));
    return active;
  }

  /** Observes writes of `type` from now on (a criteria Subscription on it is being written in this process). */
  watch(type: string): void {
    this.types.criteria = new Set([...this.types.criteria, type]);
  }

  async written(repo: Repository, resources: Resource[]): Promise<void> {
    const active = await this.refresh(repo.sql);
    if (!active.size) return;
    const events: TopicEvent[] = [];
    for (const resource of resources) {
      const type = resource.resourceType;
      // Working out a resource's events reads its previous version or its message: only when a topic about its type is listened to.
      if (TOPICS.some((t) => t.resources.includes(type) && active.has(t.code))) {
        events.push(...(await topicEvents(repo, resource)).filter((e) => active.has(e.topic)));
      }
      if (active.has(`${CRITERIA_TOPIC_PREFIX}${type}`)) {
        events.push({ topic: `${CRITERIA_TOPIC_PREFIX}${type}` as TopicEvent['topic'], focusType: type, focusId: resource.id as string, facts: { codes: [], organizations: [] } });
      }
    }
    if (!events.length) return;
    const now = Date.now();
    await repo.sql.insertRows(
      'notify_event',
      ['at', 'topic', 'focus_type', 'focus_id', 'patient_id', 'facts'],
      events.map((e) => [now, e.topic, e.focusType, e.focusId, e.patientId ?? null, JSON.stringify(e.facts)]),
    );
    // Told to the workers once (if) this transaction commits: delivery starts then, not at their next poll.
    await repo.sql.notify(OUTBOX_CHANNEL);
  }

  async deleted(): Promise<void> {}
}
