import { requestFor } from '../engine/fhir-request.js';
import { dispatch } from '../engine/fhir-router.js';
import type { Bundle } from '@medplum/fhirtypes';
import type { Repository } from '../store/repository.js';
import { CRITERIA_TOPIC_PREFIX } from './notification-outbox.js';
import { personKeysOf, type PersonKeys } from './roster-match.js';
import type { SubscriptionCache } from './subscription-cache.js';
import { lockOrder } from './delivery-ledger.js';
import type { SubscriptionEntry } from './subscription-registry.js';
import type { EventFacts } from './topic-events.js';

export interface OutboxEvent {
  seq: number;
  at: number;
  topic: string;
  focusType: string;
  focusId: string;
  patientId?: string;
  facts: EventFacts;
}

interface EventRow {
  seq: number;
  at: number;
  topic: string;
  focus_type: string;
  focus_id: string;
  patient_id: string | null;
  facts: string;
}

export function eventOf(row: EventRow): OutboxEvent {
  return { seq: Number(row.seq), at: Number(row.at), topic: row.topic, focusType: row.focus_type, focusId: row.focus_id, patientId: row.patient_id ?? undefined, facts: JSON.parse(row.facts) as EventFacts };
}

export const EVENT_COLUMNS = 'seq, at, topic, focus_type, focus_id, patient_id, facts';

/** Events one dispatch takes at most. */
const DISPATCH_LIMIT = 500;

/** What a dispatch did: events taken, whether more may be waiting (it took its limit), deliveries made. */
export interface DispatchResult {
  events: number;
  more: boolean;
  deliveries: number;
}

/**
 * Fans outbox events out to the subscriptions whose topic and filters they match: one delivery per
 * (subscription, event), placed in the subscription's queue (event_number: its internal order; the
 * number the subscriber sees is given when the event is sent, see DeliveryWorker), and marks the events
 * dispatched, all in one transaction. One dispatcher at a time across processes (a writer lock), so
 * queue places never collide or skip.
 * Without `signalled` (a commit has just said there are events), a plain read looks first.
 */
export async function dispatchEvents(repo: Repository, cache: SubscriptionCache, options: { limit?: number; signalled?: boolean } = {}): Promise<DispatchResult> {
  const limit = options.limit ?? DISPATCH_LIMIT;
  // A plain read first, unless a commit has just signalled events: most polls find nothing, and the
  // transaction (with the dispatch lock) is for work.
  if (!options.signalled && !(await repo.sql.query('SELECT seq FROM notify_event WHERE dispatched = 0 LIMIT 1')).length) return { events: 0, more: false, deliveries: 0 };
  return repo.transaction(async (tx) => {
    // Lost in a database crash, the dispatch is lost whole and done again: nothing was sent for it before
    // a later commit that waits for the disk (the numbering before each send) carried it there.
    await tx.sql.commitWithoutWaitingForDisk();
    await tx.sql.lock('tessera-notify-dispatch');
    // Taken and marked in one statement (the dispatch lock keeps other dispatchers away meanwhile); undone with the rest on an error.
    const rows = (
      await tx.sql.query<EventRow>(`UPDATE notify_event SET dispatched = 1 WHERE seq IN (SELECT seq FROM notify_event WHERE dispatched = 0 ORDER BY seq LIMIT ${limit}) RETURNING ${EVENT_COLUMNS}`)
    ).sort((a, b) => Number(a.seq) - Number(b.seq));
    if (!rows.length) return { events: 0, more: false, deliveries: 0 };
    await cache.refresh(tx.sql, true);
    const matched = new Map<string, number[]>();
    const events = rows.map(eventOf);
    // The persons of the events that a subscription with a person filter may match: read together, in one statement.
    const byPerson = (topic: string) => !topic.startsWith(CRITERIA_TOPIC_PREFIX) && (cache.forTopic(topic).byGroup.size > 0 || cache.forTopic(topic).byPatient.size > 0);
    const people = await personKeysOf(tx, events.filter((e) => e.patientId && byPerson(e.topic)).map((e) => e.patientId as string));
    for (const event of events) {
      for (const sub of await matchingSubscriptions(tx, cache, event, people)) {
        matched.set(sub.id, [...(matched.get(sub.id) ?? []), event.seq]);
      }
    }
    const now = Date.now();
    const deliveries: (string | number)[][] = [];
    // In lockOrder, as workers lock the several subscriptions of a round: no two wait for each other in a cycle.
    for (const id of lockOrder(matched.keys())) {
      const seqs = matched.get(id) as number[];
      // One statement: the row's lock orders this with a worker releasing the subscription (it reads the pending after it).
      const [state] = await tx.sql.query<{ event_count: number }>(
        'UPDATE notify_subscription SET event_count = event_count + ?, next_due = CASE WHEN next_due > ? THEN ? ELSE next_due END WHERE id = ? RETURNING event_count',
        [seqs.length, now, now, id],
      );
      const first = Number(state?.event_count ?? 0) - seqs.length + 1;
      seqs.forEach((seq, i) => deliveries.push([id, first + i, seq, 'pending', 0, now]));
    }
    for (let i = 0; i < deliveries.length; i += 2000) {
      await tx.sql.insertRows('notify_delivery', ['subscription_id', 'event_number', 'event_seq', 'status', 'attempts', 'next_attempt'], deliveries.slice(i, i + 2000));
    }
    return { events: rows.length, more: rows.length === limit, deliveries: deliveries.length };
  });
}

