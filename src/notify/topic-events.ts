import type { CodeableConcept, DiagnosticReport, DocumentReference, Encounter, Observation, Patient, Reference, Resource } from '@medplum/fhirtypes';
import { MESSAGE_SYSTEM } from '../ingest/message-provenance.js';
import { MessageLog } from '../messages/message-log.js';
import { replacedBy } from '../mpi/golden-record.js';
import { isGolden } from '../mpi/source-identity.js';
import type { Repository } from '../store/repository.js';
import type { TopicCode } from './topics.js';

/** What the filters of a Subscription look at, worked out once when the event is written. */
export interface EventFacts {
  /** Encounter.class code (EMER, IMP, AMB ...). */
  class?: string;
  /** Codes of the type (Encounter, DocumentReference) or code (Observation, DiagnosticReport): `code` and `system|code`. */
  codes: string[];
  /** Organization ids: service provider, performer, custodian, managing organization. */
  organizations: string[];
  abnormal?: boolean;
  /** The HL7 v2 trigger event that wrote it (A01 ...), when a message did. */
  trigger?: string;
  /** The message that wrote it (its raw text is what an MLLP subscriber gets forwarded). */
  message?: string;
  /** The focus's version the event is about (a full-resource notification shows that version). */
  version?: string;
}

export interface TopicEvent {
  topic: TopicCode;
  focusType: string;
  focusId: string;
  patientId?: string;
  facts: EventFacts;
}

/** HL7 v3 ObservationInterpretation codes that flag a result outside its normal range. */
const ABNORMAL = new Set(['A', 'AA', 'H', 'HH', 'HU', 'L', 'LL', 'LU', '<', '>', 'POS', 'DET', 'R', 'W', 'CAR']);
const NOT_A_RESULT = new Set(['registered', 'cancelled', 'entered-in-error', 'unknown']);

/** The topic events one written resource raises (most writes raise none). Runs inside the writing transaction. */
export async function topicEvents(repo: Repository, resource: Resource): Promise<TopicEvent[]> {
  const events = await eventsOf(repo, resource);
  // Identity merges focus the surviving record, not the version written.
  for (const e of events) if (e.focusId === resource.id) e.facts.version = resource.meta?.versionId;
  return events;
}

async function eventsOf(repo: Repository, resource: Resource): Promise<TopicEvent[]> {
  switch (resource.resourceType) {
    case 'Encounter':
      return encounterEvents(repo, resource);
    case 'Observation':
    case 'DiagnosticReport':
      return resultEvents(resource);
    case 'DocumentReference':
      return documentEvents(resource);
    case 'Patient':
      return patientEvents(repo, resource);
    default:
      return [];
  }
}

async function encounterEvents(repo: Repository, encounter: Encounter): Promise<TopicEvent[]> {
  const message = messageIdOf(encounter);
  const trigger = message ? await triggerOf(repo, message) : undefined;
  const klass = encounter.class?.code;
  const facts: EventFacts = { class: klass, codes: codesOf(...(encounter.type ?? [])), organizations: orgIds(encounter.serviceProvider), trigger, message };
  const topics: TopicCode[] = [];
  if (trigger) {
    // The ADT trigger event says what happened; the Encounter's state alone cannot tell a transfer from an update.
    if (trigger === 'A01') topics.push(klass === 'EMER' ? 'emergency-visit' : 'admission');
    if (trigger === 'A04' && klass === 'EMER') topics.push('emergency-visit');
    if (trigger === 'A03') topics.push('discharge');
    if (trigger === 'A02') topics.push('transfer');
  } else {
    topics.push(...encounterChanges(await previousVersion<Encounter>(repo, encounter), encounter));
  }
  return topics.map((topic) => ({ topic, focusType: 'Encounter', focusId: encounter.id as string, patientId: patientOf(encounter.subject), facts }));
}

const UNDER_WAY = ['arrived', 'in-progress'];

/**
 * What a FHIR client's Encounter version says happened, against the version before it (the HL7 v2
 * trigger events' meanings): its first version under way begins a visit (A01, A04); a visit under way
 * that moves to another location (A02) or changes class (A06, A07) is a transfer, and one that becomes
 * inpatient is an admission too (an emergency patient admitted); finishing one ends it (A03), as does a
 * first version already finished that ended within the last day (not an old visit being loaded).
 */
export function encounterChanges(previous: Encounter | undefined, encounter: Encounter): TopicCode[] {
  const klass = encounter.class?.code;
  const topics: TopicCode[] = [];
  const wasUnderWay = !!previous && UNDER_WAY.includes(previous.status);
  const underWay = UNDER_WAY.includes(encounter.status);
  const begun = underWay && (!previous || !(wasUnderWay || previous.status === 'finished'));
  if (begun && klass === 'EMER') topics.push('emergency-visit');
  if (begun && klass === 'IMP') topics.push('admission');
  if (underWay && wasUnderWay) {
    const before = currentLocations(previous);
    const now = currentLocations(encounter);
    const moved = before.size > 0 && now.size > 0 && (before.size !== now.size || [...now].some((l) => !before.has(l)));
    const reclassed = !!previous.class?.code && !!klass && previous.class.code !== klass;
    if (moved || reclassed) topics.push('transfer');
    if (reclassed && klass === 'IMP') topics.push('admission');
  }
  if (encounter.status === 'finished' && (previous ? previous.status !== 'finished' : endedRecently(encounter))) topics.push('discharge');
  return topics;
}

