import type { Patient } from '@medplum/fhirtypes';
import type { Repository } from '../store/repository.js';

/** A person as rosters know them: every Patient record of theirs, and every identifier those carry. */
export interface PersonKeys {
  patientIds: Set<string>;
  identifiers: { system: string; value: string }[];
  /** The roster Groups that list any of them. */
  groups: Set<string>;
}

/**
 * The person an event is about, through the master patient index as it stands when the event is
 * dispatched: the hospital's record, its enterprise (golden) record and the records of every other
 * source linked to it (a practice's, with the practice's MRN). Sources move to the surviving enterprise
 * when identities merge, so a roster keeps following its members. Without the index: the record alone.
 */
export async function personKeys(repo: Repository, patientId: string): Promise<PersonKeys> {
  const rows = await repo.sql.query<{ kind: string; id: string; system: string | null; value: string | null }>(PERSON_KEYS, [patientId, patientId, patientId]);
  const patientIds = new Set([patientId]);
  const identifiers: { system: string; value: string }[] = [];
  const groups = new Set<string>();
  for (const r of rows) {
    if (r.kind === 'g') groups.add(r.id);
    else patientIds.add(r.id);
    if (r.kind === 's' && r.system && r.value) identifiers.push({ system: r.system, value: r.value });
  }
  if (rows.some((r) => r.kind === 'e')) return { patientIds, identifiers, groups };
  // Not in the index (it is off): the record alone, and the rosters that name it by its identifiers.
  const [patient] = (await repo.readMany('Patient', [patientId])) as Patient[];
  for (const i of patient?.identifier ?? []) if (i.system && i.value) identifiers.push({ system: i.system, value: i.value });
  for (const i of identifiers) {
    const found = await repo.sql.query<{ group_id: string }>('SELECT DISTINCT group_id FROM roster_member WHERE value = ? AND system = ?', [i.value, i.system]);
    found.forEach((r) => groups.add(r.group_id));
  }
  return { patientIds, identifiers, groups };
}

/**
 * One statement (one round trip on PostgreSQL, instead of four): the record's enterprise (`e`), the
 * enterprise's source records with their identifiers (`s`), and the rosters (`g`) that list any of those
 * records, the enterprise or the record itself, or name a source record by its identifier.
 */
const PERSON_KEYS = `WITH linked AS (SELECT enterprise_id FROM mpi_source WHERE patient_id = ? UNION SELECT enterprise_id FROM mpi_enterprise WHERE enterprise_id = ?),
  enterprise AS (SELECT enterprise_id FROM linked LIMIT 1),
  sources AS (SELECT s.patient_id, s.source_system, s.source_value FROM mpi_source s JOIN enterprise e ON s.enterprise_id = e.enterprise_id),
  records AS (SELECT CAST(? AS TEXT) AS patient_id UNION SELECT enterprise_id FROM enterprise UNION SELECT patient_id FROM sources)
SELECT 'e' AS kind, enterprise_id AS id, NULL AS system, NULL AS value FROM enterprise
UNION ALL SELECT 's', patient_id, source_system, source_value FROM sources
UNION ALL SELECT DISTINCT 'g', m.group_id, NULL, NULL FROM roster_member m WHERE m.patient_id IN (SELECT patient_id FROM records)
UNION ALL SELECT DISTINCT 'g', m.group_id, NULL, NULL FROM roster_member m JOIN sources s ON m.value = s.source_value AND m.system = s.source_system`;
