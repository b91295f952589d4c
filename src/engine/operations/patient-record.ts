import type { Filter } from '@medplum/core';
import type { Patient } from '@medplum/fhirtypes';
import { linkedSourceIds } from '../../mpi/golden-record.js';
import { isGolden } from '../../mpi/source-identity.js';
import { derivedRecordsCondition } from '../../search/derived-records.js';
import { NO_ROWS, ownRowsCondition, type Sql } from '../../search/filter-sql.js';
import { joinOwnIndexRows, ownerKey } from '../../store/index-writer.js';
import type { Dialect } from '../../store/database.js';
import type { Repository } from '../../store/repository.js';
import { policyOf, type FhirRequest } from '../fhir-request.js';

/** A stored resource of a patient's record, as its JSON text. */
export interface RecordEntry {
  type: string;
  id: string;
  /** The stored JSON; '' when read without content (see `withContent`). */
  json: string;
  lastUpdated: number;
  /** The stored version (version_id): what the merged record's cache is keyed by. */
  version?: number;
  /** Set by `withContent` when the stored version moved on since the entry was listed. */
  stale?: boolean;
  /** The Patient record whose compartment holds it; absent for what the record only references. */
  patient?: string;
}

export interface RecordOptions {
  /** false: list the records without their content (see `withContent`). */
  content?: boolean;
  /** Only resources of these types in the compartments, and what those reference; absent: every type. */
  types?: readonly string[];
  /** false: the compartments' resources only, not what they reference. */
  references?: boolean;
  /** Only the records of the one type listed that meet these search criteria (the search engine's conditions). */
  where?: Filter[];
  /** The person, when the caller has read it already (the focal record and the source records it links). */
  person?: Person;
}

/** The Patient asked about and the ids of every record of the person (itself, and what an enterprise record links). */
export interface Person {
  focal: Patient;
  patientIds: string[];
}

export async function personOf(repo: Repository, patientId: string): Promise<Person> {
  const focal = (await repo.read('Patient', patientId)) as Patient;
  return { focal, patientIds: isGolden(focal) ? [patientId, ...linkedSourceIds(focal)] : [patientId] };
}

export interface PatientRecord extends Person {
  /** What the caller may read: the compartments' resources, then what they reference. */
  entries: RecordEntry[];
}

/**
 * The patient's record as the caller may read it: the patient, every resource in their compartment
 * (through the compartment table, one indexed lookup), and the resources those reference directly
 * (practitioners, organisations, medications, locations), cut down to what the access policy lets the
 * caller read. On an enterprise (golden) record it covers every source record the golden record links;
 * on a source record it leaves out the golden record that links it. Shared by $everything and the
 * merged record's operations, so that both disclose exactly the same source records.
 */
export async function reachableRecord(repo: Repository, patientId: string, req: FhirRequest, options: RecordOptions = {}): Promise<PatientRecord> {
  const content = options.content ?? true;
  // Only these types of the compartments (and what they reference): a merged search needs the facts of its type.
  const only = (column: string): Sql =>
    options.types ? { sql: `AND ${column} IN (${options.types.map(() => '?').join(', ')})`, params: [...options.types] } : { sql: '', params: [] };
  const policy = policyOf(req);
  // With types known, the policy's read condition goes into the listing itself: one query, where checking
  // the listed ids afterwards took one more per 500 records (a merged search lists a whole type).
  const ofTypes = options.types ? readableOfTypes(options.types, (t) => policy.rows(t, 'r', 'r')) : only('r.type');
  const fromTypes = only('s.type');
  // The compartment rows carry their resource's type: the index (patient_id, type, id) then holds the listing.
  const compartmentTypes = only('c.type');
  const meeting = criteriaOf(options, policy, repo.db.dialect);
  const { focal, patientIds } = options.person ?? (await personOf(repo, patientId));
  const inFocus = patientIds.map(() => '?').join(', ');
  // Golden records that link a patient in focus are in their compartment, but are not theirs to return.
  const keptFrom = (alias: string, rk: string): Sql => {
    const condition = derivedRecordsCondition(repo.db.dialect, 'Patient', rk, []);
    return condition
      ? { sql: `AND (${alias}.type <> 'Patient' OR ${alias}.id IN (${inFocus}) OR ${condition.sql})`, params: [...patientIds, ...condition.params] }
      : { sql: '', params: [] };
  };
  const kept = keptFrom('r', 'r.rk');
  // Stored JSON goes into the response as it is: no parse and re-serialise of thousands of resources.
  const rows = await repo.sql.query<{ type: string; id: string; content?: string; version_id: number; last_updated: number; patient_id: string }>(
    `SELECT r.type, r.id, ${content ? 'r.content, ' : ''}r.version_id, r.last_updated, c.patient_id FROM compartment c JOIN resource r ON r.rk = ${ownerKey('c')}
     WHERE c.patient_id IN (${inFocus}) ${compartmentTypes.sql} ${meeting.sql} AND r.deleted = 0 ${kept.sql} ${ofTypes.sql}
     ORDER BY r.type, r.id, c.patient_id`,
    [...patientIds, ...compartmentTypes.params, ...meeting.params, ...kept.params, ...ofTypes.params],
  );
  const seen = new Set<string>();
  const all: RecordEntry[] = [];
  for (const r of rows) {
    // A resource in the compartments of two linked source records comes back once, as the lowest patient
    // id's (ORDER BY): every listing of it, whole or by criteria, gives it the same source record.
    if (!seen.has(`${r.type}/${r.id}`)) {
      seen.add(`${r.type}/${r.id}`);
      all.push({ type: r.type, id: r.id, json: r.content ?? '', version: Number(r.version_id), lastUpdated: Number(r.last_updated), patient: r.patient_id });
    }
  }
  // One hop out: resources referenced from the compartment but not in it. A deleted resource has no index
  // or compartment rows left, so the compartment rows alone reach the live resources' references.
  const referencing = keptFrom('c', ownerKey('c'));
  const referenced = options.references === false ? [] : await repo.sql.query<{ target_type: string; target_id: string }>(
    `SELECT DISTINCT s.target_type, s.target_id FROM compartment c ${joinOwnIndexRows(repo.db.dialect, 'sp_reference', 's', ownerKey('c'))}
     WHERE c.patient_id IN (${inFocus}) AND s.target_id IS NOT NULL AND s.target_type IS NOT NULL ${referencing.sql} ${fromTypes.sql}`,
    [...patientIds, ...referencing.params, ...fromTypes.params],
  );
  const byType = new Map<string, string[]>();
  for (const { target_type: t, target_id: id } of referenced) {
    if (!seen.has(`${t}/${id}`)) {
      seen.add(`${t}/${id}`);
      (byType.get(t) ?? byType.set(t, []).get(t))?.push(id);
    }
  }
  for (const [t, ids] of byType) {
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      const found = await repo.sql.query<{ id: string; content?: string; version_id: number; last_updated: number }>(
        `SELECT r.id, ${content ? 'r.content, ' : ''}r.version_id, r.last_updated FROM resource r WHERE r.type = ? AND r.deleted = 0 AND r.id IN (${chunk.map(() => '?').join(',')})`,
        [t, ...chunk],
      );
      for (const r of found) all.push({ type: t, id: r.id, json: r.content ?? '', version: Number(r.version_id), lastUpdated: Number(r.last_updated) });
    }
  }
  // Only what the caller may read, before paging and the total: a withheld record is not counted either
  // (the compartment's records of given types were listed under the read condition already).
  const listedReadable = (e: RecordEntry): boolean => options.types !== undefined && e.patient !== undefined;
  const reachable = await policy.reachable(repo, all.filter((e) => !listedReadable(e)), 'r');
  return { focal, patientIds, entries: all.filter((e) => listedReadable(e) || reachable.has(`${e.type}/${e.id}`)) };
}

