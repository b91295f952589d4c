import type { Bundle, BundleEntry, Parameters, ParametersParameter } from '@medplum/fhirtypes';
import { badRequest, fhirError, notFound } from '../../fhir/outcome.js';
import { eventOf, EVENT_COLUMNS } from '../../notify/event-dispatcher.js';
import { subscriptionStatus, type NotifiedEvent } from '../../notify/notification-bundle.js';
import { entryOf, SUBSCRIPTION_COLUMNS, type SubscriptionRow } from '../../notify/subscription-cache.js';
import { SubscriptionRegistry } from '../../notify/subscription-registry.js';
import { subscriptionTopicResource, TOPICS } from '../../notify/topics.js';
import { WEBSOCKET_PATH } from '../../notify/websocket-hub.js';
import { participantForClient } from '../../participants/participants.js';
import type { Repository } from '../../store/repository.js';
import { authorize, policyOf, requestFor, requireReachable, type FhirRequest, type FhirResponse } from '../fhir-request.js';
import { dispatch } from '../fhir-router.js';
import { searchInteraction } from '../search-interaction.js';

export const SUBSCRIPTION_OPERATIONS = new Set(['$status', '$events', '$get-ws-binding-token']);

/** The topics this server offers (GET SubscriptionTopic, SubscriptionTopic/{code}): R4B-shaped, served beside R4 as the Backport does. */
export function subscriptionTopics(req: FhirRequest, id: string | undefined): FhirResponse {
  if (id) {
    const topic = TOPICS.find((t) => t.code === id);
    if (!topic) throw notFound(`SubscriptionTopic/${id} not found`);
    return { status: 200, rawBody: JSON.stringify(subscriptionTopicResource(topic)) };
  }
  const bundle = { resourceType: 'Bundle', type: 'searchset', total: TOPICS.length, entry: TOPICS.map((t) => ({ fullUrl: `${req.baseUrl}/SubscriptionTopic/${t.code}`, resource: subscriptionTopicResource(t), search: { mode: 'match' } })) };
  return { status: 200, rawBody: JSON.stringify(bundle) };
}

/** $status, $events and $get-ws-binding-token on Subscription/{id}: for callers who may read that Subscription. */
export async function subscriptionOperation(repo: Repository, id: string, operation: string, req: FhirRequest): Promise<FhirResponse> {
  authorize(req, 'Subscription', 'r');
  await requireReachable(repo, req, 'Subscription', id, 'r');
  const [row] = await repo.sql.query<StateRow>(`SELECT ${SUBSCRIPTION_COLUMNS}, notified_count, last_error FROM notify_subscription WHERE id = ?`, [id]);
  if (!row) throw notFound(`Subscription/${id} not found`);
  const sub = entryOf(row);
  if (operation === '$status') {
    return { status: 200, body: subscriptionStatus(sub, 'query-status', Number(row.notified_count), [], await operationalFacts(repo, id, row.last_error), req.baseUrl) };
  }
  if (operation === '$get-ws-binding-token') {
    if (sub.channelType !== 'websocket') throw badRequest('$get-ws-binding-token is for Subscriptions with a websocket channel');
    // The socket receives what the Subscription's participant may see: only that participant's own client
    // binds one, or a caller who may read everything anyway (the exchange's operators).
    const caller = req.auth ? await participantForClient(repo, req.auth.clientId) : undefined;
    if (req.auth && caller?.id !== sub.participantId) {
      policyOf(req).requireUnrestricted('*', 'r', "A websocket binding to another participant's Subscription", { labels: true, privacy: true });
    }
    const hub = repo.observerOf(SubscriptionRegistry)?.hub;
    if (!hub) throw fhirError(503, 'not-supported', 'This server process has no websocket channel');
    const { token, expires } = await hub.issueToken(id);
    const wsUrl = req.baseUrl.replace(/^http/, 'ws').replace(/\/fhir\/?$/, '') + WEBSOCKET_PATH;
    const parameter: ParametersParameter[] = [
      { name: 'token', valueString: token },
      { name: 'expiration', valueDateTime: new Date(expires).toISOString() },
      { name: 'subscription', valueString: `Subscription/${id}` },
      { name: 'websocket-url', valueUrl: wsUrl },
    ];
    return { status: 200, body: { resourceType: 'Parameters', parameter } as Parameters };
  }
  return { status: 200, body: await events(repo, sub, Number(row.notified_count), req) };
}

type StateRow = SubscriptionRow & { notified_count: number; last_error: string | null };

/**
 * GET Subscription/$status (the Backport's type-level form): the status, with backlog, dead letters,
 * last error and latency, of every Subscription the caller may search (at most 1,000), narrowed by `id`
 * (comma-separated or repeated) and `status` (active, off). For operators' and portal views.
 */
