/**
 * The subscription topics Tessera ships (R4 Subscriptions Backport style: a topic is named by its
 * canonical URL in Subscription.criteria). Each says which resource it is about and which filters a
 * Subscription may narrow it by (docs/notifications.md).
 */
export const TOPIC_BASE = 'http://tessera-hie.org/fhir/SubscriptionTopic/';

export type TopicCode = 'admission' | 'discharge' | 'emergency-visit' | 'transfer' | 'new-result' | 'new-document' | 'death' | 'identity-merge';

export interface Topic {
  code: TopicCode;
  title: string;
  description: string;
  /** The resource types whose writes the topic is about (the notification's focus). */
  resources: string[];
  /** Filters a Subscription may give (see subscription-filters.ts). */
  filters: string[];
}

const ENCOUNTER_FILTERS = ['patient', 'patient:in', 'class', 'type', 'organization'];

export const TOPICS: Topic[] = [
  { code: 'admission', title: 'Inpatient admission', description: 'A patient is admitted (HL7 v2 ADT^A01, an inpatient Encounter begins, or one under way becomes inpatient).', resources: ['Encounter'], filters: ENCOUNTER_FILTERS },
  { code: 'discharge', title: 'Discharge', description: 'A patient is discharged (ADT^A03, or an Encounter becomes finished; one first written finished only if it ended within the last day).', resources: ['Encounter'], filters: ENCOUNTER_FILTERS },
  { code: 'emergency-visit', title: 'Emergency department visit', description: 'A patient is seen in an emergency department (an Encounter of class EMER begins: ADT^A04 or A01 with PV1-2 E).', resources: ['Encounter'], filters: ENCOUNTER_FILTERS },
  { code: 'transfer', title: 'Transfer', description: 'A patient is transferred to another location or changes class (ADT^A02; a FHIR Encounter under way whose location or class changes).', resources: ['Encounter'], filters: ENCOUNTER_FILTERS },
  { code: 'new-result', title: 'New result', description: 'A new laboratory or other result (Observation, DiagnosticReport); `abnormal=true` keeps those flagged abnormal.', resources: ['Observation', 'DiagnosticReport'], filters: ['patient', 'patient:in', 'organization', 'abnormal', 'code'] },
  { code: 'new-document', title: 'New document', description: 'A new clinical document (DocumentReference).', resources: ['DocumentReference'], filters: ['patient', 'patient:in', 'organization', 'type'] },
  { code: 'death', title: 'Death', description: 'A patient is recorded deceased.', resources: ['Patient'], filters: ['patient', 'patient:in', 'organization'] },
  { code: 'identity-merge', title: 'Identity merge', description: "Two of the master patient index's identities are merged into one (the focus is the surviving golden record).", resources: ['Patient'], filters: ['patient', 'patient:in'] },
];

export function topicUrl(code: TopicCode): string {
  return TOPIC_BASE + code;
}

export function topicByUrl(url: string): Topic | undefined {
  return url.startsWith(TOPIC_BASE) ? TOPICS.find((t) => t.code === url.slice(TOPIC_BASE.length)) : undefined;
}

/** The topic as an R4B/R5 SubscriptionTopic resource (R4 has no such type; the Backport serves it beside R4). */
export function subscriptionTopicResource(topic: Topic): Record<string, unknown> {
  return {
    resourceType: 'SubscriptionTopic',
    id: topic.code,
    url: topicUrl(topic.code),
    title: topic.title,
    status: 'active',
    description: topic.description,
    resourceTrigger: topic.resources.map((resource) => ({ resource, supportedInteraction: ['create', 'update'] })),
    canFilterBy: topic.filters.map((filterParameter) => ({ resource: topic.resources[0], filterParameter: filterParameter.replace(':in', ''), ...(filterParameter.endsWith(':in') ? { modifier: ['in'] } : {}) })),
    notificationShape: topic.resources.map((resource) => ({ resource })),
  };
}