/** `AND` the listed records meet `where` (chains and `_has` looking only into what the caller may read). */
function criteriaOf(options: RecordOptions, policy: ReturnType<typeof policyOf>, dialect: Dialect): Sql {
  if (!options.where?.length) return { sql: '', params: [] };
  if (options.types?.length !== 1) throw new Error('Search criteria apply to a listing of one type');
  // Each of the person's records probed by its own index rows: the store's records of a code grow with it.
  const type = options.types[0];
  // The compartment row names its resource's key: the probes run before the resource row is read.
  const conditions = options.where.map((f) => ownRowsCondition(dialect, type, 'r', f, (t, alias) => policy.rows(t, 'r', alias), ownerKey('c')));
  return { sql: conditions.map((c) => `AND ${c.sql}`).join(' '), params: conditions.flatMap((c) => c.params) };
}

/** `AND` the records' type is one of `types` and the caller may read them (a type it may not read: none). */
function readableOfTypes(types: readonly string[], rows: (type: string) => Sql | undefined): Sql {
  const parts = types
    .map((type) => ({ type, condition: rows(type) }))
    .filter((p) => p.condition !== NO_ROWS)
    .map(({ type, condition }) => (condition ? { sql: `(r.type = ? AND ${condition.sql})`, params: [type, ...condition.params] } : { sql: 'r.type = ?', params: [type] }));
  return parts.length ? { sql: `AND (${parts.map((p) => p.sql).join(' OR ')})`, params: parts.flatMap((p) => p.params) } : { sql: 'AND 1 = 0', params: [] };
}

/** Fills in the stored JSON of entries read without content (one query per type and 500 ids). */
export async function withContent(repo: Repository, entries: RecordEntry[]): Promise<RecordEntry[]> {
  const missing = new Map<string, RecordEntry[]>();
  for (const e of entries) if (!e.json) (missing.get(e.type) ?? missing.set(e.type, []).get(e.type))?.push(e);
  for (const [type, list] of missing) {
    for (let i = 0; i < list.length; i += 500) {
      const chunk = list.slice(i, i + 500);
      const byId = new Map(chunk.map((e) => [e.id, e]));
      const rows = await repo.sql.query<{ id: string; content: string | null; version_id: number; deleted: number }>(
        `SELECT r.id, r.content, r.version_id, r.deleted FROM resource r WHERE r.type = ? AND r.id IN (${chunk.map(() => '?').join(',')})`,
        [type, ...chunk.map((e) => e.id)],
      );
      for (const r of rows) {
        const entry = byId.get(r.id) as RecordEntry;
        entry.json = r.content ?? '';
        if (Number(r.deleted) || Number(r.version_id) !== entry.version) entry.stale = true;
      }
    }
  }
  return entries;
}
