import type { Extension, Resource, Subscription } from '@medplum/fhirtypes';
import { isKnownResourceType } from '../fhir/resource-types.js';
import { badRequest, fhirError } from '../fhir/outcome.js';
import { MESSAGE_SYSTEM } from '../ingest/message-provenance.js';
import type { Repository, WriteObserver } from '../store/repository.js';
import { subscriptionsChanged } from './active-topics.js';
import { CRITERIA_TOPIC_PREFIX, type NotificationOutbox } from './notification-outbox.js';
import type { WebSocketHub } from './websocket-hub.js';
import { topicByUrl } from './topics.js';
import { keptValues, SIGNING_SECRET, takeWriteOnly, type TakenValues } from './write-only-channel.js';

export const BACKPORT = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/';
export const FILTER_CRITERIA = `${BACKPORT}backport-filter-criteria`;
export const PAYLOAD_CONTENT = `${BACKPORT}backport-payload-content`;
export const HEARTBEAT_PERIOD = `${BACKPORT}backport-heartbeat-period`;
/** Tessera's extension naming the participant a subscription is for. */
export const SUBSCRIBER = 'http://tessera-hie.org/fhir/StructureDefinition/subscriber';
export { SIGNING_SECRET, WRITE_ONLY_VALUE } from './write-only-channel.js';

/** A subscription's next_due when it has nothing pending and no heartbeat: far in the future, never claimed. */
export const NEVER = 8_000_000_000_000_000;

export type PayloadContent = 'empty' | 'id-only' | 'full-resource';
export type ChannelType = 'rest-hook' | 'websocket' | 'message';

/** A filter: parameter (with modifier, e.g. `patient:in`) and the values any of which may match. */
export type Filters = Record<string, string[]>;

/** A Subscription as the delivery machinery reads it (a row of notify_subscription). */
export interface SubscriptionEntry {
  id: string;
  participantId?: string;
  /** A topic code, or `resource:{type}` for a plain criteria Subscription. */
  topic: string;
  filters: Filters;
  /** For a criteria Subscription: the criteria (`Observation?code=...`). */
  criteria?: string;
  channelType: ChannelType;
  endpoint?: string;
  headers: string[];
  secret?: string;
  payload: PayloadContent;
  heartbeatSeconds: number;
  active: boolean;
}

/** Reads the parts of a Subscription that say what and how to deliver; a 422 says what is wrong. */
export function subscriptionEntry(sub: Subscription, participantId: string | undefined): SubscriptionEntry {
  const topic = topicByUrl(sub.criteria);
  let topicCode: string;
  let filters: Filters = {};
  let criteria: string | undefined;
  if (topic) {
    topicCode = topic.code;
    const filterText = (sub as { _criteria?: { extension?: Extension[] } })._criteria?.extension?.filter((e) => e.url === FILTER_CRITERIA).map((e) => e.valueString ?? '') ?? [];
    for (const text of filterText) filters = { ...filters, ...parseFilter(text, topic.filters, topic.resources) };
  } else {
    const type = sub.criteria.split('?')[0];
    if (!/^[A-Z][A-Za-z]+(\?.*)?$/.test(sub.criteria) || !isKnownResourceType(type)) {
      throw unprocessable(`Subscription.criteria "${sub.criteria}" is neither a topic this server offers (GET /fhir/SubscriptionTopic) nor R4 search criteria (Type?parameters)`);
    }
    topicCode = `${CRITERIA_TOPIC_PREFIX}${type}`;
    criteria = sub.criteria;
  }
  const channel = sub.channel;
  const channelType = channel.type as ChannelType;
  if (!['rest-hook', 'websocket', 'message'].includes(channelType)) {
    throw unprocessable(`Channel type "${channel.type}" is not offered: use rest-hook, websocket, or message (HL7 v2 over MLLP, endpoint mllp://host:port)`);
  }
  if (channelType === 'rest-hook' && !/^https?:\/\/\S+$/.test(channel.endpoint ?? '')) {
    throw unprocessable('A rest-hook channel needs an http(s) endpoint');
  }
  if (channelType === 'message' && !/^mllp:\/\/[^:/\s]+:\d+$/.test(channel.endpoint ?? '')) {
    throw unprocessable('A message channel forwards HL7 v2 over MLLP: its endpoint is mllp://host:port');
  }
  const payload = (((channel as { _payload?: { extension?: Extension[] } })._payload?.extension ?? []).find((e) => e.url === PAYLOAD_CONTENT)?.valueCode ?? (channel.payload ? 'id-only' : 'empty')) as PayloadContent;
  if (!['empty', 'id-only', 'full-resource'].includes(payload)) {
    throw unprocessable(`Payload content "${payload}" is not one of empty, id-only, full-resource`);
  }
  const heartbeat = (channel.extension ?? []).find((e) => e.url === HEARTBEAT_PERIOD)?.valueUnsignedInt ?? 0;
  const secret = (channel.extension ?? []).find((e) => e.url === SIGNING_SECRET)?.valueString;
  return {
    id: sub.id as string,
    participantId,
    topic: topicCode,
    filters,
    criteria,
    channelType,
    endpoint: channel.endpoint,
    headers: channel.header ?? [],
    secret,
    payload,
    heartbeatSeconds: heartbeat,
    active: sub.status === 'requested' || sub.status === 'active',
  };
}