/** A visit first recorded when already finished is a discharge only if it ended within the last day: loading a record's history (years of finished encounters) alerts nobody. */
const RECENT_MS = 24 * 3_600_000;

function endedRecently(encounter: Encounter): boolean {
  const end = Date.parse(encounter.period?.end ?? encounter.period?.start ?? '');
  return Number.isFinite(end) && Date.now() - end < RECENT_MS;
}

/** Where the patient is now: the active locations (not planned, reserved or completed). */
function currentLocations(encounter: Encounter): Set<string> {
  return new Set((encounter.location ?? []).filter((l) => !l.status || l.status === 'active').map((l) => l.location?.reference ?? l.location?.display ?? '').filter(Boolean));
}

function resultEvents(result: Observation | DiagnosticReport): TopicEvent[] {
  if (result.meta?.versionId !== '1' || NOT_A_RESULT.has(result.status)) return [];
  const interpretation = result.resourceType === 'Observation' ? [...(result.interpretation ?? []), ...(result.component ?? []).flatMap((c) => c.interpretation ?? [])] : [];
  const abnormal = interpretation.some((i) => i.coding?.some((c) => !!c.code && ABNORMAL.has(c.code)));
  const performers = result.performer ?? [];
  const facts: EventFacts = { codes: codesOf(result.code), organizations: orgIds(...performers), abnormal, message: messageIdOf(result) };
  return [{ topic: 'new-result', focusType: result.resourceType, focusId: result.id as string, patientId: patientOf(result.subject), facts }];
}

function documentEvents(document: DocumentReference): TopicEvent[] {
  if (document.meta?.versionId !== '1' || document.status === 'entered-in-error') return [];
  const facts: EventFacts = { codes: codesOf(document.type), organizations: orgIds(document.custodian, ...(document.author ?? [])), message: messageIdOf(document) };
  return [{ topic: 'new-document', focusType: 'DocumentReference', focusId: document.id as string, patientId: patientOf(document.subject), facts }];
}

async function patientEvents(repo: Repository, patient: Patient): Promise<TopicEvent[]> {
  const id = patient.id as string;
  if (isGolden(patient)) {
    // An enterprise absorbed into another: its golden record turns inactive and points to the survivor.
    const survivor = patient.active === false ? replacedBy(patient) : undefined;
    if (!survivor) return [];
    const previous = await previousVersion<Patient>(repo, patient);
    if (previous && previous.active === false && replacedBy(previous) === survivor) return [];
    return [{ topic: 'identity-merge', focusType: 'Patient', focusId: survivor, patientId: survivor, facts: { codes: [], organizations: [], message: id } }];
  }
  const deceased = patient.deceasedBoolean === true || !!patient.deceasedDateTime;
  if (!deceased) return [];
  const previous = await previousVersion<Patient>(repo, patient);
  if (previous && (previous.deceasedBoolean === true || !!previous.deceasedDateTime)) return [];
  return [{ topic: 'death', focusType: 'Patient', focusId: id, patientId: id, facts: { codes: [], organizations: orgIds(patient.managingOrganization), message: messageIdOf(patient) } }];
}

async function previousVersion<T extends Resource>(repo: Repository, resource: T): Promise<T | undefined> {
  const version = Number(resource.meta?.versionId ?? 1);
  if (version <= 1) return undefined;
  try {
    return (await repo.vread(resource.resourceType, resource.id as string, String(version - 1))) as T;
  } catch {
    return undefined; // a deleted version
  }
}

function messageIdOf(resource: Resource): string | undefined {
  const source = resource.meta?.source;
  return source?.startsWith(`${MESSAGE_SYSTEM}:`) ? source.slice(MESSAGE_SYSTEM.length + 1) : undefined;
}

async function triggerOf(repo: Repository, messageId: string): Promise<string | undefined> {
  const kind = await new MessageLog(repo.sql).kindOf(messageId);
  const type = kind?.format === 'hl7v2' ? kind.messageType : undefined;
  return type?.split('^')[1] || undefined;
}

function codesOf(...concepts: (CodeableConcept | undefined)[]): string[] {
  return concepts.flatMap((c) => (c?.coding ?? []).filter((x) => x.code).flatMap((x) => [x.code as string, ...(x.system ? [`${x.system}|${x.code}`] : [])]));
}

function orgIds(...refs: (Reference | undefined)[]): string[] {
  return refs.map((r) => r?.reference).filter((r): r is string => !!r?.startsWith('Organization/')).map((r) => r.slice('Organization/'.length));
}

function patientOf(ref: Reference | undefined): string | undefined {
  return ref?.reference?.startsWith('Patient/') ? ref.reference.slice('Patient/'.length) : undefined;
}
