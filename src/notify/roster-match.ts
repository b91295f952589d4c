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
 * The persons events are about, through the master patient index as it stands when the events are
 * dispatched: the hospital's record, its enterprise (golden) record and the records of every other
 * source linked to it (a practice's, with the practice's MRN). Sources move to the surviving enterprise
 * when identities merge, so a roster keeps following its members. Without the index: the record alone.
 * One statement for all of them (a round trip on PostgreSQL), however many records and rosters.
 */
export async function personKeysOf(repo: Repository, patientIds: string[]): Promise<Map<string, PersonKeys>> {
  const asked = [...new Set(patientIds)];
  const people = new Map(asked.map((id) => [id, { patientIds: new Set([id]), identifiers: [] as PersonKeys['identifiers'], groups: new Set<string>() }]));
  if (!asked.length) return people;
  const rows = await repo.sql.query<{ asked: string; kind: string; id: string; system: string | null; value: string | null }>(personKeysSql(asked.length), asked);
  const indexed = new Set<string>();
  for (const r of rows) {
    const person = people.get(r.asked);
    if (!person) continue;
    if (r.kind === 'g') person.groups.add(r.id);
    else person.patientIds.add(r.id);
    if (r.kind === 'e') indexed.add(r.asked);
    if (r.kind === 's' && r.system && r.value) person.identifiers.push({ system: r.system, value: r.value });
  }
  for (const id of asked.filter((a) => !indexed.has(a))) {
    // Not in the index (it is off): the record alone, and the rosters that name it by its identifiers.
    const person = people.get(id) as PersonKeys;
    const [patient] = (await repo.readMany('Patient', [id])) as Patient[];
    for (const i of patient?.identifier ?? []) if (i.system && i.value) person.identifiers.push({ system: i.system, value: i.value });
    for (const i of person.identifiers) {
      const found = await repo.sql.query<{ group_id: string }>('SELECT DISTINCT group_id FROM roster_member WHERE value = ? AND system = ?', [i.value, i.system]);
      found.forEach((r) => person.groups.add(r.group_id));
    }
  }
  return people;
}

/**
 * For each record asked about: its enterprise (`e`), the enterprise's source records with their
 * identifiers (`s`), and the rosters (`g`) that list any of those records, the enterprise or the record
 * itself, or name a source record by its identifier. `records CROSS JOIN roster_member`: SQLite takes a
 * CROSS JOIN's order as written, so it looks the few records up in roster_member's patient index; as a
 * plain join it scanned all the members (100,000 in bench:notify: 3 ms per dispatch, in the dispatch's
 * write transaction). PostgreSQL plans it as any inner join. Exported for the plan's test.
 */
export function personKeysSql(count: number): string {
  return `WITH asked (patient_id) AS (VALUES ${Array.from({ length: count }, () => '(CAST(? AS TEXT))').join(', ')}),
  linked AS (SELECT a.patient_id AS asked, s.enterprise_id FROM asked a JOIN mpi_source s ON s.patient_id = a.patient_id
    UNION SELECT a.patient_id, e.enterprise_id FROM asked a JOIN mpi_enterprise e ON e.enterprise_id = a.patient_id),
  enterprise AS (SELECT asked, MIN(enterprise_id) AS enterprise_id FROM linked GROUP BY asked),
  sources AS (SELECT e.asked, s.patient_id, s.source_system, s.source_value FROM mpi_source s JOIN enterprise e ON s.enterprise_id = e.enterprise_id),
  records AS (SELECT patient_id AS asked, patient_id FROM asked UNION SELECT asked, enterprise_id FROM enterprise UNION SELECT asked, patient_id FROM sources)
SELECT asked, 'e' AS kind, enterprise_id AS id, NULL AS system, NULL AS value FROM enterprise
UNION ALL SELECT asked, 's', patient_id, source_system, source_value FROM sources
UNION ALL SELECT DISTINCT r.asked, 'g', m.group_id, NULL, NULL FROM records r CROSS JOIN roster_member m WHERE m.patient_id = r.patient_id
UNION ALL SELECT DISTINCT s.asked, 'g', m.group_id, NULL, NULL FROM roster_member m JOIN sources s ON m.value = s.source_value AND m.system = s.source_system`;
}
