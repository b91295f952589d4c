import type { Resource } from '@medplum/fhirtypes';
import type { Repository, WriteObserver } from '../store/repository.js';
import { ActiveTopics } from './active-topics.js';
import { topicEvents, type TopicEvent } from './topic-events.js';
import { TOPICS } from './topics.js';

/** The outbox topic of a write of `type` that plain R4 criteria Subscriptions look at. */
export const CRITERIA_TOPIC_PREFIX = 'resource:';

/** Every resource type: a plain criteria Subscription written by another process may watch any of them. */
class EveryType extends Set<string> {
  override has(): boolean {
    return true;
  }
}

/**
 * Writes the events that notifications are made of into `notify_event`, inside the transaction of the
 * write that raises them: they commit with the data or not at all, so a crash can lose neither (the
 * dispatcher fans them out to subscriptions afterwards). Only events of a topic some active Subscription
 * listens to are written (ActiveTopics); writes of a type a plain criteria Subscription watches are
 * recorded too (`resource:{type}`), and matched against the criteria when dispatched.
 */
export class NotificationOutbox implements WriteObserver {
  readonly types: ReadonlySet<string> = new EveryType();
  private readonly active = new ActiveTopics();

  async written(repo: Repository, resources: Resource[]): Promise<void> {
    const active = await this.active.current(repo.sql);
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
  }

  async deleted(): Promise<void> {}
}