const NO_PERSON: PersonKeys = { patientIds: new Set(), identifiers: [], groups: new Set() };

async function matchingSubscriptions(repo: Repository, cache: SubscriptionCache, event: OutboxEvent, people: Map<string, PersonKeys>): Promise<SubscriptionEntry[]> {
  const topic = cache.forTopic(event.topic);
  if (!topic.all.length) return [];
  if (event.topic.startsWith(CRITERIA_TOPIC_PREFIX)) {
    const out: SubscriptionEntry[] = [];
    for (const sub of topic.all) if (await meetsCriteria(repo, sub.criteria as string, event.focusId)) out.push(sub);
    return out;
  }
  const personOf = async () => (event.patientId && people.get(event.patientId)) || NO_PERSON;
  // Only the subscriptions whose person filter this person can meet, and those without one.
  const candidates = new Set(topic.unkeyed);
  if (topic.byGroup.size || topic.byPatient.size) {
    const { groups, patientIds } = await personOf();
    for (const g of groups) topic.byGroup.get(g)?.forEach((s) => candidates.add(s));
    for (const p of patientIds) topic.byPatient.get(p)?.forEach((s) => candidates.add(s));
  }
  const out: SubscriptionEntry[] = [];
  // In the topic's load order (the deliveries' rows are locked in lockOrder, in dispatchEvents).
  for (const sub of topic.all.filter((s) => candidates.has(s))) {
    if (await matchesFilters(sub, event.facts, personOf)) out.push(sub);
  }
  return out;
}

/** Every filter given must match (values of one filter: any). */
async function matchesFilters(sub: SubscriptionEntry, facts: EventFacts, person: () => Promise<PersonKeys>): Promise<boolean> {
  for (const [name, values] of Object.entries(sub.filters)) {
    switch (name) {
      case 'patient': {
        const ids = (await person()).patientIds;
        if (!values.some((v) => ids.has(v.replace(/^Patient\//, '')))) return false;
        break;
      }
      case 'patient:in': {
        const groups = (await person()).groups;
        if (!values.some((v) => groups.has(v.replace(/^Group\//, '')))) return false;
        break;
      }
      case 'class':
        if (!facts.class || !values.includes(facts.class)) return false;
        break;
      case 'type':
      case 'code':
        if (!values.some((v) => facts.codes.includes(v))) return false;
        break;
      case 'organization':
        if (!values.some((v) => facts.organizations.includes(v.replace(/^Organization\//, '')))) return false;
        break;
      case 'abnormal':
        if (values.includes('true') !== !!facts.abnormal) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

/** Whether the resource meets a plain R4 Subscription's criteria: the criteria searched with its `_id`, as the server. */
async function meetsCriteria(repo: Repository, criteria: string, id: string): Promise<boolean> {
  const url = `${criteria}${criteria.includes('?') ? '&' : '?'}_id=${encodeURIComponent(id)}&_summary=count`;
  try {
    const res = await dispatch(repo, requestFor('GET', url, { baseUrl: '' }));
    return ((res.body as Bundle | undefined)?.total ?? 0) > 0;
  } catch {
    return false; // criteria the search cannot answer match nothing (they were accepted when written)
  }
}
