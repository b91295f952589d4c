import type { Resource } from '@medplum/fhirtypes';
import type { Repository, WriteObserver } from '../store/repository.js';
import { topicEvents, type TopicEvent } from './topic-events.js';

/** The outbox topic of a write of `type` that plain R4 criteria Subscriptions look at. */
export const CRITERIA_TOPIC_PREFIX = 'resource:';

const TOPIC_TYPES = ['Encounter', 'Observation', 'DiagnosticReport', 'DocumentReference', 'Patient'];

/**
 * Writes the events that notifications are made of into `notify_event`, inside the transaction of the
 * write that raises them: they commit with the data or not at all, so a crash can lose neither (the
 * dispatcher fans them out to subscriptions afterwards). Writes of a type a plain criteria Subscription
 * watches are recorded too (`resource:{type}`), and matched against the criteria when dispatched.
 */
export class NotificationOutbox implements WriteObserver {
  /** Mutable: the types of active criteria Subscriptions join it (`watchTypes`). */
  readonly types = new Set<string>(TOPIC_TYPES);
  private criteriaTypes = new Set<string>();

  /** The types plain criteria Subscriptions watch now (refreshed by the subscription cache). */
  watchTypes(types: Iterable<string>): void {
    this.criteriaTypes = new Set(types);
    for (const type of this.criteriaTypes) this.types.add(type);
  }

  /** Starts recording writes of one more type (a criteria Subscription was just written here). */
  watch(type: string): void {
    this.criteriaTypes.add(type);
    this.types.add(type);
  }

  async written(repo: Repository, resources: Resource[]): Promise<void> {
    const events: TopicEvent[] = [];
    for (const resource of resources) {
      if (TOPIC_TYPES.includes(resource.resourceType)) events.push(...(await topicEvents(repo, resource)));
      if (this.criteriaTypes.has(resource.resourceType)) {
        events.push({ topic: `${CRITERIA_TOPIC_PREFIX}${resource.resourceType}` as TopicEvent['topic'], focusType: resource.resourceType, focusId: resource.id as string, facts: { codes: [], organizations: [] } });
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
