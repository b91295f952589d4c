import type { AuditEvent, Parameters, ParametersParameter } from '@medplum/fhirtypes';
import { policyOf, requireReachable, type FhirRequest, type FhirResponse } from '../engine/fhir-request.js';
import { badRequest } from '../fhir/outcome.js';
import type { Database } from '../store/database.js';
import type { Repository } from '../store/repository.js';
import { auditLogOf } from './audit-attachment.js';
import { CLIENT_ID_SYSTEM, SEEN_DETAIL } from './audit-event.js';
import { auditEventResource, findAuditEvents } from './audit-search.js';

export const DISCLOSURES_OPERATION = '$disclosures';
const DEFAULT_COUNT = 100;

/**
 * `GET Patient/{id}/$disclosures`: the patient's accounting of disclosures, from the audit log. One
 * `disclosure` parameter per successful read, search or operation that returned data of theirs, newest
 * first: when, who (the user's FHIR resource or id, else the client), the client, the organization, why
 * (purpose of use), what (resource types and counts of this patient's data in the answer) and the
 * AuditEvent it comes from. For the patient's own app (a patient context naming this person) and for
 * privacy officers; a clinician who may read the record does not thereby see who else read it.
 */
export async function disclosures(repo: Repository, patientId: string, req: FhirRequest): Promise<FhirResponse> {
  const policy = policyOf(req);
  policy.require('Patient', 'r');
  const own = policy.isOwnRecord(patientId);
  if (!own) policy.requirePrivacyOfficer('AuditEvent', 's', 'The accounting of disclosures of another person');
  // A privacy officer answers for disclosures of any patient, an opted-out one too (the accounting comes
  // from the audit log they may search anyway): only the scopes' reach applies, not consent or labels.
  await requireReachable(repo, req, 'Patient', patientId, 'r', { scopesOnly: !own });
  await repo.read('Patient', patientId);
  // A patient's own app is told of disclosures of every record of theirs the MPI links (their community record).
  const person = policy.isOwnRecord(patientId) ? policy.patientRecords : [patientId];
  const count = Number(req.query.get('_count') ?? DEFAULT_COUNT);
  const offset = Number(req.query.get('_offset') ?? 0);
  if (!Number.isInteger(count) || count < 1 || count > 1000 || !Number.isInteger(offset) || offset < 0) {
    throw badRequest('_count must be 1 to 1000 and _offset a non-negative integer');
  }
  const log = auditLogOf(repo);
  await log.flush(); // this process's latest events are in the journal until the next flush
  const parameter: ParametersParameter[] = [];
  let more = false;
  for await (const event of disclosureEvents(log.db, person, offset)) {
    if (parameter.length === count) {
      more = true;
      break;
    }
    parameter.push({ name: 'disclosure', part: disclosureParts(event, patientId) });
  }
  // Paging: the offset counts disclosures (not audit events), so the next page starts after this one.
  if (more) parameter.push({ name: 'next', valueString: `_offset=${offset + count}&_count=${count}` });
  const body: Parameters = { resourceType: 'Parameters', parameter };
  return { status: 200, body };
}

/** Events of the patient's records, in chunks of this many (most of a patient's events are disclosures). */
const SCAN_CHUNK = 500;

/**
 * The patient's disclosures, newest first, from the `skip`-th on. Which events are disclosures is decided
 * on the events themselves (isDisclosure), so the audit log is read in chunks until enough were found.
 */
async function* disclosureEvents(db: Database, person: readonly string[], skip: number): AsyncGenerator<AuditEvent> {
  const keys = [{ kind: 'p' as const, refs: person.map((id) => `Patient/${id}`) }];
  let skipped = 0;
  for (let at = 0; ; at += SCAN_CHUNK) {
    const rows = await findAuditEvents(db, { keys, dates: [], count: SCAN_CHUNK, offset: at });
    for (const row of rows.slice(0, SCAN_CHUNK)) {
      const event = auditEventResource(row);
      if (!isDisclosure(event)) continue;
      if (skipped < skip) skipped++;
      else yield event;
    }
    if (rows.length <= SCAN_CHUNK) return;
  }
}

/** A successful read, search or operation; the accounting's own requests are not disclosures. */
function isDisclosure(event: AuditEvent): boolean {
  return event.outcome === '0' && (event.action === 'R' || event.action === 'E') && event.type?.code === 'rest' && event.subtype?.[0]?.code !== DISCLOSURES_OPERATION;
}

function disclosureParts(event: AuditEvent, patientId: string): ParametersParameter[] {
  const user = event.agent.find((a) => a.type?.coding?.[0]?.code === 'humanuser');
  const client = event.agent.find((a) => a.who?.identifier?.system === CLIENT_ID_SYSTEM)?.who?.identifier?.value;
  const organization = event.agent.find((a) => a.type?.text === 'organization')?.who?.reference;
  const seen = event.entity?.find((e) => e.what?.reference === `Patient/${patientId}`)?.detail?.find((d) => d.type === SEEN_DETAIL)?.valueString;
  const parts: ParametersParameter[] = [{ name: 'when', valueDateTime: event.recorded }];
  if (user?.who?.reference) parts.push({ name: 'who', valueReference: { reference: user.who.reference } });
  else if (user?.who?.identifier?.value) parts.push({ name: 'who', valueString: user.who.identifier.value });
  else if (client) parts.push({ name: 'who', valueString: client });
  if (client) parts.push({ name: 'client', valueString: client });
  if (organization) parts.push({ name: 'organization', valueReference: { reference: organization } });
  const purpose = event.purposeOfEvent?.[0]?.coding?.[0];
  if (purpose) parts.push({ name: 'purpose', valueCoding: purpose });
  parts.push({ name: 'interaction', valueCode: event.subtype?.[0]?.code });
  parts.push({ name: 'what', valueString: seen ?? 'Patient' });
  parts.push({ name: 'event', valueReference: { reference: `AuditEvent/${event.id}` } });
  return parts;
}
