import type { AuditEvent, AuditEventAgent, AuditEventEntity, Coding } from '@medplum/fhirtypes';
import type { AuditRecord } from './audit-record.js';

/**
 * The R4 AuditEvent of an audit record, following IHE Basic Audit Log Patterns (BALP): the server records
 * the event, so the client is the Source Role agent and the server the Destination; the user (if any) is
 * the requestor, with the token id as agent.policy (BALP OAuth patterns); the patients concerned are
 * role-1 entities and the resources returned or changed role-4 entities; the query, base64-encoded, a
 * role-24 entity; the X-Request-Id a BALP XrequestId entity.
 */
const AUDIT_EVENT_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-event-type';
const DICOM = 'http://dicom.nema.org/resources/ontology/DCM';
const RESTFUL_INTERACTION = 'http://hl7.org/fhir/restful-interaction';
const ENTITY_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-entity-type';
const OBJECT_ROLE = 'http://terminology.hl7.org/CodeSystem/object-role';
const BALP_ENTITY_TYPE = 'https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType';
const SECURITY_ROLE = 'http://terminology.hl7.org/CodeSystem/extra-security-role-type';
const ACT_REASON = 'http://terminology.hl7.org/CodeSystem/v3-ActReason';
const SOURCE_TYPE = 'http://terminology.hl7.org/CodeSystem/security-source-type';
/** The identifier system of OAuth client ids in agent.who (a client is not a FHIR resource here). */
export const CLIENT_ID_SYSTEM = 'urn:tessera:oauth-client';
/** The identifier system of user ids in agent.who when the user has no FHIR resource. */
export const USER_ID_SYSTEM = 'urn:tessera:user';
/** entity.detail type of the "saw what" summary on a patient entity: `Observation=3,Condition=1`. */
export const SEEN_DETAIL = 'resources-seen';

const SERVER = 'tessera';

/** The identifier system of what an operator action acted on (`user:{id}`, `client:{id}`, `message:{id}`). */
export const TARGET_SYSTEM = 'urn:tessera:target';

/** The identifier system of participants (message senders) in agent.who. */
export const PARTICIPANT_ID_SYSTEM = 'urn:tessera:participant';

function typeCoding(record: AuditRecord): Coding {
  if (record.kind === 'login') return { system: DICOM, code: '110114', display: 'User Authentication' };
  if (record.kind === 'import') return { system: DICOM, code: '110107', display: 'Import' };
  if (record.kind === 'operator') return { system: DICOM, code: '110100', display: 'Application Activity' };
  if (record.kind === 'notification') return { system: DICOM, code: '110106', display: 'Export' };
  return { system: AUDIT_EVENT_TYPE, code: 'rest', display: 'Restful Operation' };
}

function subtypeCoding(record: AuditRecord): Coding {
  if (record.kind === 'login') return { system: DICOM, code: '110122', display: 'Login' };
  if (record.kind === 'import') return { system: 'urn:tessera:intake', code: record.subtype };
  if (record.kind === 'operator') return { system: 'urn:tessera:cli', code: record.subtype };
  if (record.kind === 'notification') return { system: 'urn:tessera:notification-channel', code: record.subtype };
  if (record.subtype.startsWith('$')) return { system: 'urn:tessera:operation', code: record.subtype };
  if (record.subtype.includes(' ')) return { system: 'urn:tessera:http-route', code: record.subtype };
  return { system: RESTFUL_INTERACTION, code: record.subtype };
}

function agents(record: AuditRecord): AuditEventAgent[] {
  const list: AuditEventAgent[] = [];
  if (record.user) {
    list.push({
      type: { coding: [{ system: SECURITY_ROLE, code: 'humanuser', display: 'human user' }] },
      who: record.user.fhirUser ? { reference: record.user.fhirUser, identifier: { system: USER_ID_SYSTEM, value: record.user.id } } : { identifier: { system: USER_ID_SYSTEM, value: record.user.id } },
      role: [{ text: record.user.role }],
      requestor: true,
      policy: record.tokenId ? [record.tokenId] : undefined,
    });
  }
  const source = record.participant && !record.clientId ? { system: PARTICIPANT_ID_SYSTEM, value: record.participant } : { system: CLIENT_ID_SYSTEM, value: record.clientId ?? 'unidentified' };
  list.push({
    type: { coding: [{ system: DICOM, code: '110153', display: 'Source Role ID' }] },
    who: { identifier: source },
    requestor: !record.user,
    policy: !record.user && record.tokenId ? [record.tokenId] : undefined,
  });
  if (record.organization) {
    list.push({ type: { text: 'organization' }, who: { reference: record.organization }, requestor: false });
  }
  list.push({ type: { coding: [{ system: DICOM, code: '110152', display: 'Destination Role ID' }] }, who: { display: SERVER }, requestor: false });
  return list; // undefined fields vanish when the event is serialised
}

