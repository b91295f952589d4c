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
  const enterprise = await repo.sql.query<{ enterprise_id: string }>(
    'SELECT enterprise_id FROM mpi_source WHERE patient_id = ? UNION SELECT enterprise_id FROM mpi_enterprise WHERE enterprise_id = ?',
    [patientId, patientId],
  );
  const patientIds = new Set([patientId]);
  const identifiers: { system: string; value: string }[] = [];
  if (enterprise.length) {
    const enterpriseId = enterprise[0].enterprise_id;
    patientIds.add(enterpriseId);
    const sources = await repo.sql.query<{ patient_id: string; source_system: string | null; source_value: string | null }>(
      'SELECT patient_id, source_system, source_value FROM mpi_source WHERE enterprise_id = ?',
      [enterpriseId],
    );
    for (const s of sources) {
      patientIds.add(s.patient_id);
      if (s.source_system && s.source_value) identifiers.push({ system: s.source_system, value: s.source_value });
    }
  } else {
    const [patient] = (await repo.readMany('Patient', [patientId])) as Patient[];
    for (const i of patient?.identifier ?? []) if (i.system && i.value) identifiers.push({ system: i.system, value: i.value });
  }
  const groups = new Set<string>();
  const ids = [...patientIds];
  const byPatient = await repo.sql.query<{ group_id: string }>(`SELECT DISTINCT group_id FROM roster_member WHERE patient_id IN (${ids.map(() => '?').join(', ')})`, ids);
  byPatient.forEach((r) => groups.add(r.group_id));
  for (const i of identifiers) {
    const rows = await repo.sql.query<{ group_id: string }>('SELECT DISTINCT group_id FROM roster_member WHERE value = ? AND system = ?', [i.value, i.system]);
    rows.forEach((r) => groups.add(r.group_id));
  }
  return { patientIds, identifiers, groups };
}
