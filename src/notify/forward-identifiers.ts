import type { Participant } from '../participants/participants.js';
import { ENTERPRISE_ID_SYSTEM } from '../mpi/source-identity.js';
import type { Repository } from '../store/repository.js';

/** An identifier to put in PID-3, with its type code (HL7 table 0203). */
export interface ForwardIdentifier {
  value: string;
  /** HD of the assigning authority: namespace and universal id (a URI). */
  namespace?: string;
  universalId?: string;
  type: 'MR' | 'PI';
}

/**
 * The identifiers a subscriber knows a patient by, through the master patient index: the records of its
 * own MRN system linked to the person. Without one (a roster naming the patient by reference only), the
 * exchange's enterprise id, so the forward never falls back to the sender's MRN by itself.
 */
export async function subscriberIdentifiers(repo: Repository, patientId: string, subscriber: Participant): Promise<ForwardIdentifier[]> {
  const [person] = await repo.sql.query<{ enterprise_id: string }>('SELECT enterprise_id FROM mpi_source WHERE patient_id = ? UNION SELECT enterprise_id FROM mpi_enterprise WHERE enterprise_id = ?', [patientId, patientId]);
  const authority = { namespace: subscriber.hl7Facility ?? subscriber.hl7Application, universalId: subscriber.mrnSystem };
  if (person) {
    const own = await repo.sql.query<{ source_value: string }>('SELECT DISTINCT source_value FROM mpi_source WHERE enterprise_id = ? AND source_system = ? ORDER BY source_value', [person.enterprise_id, subscriber.mrnSystem]);
    if (own.length) return own.map((r) => ({ value: r.source_value, ...authority, type: 'MR' as const }));
  }
  return [{ value: person?.enterprise_id ?? patientId, namespace: 'TESSERA', universalId: ENTERPRISE_ID_SYSTEM, type: 'PI' }];
}

/**
 * The sender's HL7 v2 message with PID-3 rewritten to `identifiers` (the subscriber's), in the message's
 * own delimiters. The sender's identifiers follow as further repetitions only when `keepSender` (a
 * community's choice: TESSERA_NOTIFY_FORWARD_SENDER_IDS); otherwise they are gone from PID-2, PID-3 and
 * PID-4 alike. Everything else is forwarded as received.
 */
export function rewritePatientIdentifiers(raw: string, identifiers: ForwardIdentifier[], keepSender: boolean): string {
  const segments = raw.split(/\r\n|\r|\n/);
  const msh = segments[0] ?? '';
  if (!msh.startsWith('MSH') || msh.length < 8) return raw;
  const field = msh[3];
  const [component, repetition, escape, subcomponent] = msh.slice(4, 8);
  const esc = (text: string) =>
    [...text]
      .map((c) => (c === escape ? `${escape}E${escape}` : c === field ? `${escape}F${escape}` : c === component ? `${escape}S${escape}` : c === subcomponent ? `${escape}T${escape}` : c === repetition ? `${escape}R${escape}` : c))
      .join('');
  const cx = (i: ForwardIdentifier) => [esc(i.value), '', '', [esc(i.namespace ?? ''), esc(i.universalId ?? ''), i.universalId ? 'URI' : ''].join(subcomponent).replace(new RegExp(`${escapeRegExp(subcomponent)}+$`), ''), i.type].join(component);
  return segments
    .map((segment) => {
      if (!segment.startsWith(`PID${field}`)) return segment;
      const fields = segment.split(field);
      while (fields.length < 5) fields.push('');
      const sender = fields[3];
      fields[3] = [...identifiers.map(cx), ...(keepSender && sender ? [sender] : [])].join(repetition);
      if (!keepSender) fields[2] = fields[4] = '';
      return fields.join(field).replace(new RegExp(`${escapeRegExp(field)}+$`), '');
    })
    .join('\r');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
