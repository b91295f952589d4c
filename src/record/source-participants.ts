import type { Repository } from '../store/repository.js';
import { MESSAGE_SYSTEM } from '../ingest/message-provenance.js';

/**
 * The participant that sent each source record, from the logged message its `meta.source` names
 * (`urn:tessera:message:{id}`, stamped by HL7 v2, C-CDA and participants' FHIR intake alike).
 * Returns message id -> the participant's Organization reference and name.
 */
export async function participantsOfMessages(repo: Repository, messageIds: readonly string[]): Promise<Map<string, { reference: string; display: string }>> {
  const out = new Map<string, { reference: string; display: string }>();
  const ids = [...new Set(messageIds)];
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500);
    const rows = await repo.sql.query<{ id: string; organization_id: string; name: string }>(
      `SELECT m.id, p.organization_id, p.name FROM message m JOIN participant p ON p.id = m.participant_id WHERE m.id IN (${chunk.map(() => '?').join(', ')})`,
      chunk,
    );
    for (const r of rows) out.set(r.id, { reference: `Organization/${r.organization_id}`, display: r.name });
  }
  return out;
}

/** The logged message id a resource's meta.source names, if any. */
export function messageIdOf(source: string | undefined): string | undefined {
  return source?.startsWith(`${MESSAGE_SYSTEM}:`) ? source.slice(MESSAGE_SYSTEM.length + 1) : undefined;
}
