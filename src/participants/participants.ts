import type { Endpoint, Organization } from '@medplum/fhirtypes';
import { badRequest, conflict } from '../fhir/outcome.js';
import { createClient, type NewClient } from '../security/clients.js';
import type { Repository } from '../store/repository.js';
import { newResourceId } from '../store/resource-id.js';

/** Identifier system of the Organization that stands for a participant. */
export const PARTICIPANT_SYSTEM = 'urn:tessera:participant';

/**
 * A participating organisation: who may send data, and how its messages are recognised. Its MRNs are
 * identifiers of `mrnSystem` (the assigning authority); HL7 v2 messages are attributed to it by MSH-4
 * (sending facility) and/or MSH-3 (sending application); FHIR requests by its OAuth client.
 */
export interface Participant {
  id: string;
  name: string;
  organizationId: string;
  mrnSystem: string;
  hl7Facility?: string;
  hl7Application?: string;
  clientId?: string;
  active: boolean;
  createdAt: number;
}

interface ParticipantRow {
  id: string;
  name: string;
  organization_id: string;
  mrn_system: string;
  hl7_facility: string | null;
  hl7_application: string | null;
  client_id: string | null;
  active: number;
  created_at: number;
}

const COLUMNS = 'id, name, organization_id, mrn_system, hl7_facility, hl7_application, client_id, active, created_at';

function toParticipant(r: ParticipantRow): Participant {
  return {
    id: r.id,
    name: r.name,
    organizationId: r.organization_id,
    mrnSystem: r.mrn_system,
    hl7Facility: r.hl7_facility ?? undefined,
    hl7Application: r.hl7_application ?? undefined,
    clientId: r.client_id ?? undefined,
    active: !!Number(r.active),
    createdAt: Number(r.created_at),
  };
}

export interface NewParticipant {
  name: string;
  mrnSystem: string;
  hl7Facility?: string;
  hl7Application?: string;
  /** Scope of the OAuth client created for its FHIR traffic; none is created when omitted. */
  scope?: string;
}

const URI_RE = /^(urn:[a-z0-9][a-z0-9-]*:\S+|https?:\/\/\S+)$/i;

/**
 * Registers a participant: an Organization (with an Endpoint per channel it uses) in the FHIR store, the
 * registry row, and optionally an OAuth client for its FHIR API traffic. One transaction.
 */
export async function addParticipant(repo: Repository, input: NewParticipant): Promise<{ participant: Participant; client?: NewClient }> {
  if (!input.name.trim()) {
    throw badRequest('A participant needs a name');
  }
  if (!URI_RE.test(input.mrnSystem)) {
    throw badRequest(`The MRN system must be a URI (urn:oid:..., urn:..., http(s)://...), not "${input.mrnSystem}"`);
  }
  const id = newResourceId();
  const client = input.scope ? await createClient(repo.db, { name: `participant ${input.name}`, scope: input.scope }) : undefined;
  const participant: Participant = {
    id,
    name: input.name.trim(),
    organizationId: id,
    mrnSystem: input.mrnSystem,
    hl7Facility: input.hl7Facility || undefined,
    hl7Application: input.hl7Application || undefined,
    clientId: client?.clientId,
    active: true,
    createdAt: Date.now(),
  };
  await repo.transaction(async (tx) => {
    if ((participant.hl7Facility || participant.hl7Application) && (await senderTaken(tx, participant.hl7Facility, participant.hl7Application))) {
      throw conflict(`HL7 sender ${participant.hl7Facility}${participant.hl7Application ? ` / ${participant.hl7Application}` : ''} is already registered`);
    }
    const organization: Organization = {
      resourceType: 'Organization',
      id,
      identifier: [{ system: PARTICIPANT_SYSTEM, value: id }],
      active: true,
      name: participant.name,
    };
    await tx.update(organization);
    for (const endpoint of endpointsOf(participant)) {
      await tx.update(endpoint);
    }
    await tx.sql.run(`INSERT INTO participant (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
      participant.id,
      participant.name,
      participant.organizationId,
      participant.mrnSystem,
      participant.hl7Facility ?? null,
      participant.hl7Application ?? null,
      participant.clientId ?? null,
      1,
      participant.createdAt,
    ]);
  });
  return { participant, client };
}

async function senderTaken(repo: Repository, facility: string | undefined, application: string | undefined): Promise<boolean> {
  const rows = await repo.sql.query('SELECT 1 FROM participant WHERE COALESCE(hl7_facility, ?) = ? AND COALESCE(hl7_application, ?) = ?', ['', facility ?? '', '', application ?? '']);
  return rows.length > 0;
}

/** The channels a participant uses, as FHIR Endpoints managed by its Organization. */
function endpointsOf(p: Participant): Endpoint[] {
  const endpoint = (suffix: string, code: string, payload: string, address: string): Endpoint => ({
    resourceType: 'Endpoint',
    id: `${p.id}-${suffix}`,
    status: 'active',
    connectionType: { system: 'http://terminology.hl7.org/CodeSystem/endpoint-connection-type', code },
    name: `${p.name} (${suffix})`,
    managingOrganization: { reference: `Organization/${p.organizationId}` },
    payloadType: [{ text: payload }],
    address,
  });
  const out: Endpoint[] = [];
  if (p.hl7Facility || p.hl7Application) {
    out.push(endpoint('mllp', 'hl7v2-mllp', 'HL7 v2 messages', `mllp:sender/${encodeURIComponent(p.hl7Facility ?? '')}/${encodeURIComponent(p.hl7Application ?? '')}`));
  }
  if (p.clientId) {
    out.push(endpoint('fhir', 'hl7-fhir-rest', 'FHIR R4 resources', `urn:tessera:client:${p.clientId}`));
  }
  return out;
}

export async function listParticipants(repo: Repository): Promise<Participant[]> {
  const rows = await repo.sql.query<ParticipantRow>(`SELECT ${COLUMNS} FROM participant ORDER BY name, id`);
  return rows.map(toParticipant);
}

export async function participantById(repo: Repository, id: string): Promise<Participant | undefined> {
  const rows = await repo.sql.query<ParticipantRow>(`SELECT ${COLUMNS} FROM participant WHERE id = ?`, [id]);
  return rows[0] && toParticipant(rows[0]);
}

/**
 * The participant an HL7 v2 message comes from: the registration naming its sending facility (MSH-4) and
 * application (MSH-3), or the one naming the facility alone, or (for senders that leave MSH-4 empty) the
 * one naming the application alone.
 */
export async function participantForHl7(repo: Repository, facility: string, application: string): Promise<Participant | undefined> {
  if (!facility && !application) {
    return undefined;
  }
  const rows = await repo.sql.query<ParticipantRow>(
    `SELECT ${COLUMNS} FROM participant WHERE active = 1 AND (hl7_facility = ? OR hl7_facility IS NULL) AND (hl7_application = ? OR hl7_application IS NULL)
       AND (hl7_facility IS NOT NULL OR hl7_application IS NOT NULL)`,
    [facility, application],
  );
  const specificity = (r: ParticipantRow) => (r.hl7_facility ? 2 : 0) + (r.hl7_application ? 1 : 0);
  const best = rows.sort((a, b) => specificity(b) - specificity(a))[0];
  return best && toParticipant(best);
}

/** The participant whose OAuth client this is (FHIR traffic), if any. */
export async function participantForClient(repo: Repository, clientId: string): Promise<Participant | undefined> {
  const rows = await repo.sql.query<ParticipantRow>(`SELECT ${COLUMNS} FROM participant WHERE active = 1 AND client_id = ?`, [clientId]);
  return rows[0] && toParticipant(rows[0]);
}