/** `Encounter?patient:in=Group/1&class=EMER,IMP` to { 'patient:in': ['Group/1'], class: ['EMER', 'IMP'] }. */
export function parseFilter(text: string, allowed: string[], types: string[]): Filters {
  const q = text.indexOf('?');
  const type = q >= 0 ? text.slice(0, q) : '';
  if (type && !types.includes(type)) throw unprocessable(`Filter criteria "${text}": this topic is about ${types.join(', ')}, not ${type}`);
  const out: Filters = {};
  for (const [name, value] of new URLSearchParams(q >= 0 ? text.slice(q + 1) : text)) {
    if (!allowed.includes(name)) throw unprocessable(`Filter "${name}" is not offered by this topic (it offers ${allowed.join(', ')})`);
    out[name] = [...(out[name] ?? []), ...value.split(',').filter(Boolean)];
  }
  return out;
}

function unprocessable(message: string): Error {
  return fhirError(422, 'invalid', message);
}

/**
 * Keeps notify_subscription in step with the Subscription resources, inside their transaction: a
 * Subscription the delivery machinery cannot honour is refused (422) rather than stored and silently
 * never delivered. Its participant: the one whose client wrote it (attributed writes carry the message
 * log's id), else the `subscriber` extension an operator gives.
 */
export class SubscriptionRegistry implements WriteObserver {
  readonly types = new Set(['Subscription']);
  /** Called after a local change, so that this process's caches reload at once. */
  onChange?: () => void;
  /** The websocket channel of this process, for `$get-ws-binding-token`. */
  hub?: WebSocketHub;

  /** Write-only values taken out of Subscriptions being written, by id, from `prepare` to `written`. */
  private readonly taken = new Map<string, TakenValues>();

  constructor(private readonly outbox?: NotificationOutbox) {}

  /**
   * Takes the write-only parts of the channel (signing secret, headers: write-only-channel.ts) out of the
   * Subscription before it is stored, so that no read of it (owner, operator, history) shows them;
   * notify_subscription keeps them.
   */
  async prepare(_repo: Repository, resources: Resource[]): Promise<Resource[]> {
    return resources.map((resource) => {
      if (resource.resourceType !== 'Subscription' || !resource.channel) return resource;
      const { stored, taken } = takeWriteOnly(resource);
      this.taken.set(resource.id as string, taken);
      return stored;
    });
  }

  /** A new secret or new header lines are a change, though the stored Subscription shows placeholders as before. */
  keepsNewValues(resource: Resource): boolean {
    return resource.resourceType === 'Subscription' && Object.keys(this.taken.get(resource.id as string) ?? {}).length > 0;
  }

  async written(repo: Repository, resources: Subscription[]): Promise<void> {
    const now = Date.now();
    for (const sub of resources) {
      const entry = subscriptionEntry(sub, await participantOf(repo, sub));
      // This process observes writes of a criteria Subscription's type at once (others: at their next refresh).
      if (entry.criteria && entry.active) this.outbox?.watch(entry.topic.slice(CRITERIA_TOPIC_PREFIX.length));
      if (!entry.participantId) {
        // What a subscriber receives is what its participant may see: without one there is no policy to apply.
        throw unprocessable(`A Subscription is for a participant: write it with the participant's client, or name its Organization in the extension ${SUBSCRIBER}`);
      }
      const existing = await repo.sql.query<{ id: string; secret: string | null; headers: string | null }>('SELECT id, secret, headers FROM notify_subscription WHERE id = ?', [entry.id]);
      const kept = keptValues(sub.channel, this.taken.get(entry.id) ?? {}, existing[0]);
      this.taken.delete(entry.id);
      const values = [entry.participantId ?? null, entry.topic, JSON.stringify({ filters: entry.filters, criteria: entry.criteria }), entry.channelType, entry.endpoint ?? null, kept.headers, kept.secret, entry.payload, entry.heartbeatSeconds, entry.active ? 1 : 0, now];
      if (existing.length) {
        await repo.sql.run('UPDATE notify_subscription SET participant_id = ?, topic = ?, filters = ?, channel_type = ?, endpoint = ?, headers = ?, secret = ?, payload = ?, heartbeat_s = ?, active = ?, updated_at = ?, next_due = 0 WHERE id = ?', [...values, entry.id]);
      } else {
        // Not due until it has something to send (the dispatcher makes it due) or a heartbeat: a store of a
        // thousand new Subscriptions is not swept one by one before the first event is delivered.
        const due = entry.heartbeatSeconds > 0 && entry.channelType !== 'message' ? now : NEVER;
        await repo.sql.run('INSERT INTO notify_subscription (participant_id, topic, filters, channel_type, endpoint, headers, secret, payload, heartbeat_s, active, updated_at, next_due, last_sent, id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', [...values, due, now, entry.id]);
      }
    }
    // Writers (every process) re-read the active topics, so the outbox records this Subscription's events from its commit on.
    await subscriptionsChanged(repo.sql);
    this.onChange?.();
  }

  async deleted(repo: Repository, _type: string, id: string): Promise<void> {
    await repo.sql.run('UPDATE notify_subscription SET active = 0, updated_at = ? WHERE id = ?', [Date.now(), id]);
    await subscriptionsChanged(repo.sql);
    this.onChange?.();
  }
}

async function participantOf(repo: Repository, sub: Subscription): Promise<string | undefined> {
  const source = sub.meta?.source;
  if (source?.startsWith(`${MESSAGE_SYSTEM}:`)) {
    const rows = await repo.sql.query<{ participant_id: string | null }>('SELECT participant_id FROM message WHERE id = ?', [source.slice(MESSAGE_SYSTEM.length + 1)]);
    if (rows[0]?.participant_id) return rows[0].participant_id;
  }
  const named = (sub.extension ?? []).find((e) => e.url === SUBSCRIBER)?.valueReference?.reference;
  if (!named) return undefined;
  const id = named.replace(/^Organization\//, '');
  const rows = await repo.sql.query<{ id: string }>('SELECT id FROM participant WHERE organization_id = ?', [id]);
  if (!rows.length) throw badRequest(`The subscriber extension names ${named}, which is not a participant's Organization`);
  return rows[0].id;
}