// Entity codings without display text: a search's event carries one data entity per resource returned,
// and the displays would double its size (and the time to serialise and hash it) for nothing a code lacks.
const PATIENT_TYPE: Coding = { system: ENTITY_TYPE, code: '1' };
const PATIENT_ROLE: Coding = { system: OBJECT_ROLE, code: '1' };
const OBJECT_TYPE: Coding = { system: ENTITY_TYPE, code: '2' };
const DATA_ROLE: Coding = { system: OBJECT_ROLE, code: '4' };
const QUERY_ROLE: Coding = { system: OBJECT_ROLE, code: '24' };
const REQUEST_ID_TYPE: Coding = { system: BALP_ENTITY_TYPE, code: 'XrequestId' };

function entities(record: AuditRecord): AuditEventEntity[] {
  const list: AuditEventEntity[] = [];
  for (const [patient, seen] of record.subjects.patients) {
    const entity: AuditEventEntity = { what: { reference: `Patient/${patient}` }, type: PATIENT_TYPE, role: PATIENT_ROLE };
    if (seen.size) entity.detail = [{ type: SEEN_DETAIL, valueString: [...seen].map(([t, n]) => `${t}=${n}`).join(',') }];
    list.push(entity);
  }
  for (const ref of record.subjects.resources) {
    if (!ref.startsWith('Patient/')) list.push({ what: { reference: ref }, type: OBJECT_TYPE, role: DATA_ROLE });
  }
  if (record.target) list.push({ what: { identifier: { system: TARGET_SYSTEM, value: record.target } }, type: OBJECT_TYPE, role: DATA_ROLE });
  if (record.query !== undefined) {
    list.push({ type: OBJECT_TYPE, role: QUERY_ROLE, description: record.resourceType, query: Buffer.from(record.query, 'utf8').toString('base64') });
  }
  list.push({ what: { identifier: { value: record.requestId } }, type: REQUEST_ID_TYPE });
  return list;
}

/** The AuditEvent of a record, without id or meta: the log assigns those from the event's place in the chain. */
export function toAuditEvent(record: AuditRecord): AuditEvent {
  const event: AuditEvent = {
    resourceType: 'AuditEvent',
    type: typeCoding(record),
    // A login also says how: the token endpoint, a password or the community's identity provider.
    subtype: record.kind === 'login' ? [subtypeCoding(record), { system: 'urn:tessera:login', code: record.subtype }] : [subtypeCoding(record)],
    action: record.action,
    recorded: new Date(record.recorded).toISOString(),
    outcome: String(record.outcome) as AuditEvent['outcome'],
    outcomeDesc: typeof record.httpStatus === 'number' ? `HTTP ${record.httpStatus}` : `message ${record.httpStatus}`,
    agent: agents(record),
    source: { observer: { display: SERVER }, type: [{ system: SOURCE_TYPE, code: '4', display: 'Application Server' }] },
    entity: entities(record),
  };
  // Access under a break-the-glass grant says so beside the declared purpose (BALP purposeOfEvent).
  const purposes = [record.purposeOfUse, record.breakTheGlass ? 'BTG' : undefined].filter((p, i, all): p is string => !!p && all.indexOf(p) === i);
  if (purposes.length) event.purposeOfEvent = purposes.map((code) => ({ coding: [{ system: ACT_REASON, code }] }));
  return event;
}

/**
 * The search keys of a record (audit_ref rows): `p` the patients, `e` the resources outside any patient's
 * compartment (AuditSubjects.unattached; the others are found through their patients' keys), `a` the
 * agents by client id, user id, fhirUser and organization. A patient is an entity too: `entity=Patient/x`
 * is answered from the `p` keys (audit-search.ts), so it is not keyed twice (events before this kept an
 * `e` key as well: one more row in a random place of the index per event).
 */
export function searchKeys(record: AuditRecord): [kind: 'p' | 'e' | 'a', ref: string][] {
  const keys: [kind: 'p' | 'e' | 'a', ref: string][] = [];
  for (const patient of record.subjects.patients.keys()) keys.push(['p', `Patient/${patient}`]);
  // Resources in a patient's compartment are found through that patient's key (audit-search.ts).
  const entities = new Set(record.subjects.unattached ?? record.subjects.resources);
  if (record.target) entities.add(record.target);
  for (const patient of record.subjects.patients.keys()) entities.delete(`Patient/${patient}`);
  for (const ref of entities) keys.push(['e', ref]);
  const agents = new Set([record.clientId, record.user?.id, record.user?.fhirUser, record.organization, record.participant].filter((a): a is string => !!a));
  for (const agent of agents) keys.push(['a', agent]);
  return keys;
}