export async function subscriptionStatuses(repo: Repository, req: FhirRequest): Promise<FhirResponse> {
  authorize(req, 'Subscription', 's');
  const ids = req.query.getAll('id').flatMap((v) => v.split(',')).filter(Boolean);
  const statuses = req.query.getAll('status').flatMap((v) => v.split(',')).filter(Boolean);
  const query = new URLSearchParams({ _count: '1000', _elements: 'id' });
  if (ids.length) query.set('_id', ids.join(','));
  // Through the search, so the policy decides which Subscriptions the caller may see.
  const found = await searchInteraction(repo, 'Subscription', req, query);
  const entries: BundleEntry[] = [];
  for (const id of (found.entry ?? []).map((e) => e.resource?.id as string)) {
    const [row] = await repo.sql.query<StateRow>(`SELECT ${SUBSCRIPTION_COLUMNS}, notified_count, last_error FROM notify_subscription WHERE id = ?`, [id]);
    if (!row) continue;
    const sub = entryOf(row);
    if (statuses.length && !statuses.includes(sub.active ? 'active' : 'off')) continue;
    const status = subscriptionStatus(sub, 'query-status', Number(row.notified_count), [], await operationalFacts(repo, id, row.last_error), req.baseUrl);
    entries.push({ fullUrl: `urn:uuid:${status.id}`, resource: status, search: { mode: 'match' } });
  }
  return { status: 200, body: { resourceType: 'Bundle', type: 'searchset', total: entries.length, entry: entries } as Bundle };
}

/** Backlog, dead letters, last error and delivery latency (event written to receiver's acceptance) of the last 1,000 deliveries. */
async function operationalFacts(repo: Repository, id: string, lastError: string | null): Promise<ParametersParameter[]> {
  const counts = await repo.sql.query<{ status: string; n: number }>('SELECT status, COUNT(*) AS n FROM notify_delivery WHERE subscription_id = ? GROUP BY status', [id]);
  const count = (status: string) => Number(counts.find((c) => c.status === status)?.n ?? 0);
  const latencies = (
    await repo.sql.query<{ ms: number }>(
      "SELECT d.delivered_at - e.at AS ms FROM notify_delivery d JOIN notify_event e ON e.seq = d.event_seq WHERE d.subscription_id = ? AND d.status = 'delivered' ORDER BY d.event_number DESC LIMIT 1000",
      [id],
    )
  )
    .map((r) => Number(r.ms))
    .sort((a, b) => a - b);
  const pct = (p: number) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] : undefined);
  const facts: ParametersParameter[] = [
    { name: 'backlog', valueInteger: count('pending') },
    { name: 'delivered', valueInteger: count('delivered') },
    { name: 'dead-letters', valueInteger: count('dead') },
    { name: 'withheld', valueInteger: count('withheld') },
  ];
  if (lastError) facts.push({ name: 'last-error', valueString: lastError });
  if (latencies.length) facts.push({ name: 'latency-p50-ms', valueInteger: pct(0.5) }, { name: 'latency-p95-ms', valueInteger: pct(0.95) });
  return facts;
}

/**
 * $events: the subscription's retained events by number (eventsSinceNumber, eventsUntilNumber), each
 * focus shown as the caller may read it now: what the policy withholds from the caller is left out.
 */
async function events(repo: Repository, sub: ReturnType<typeof entryOf>, total: number, req: FhirRequest): Promise<Bundle> {
  const since = Number(req.query.get('eventsSinceNumber') ?? 1);
  const until = Number(req.query.get('eventsUntilNumber') ?? total);
  if (!Number.isInteger(since) || !Number.isInteger(until)) throw badRequest('eventsSinceNumber and eventsUntilNumber are integers');
  const content = req.query.get('content') ?? sub.payload;
  const rows = await repo.sql.query<Record<string, unknown>>(
    `SELECT d.notified_number, ${EVENT_COLUMNS.split(', ').map((c) => `e.${c}`).join(', ')} FROM notify_delivery d JOIN notify_event e ON e.seq = d.event_seq
     WHERE d.subscription_id = ? AND d.notified_number >= ? AND d.notified_number <= ? AND d.status <> 'withheld' ORDER BY d.notified_number LIMIT 1000`,
    [sub.id, since, until],
  );
  const shown: NotifiedEvent[] = [];
  const entries: BundleEntry[] = [];
  for (const r of rows) {
    const event = eventOf(r as never);
    const read = await readAsCaller(repo, req, event.focusType, event.focusId);
    if (!read) continue;
    shown.push({ number: Number(r.notified_number), at: event.at, focusType: event.focusType, focusId: event.focusId });
    if (content !== 'empty') entries.push({ fullUrl: `${req.baseUrl}/${event.focusType}/${event.focusId}`, ...(content === 'full-resource' ? { resource: read } : {}), request: { method: 'PUT', url: `${event.focusType}/${event.focusId}` }, response: { status: '200' } });
  }
  const status = subscriptionStatus({ ...sub, payload: content as typeof sub.payload }, 'query-event', total, shown, [], req.baseUrl);
  return { resourceType: 'Bundle', type: 'history', timestamp: new Date().toISOString(), entry: [{ fullUrl: `urn:uuid:${status.id}`, resource: status, request: { method: 'GET', url: `Subscription/${sub.id}/$events` }, response: { status: '200' } }, ...entries] };
}

async function readAsCaller(repo: Repository, req: FhirRequest, type: string, id: string) {
  try {
    const res = await dispatch(repo, { ...requestFor('GET', `${type}/${id}`, { baseUrl: req.baseUrl, auth: req.auth }), policy: policyOf(req) });
    return res.body ?? (res.rawBody ? JSON.parse(res.rawBody) : undefined);
  } catch {
    return undefined;
  }
}
