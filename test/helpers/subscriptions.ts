import { FILTER_CRITERIA, HEARTBEAT_PERIOD, PAYLOAD_CONTENT, SIGNING_SECRET, SUBSCRIBER } from '../../src/notify/subscription-registry.js';
import { topicUrl, type TopicCode } from '../../src/notify/topics.js';

/** A Backport-style Subscription as a subscriber would write it. */
export function subscription(options: {
  topic: TopicCode;
  filter?: string;
  type?: 'rest-hook' | 'websocket' | 'message';
  endpoint?: string;
  payload?: 'empty' | 'id-only' | 'full-resource';
  secret?: string;
  /** channel.header lines (`Name: value`). */
  header?: string[];
  /** The subscriber's Organization, when an operator writes it for them. */
  organization?: string;
  heartbeat?: number;
}): any {
  const channelExtensions = [
    ...(options.secret ? [{ url: SIGNING_SECRET, valueString: options.secret }] : []),
    ...(options.heartbeat ? [{ url: HEARTBEAT_PERIOD, valueUnsignedInt: options.heartbeat }] : []),
  ];
  return {
    resourceType: 'Subscription',
    status: 'requested',
    reason: `notify ${options.topic}`,
    criteria: topicUrl(options.topic),
    ...(options.filter ? { _criteria: { extension: [{ url: FILTER_CRITERIA, valueString: options.filter }] } } : {}),
    ...(options.organization ? { extension: [{ url: SUBSCRIBER, valueReference: { reference: `Organization/${options.organization}` } }] } : {}),
    channel: {
      type: options.type ?? 'rest-hook',
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      ...(options.header ? { header: options.header } : {}),
      payload: 'application/fhir+json',
      _payload: { extension: [{ url: PAYLOAD_CONTENT, valueCode: options.payload ?? 'id-only' }] },
      ...(channelExtensions.length ? { extension: channelExtensions } : {}),
    },
  };
}
