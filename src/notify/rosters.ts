import type { Group, GroupMember, Resource } from '@medplum/fhirtypes';
import { badRequest, notFound } from '../fhir/outcome.js';
import { participantById } from '../participants/participants.js';
import type { Repository, WriteObserver } from '../store/repository.js';

/** Identifier system of a participant's roster Group (value: the participant id). */
export const ROSTER_SYSTEM = 'urn:tessera:roster';

/**
 * Keeps roster_member in step with Group resources, in their transaction: each member is kept as its
 * identifier (a practice's MRN) and/or its Patient id. Matching an event against rosters goes through
 * the master patient index at the time of the event (roster-match.ts), so a member named by the
 * practice's MRN matches the hospital's record of the same person, before or after they were linked,
 * and through merges.
 */
export class RosterObserver implements WriteObserver {
  readonly types = new Set(['Group']);

  async written(repo: Repository, resources: Resource[]): Promise<void> {
    for (const group of resources as Group[]) {
      await repo.sql.run('DELETE FROM roster_member WHERE group_id = ?', [group.id as string]);
      const rows = (group.member ?? []).filter((m) => !m.inactive).map((m) => memberRow(group.id as string, m)).filter((r): r is string[] => !!r);
      for (let i = 0; i < rows.length; i += 5000) {
        await repo.sql.insertRows('roster_member', ['group_id', 'system', 'value', 'patient_id'], rows.slice(i, i + 5000));
      }
    }
  }

  async deleted(repo: Repository, _type: string, id: string): Promise<void> {
    await repo.sql.run('DELETE FROM roster_member WHERE group_id = ?', [id]);
  }
}

function memberRow(groupId: string, member: GroupMember): (string | null)[] | undefined {
  const ref = member.entity.reference;
  const patientId = ref?.startsWith('Patient/') ? ref.slice('Patient/'.length) : null;
  const identifier = member.entity.identifier;
  if (!patientId && !(identifier?.system && identifier.value)) return undefined;
  return [groupId, identifier?.system ?? null, identifier?.value ?? null, patientId];
}

/**
 * Replaces a participant's roster with the MRNs given (one Group per participant, its members named by
 * the participant's MRN system): `tessera rosters import`. Returns the Group's id and member count.
 * Afterwards the planner knows the roster table's new size (PostgreSQL).
 */
export async function importRoster(repo: Repository, participantId: string, mrns: string[]): Promise<{ groupId: string; members: number }> {
  const participant = await participantById(repo, participantId);
  if (!participant) throw notFound(`No participant ${participantId}`);
  const unique = [...new Set(mrns)];
  const group: Group = {
    resourceType: 'Group',
    id: rosterGroupId(participantId),
    identifier: [{ system: ROSTER_SYSTEM, value: participantId }],
    type: 'person',
    actual: true,
    name: `Roster of ${participant.name}`,
    managingEntity: { reference: `Organization/${participant.organizationId}` },
    quantity: unique.length,
    member: unique.map((value) => ({ entity: { identifier: { system: participant.mrnSystem, value } } })),
  };
  await repo.update(group);
  // PostgreSQL plans the dispatch's roster lookup from the table's statistics, which autovacuum gathers
  // only a minute or so after a large import; until then it scanned every member (8 ms a dispatch at
  // 100,000 members). SQLite's plan does not depend on them (roster-match.ts).
  if (repo.db.dialect.name === 'postgres') await repo.db.exec('ANALYZE roster_member');
  return { groupId: group.id as string, members: unique.length };
}

/** A participant's roster Group has a fixed id, so that re-importing replaces it. */
export function rosterGroupId(participantId: string): string {
  return `roster-${participantId}`;
}

/** The MRNs of a roster CSV: the column named mrn (any case), else the first; a header row is optional. */
export function rosterCsv(text: string): string[] {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  if (!lines.length) return [];
  const header = lines[0].split(',').map((c) => c.trim().replace(/^"|"$/g, '').toLowerCase());
  const column = header.indexOf('mrn');
  const start = column >= 0 ? 1 : 0;
  const col = Math.max(column, 0);
  return lines.slice(start).map((line, i) => {
    const value = line.split(',')[col]?.trim().replace(/^"|"$/g, '');
    if (!value) throw badRequest(`Line ${i + start + 1}: no MRN in column ${col + 1}`);
    return value;
  });
}
