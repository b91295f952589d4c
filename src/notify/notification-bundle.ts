import type { Bundle, BundleEntry, Parameters, ParametersParameter, Resource } from '@medplum/fhirtypes';
import { randomUUID } from 'node:crypto';
import { CRITERIA_TOPIC_PREFIX } from './notification-outbox.js';
import type { SubscriptionEntry } from './subscription-registry.js';
import { topicUrl, type TopicCode } from './topics.js';

export type NotificationType = 'handshake' | 'heartbeat' | 'event-notification' | 'query-status' | 'query-event';

/** One event as a notification carries it. */
export interface NotifiedEvent {
  number: number;
  at: number;
  focusType: string;
  focusId: string;
  /** The focus as the subscriber may read it (full-resource payloads). */
  resource?: Resource;
}

/** The subscription's status (R4 Backport: a Parameters resource, profile backport-subscription-status-r4). */
export function subscriptionStatus(sub: SubscriptionEntry, type: NotificationType, eventsSinceStart: number, events: NotifiedEvent[], extra: ParametersParameter[] = [], baseUrl = ''): Parameters {
  const parameter: ParametersParameter[] = [
    { name: 'subscription', valueReference: { reference: `${baseUrl ? `${baseUrl}/` : ''}Subscription/${sub.id}` } },
    ...(sub.topic.startsWith(CRITERIA_TOPIC_PREFIX) ? [] : [{ name: 'topic', valueCanonical: topicUrl(sub.topic as TopicCode) }]),
    { name: 'status', valueCode: sub.active ? 'active' : 'off' },
    { name: 'type', valueCode: type },
    { name: 'events-since-subscription-start', valueString: String(eventsSinceStart) },
    ...events.map((e) => ({
      name: 'notification-event',
      part: [
        { name: 'event-number', valueString: String(e.number) },
        { name: 'timestamp', valueInstant: new Date(e.at).toISOString() },
        ...(sub.payload === 'empty' ? [] : [{ name: 'focus', valueReference: { reference: `${baseUrl ? `${baseUrl}/` : ''}${e.focusType}/${e.focusId}` } }]),
      ],
    })),
    ...extra,
  ];
  return { resourceType: 'Parameters', id: randomUUID(), parameter };
}

/** A notification Bundle: the status first, then (id-only, full-resource) one entry per event's focus. */
export function notificationBundle(sub: SubscriptionEntry, type: NotificationType, eventsSinceStart: number, events: NotifiedEvent[], baseUrl: string): Bundle {
  const status = subscriptionStatus(sub, type, eventsSinceStart, events, [], baseUrl);
  const entries: BundleEntry[] = [
    { fullUrl: `urn:uuid:${status.id}`, resource: status, request: { method: 'GET', url: `Subscription/${sub.id}/$status` }, response: { status: '200' } },
  ];
  if (sub.payload !== 'empty') {
    for (const e of events) {
      entries.push({
        fullUrl: `${baseUrl}/${e.focusType}/${e.focusId}`,
        ...(sub.payload === 'full-resource' && e.resource ? { resource: e.resource } : {}),
        request: { method: 'PUT', url: `${e.focusType}/${e.focusId}` },
        response: { status: '200' },
      });
    }
  }
  return { resourceType: 'Bundle', id: randomUUID(), type: 'history', timestamp: new Date().toISOString(), entry: entries };
}
