import type { Patient } from '@medplum/fhirtypes';
import { linkedSourceIds, replacedBy } from '../mpi/golden-record.js';
import { isGolden } from '../mpi/source-identity.js';
import type { AuthContext } from '../security/token-service.js';
import type { Repository } from '../store/repository.js';
import { AccessPolicy, grantsOf, type RowRestriction } from './access-policy.js';

/**
 * Restrictions on every type's rows besides the scopes (patients' consents, security labels), each
 * worked out for one caller (given the patient context's records, worked out once per request).
 * Configured per store at start-up (createTessera), keyed by its Database so that transactions'
 * repositories share them.
 */
export type RestrictionSource = (repo: Repository, auth: AuthContext, patientRecords: readonly string[] | undefined) => Promise<RowRestriction | undefined>;

const restrictionSources = new WeakMap<object, RestrictionSource[]>();

export function configureRestrictions(db: object, sources: RestrictionSource[]): void {
  restrictionSources.set(db, sources);
}

/** The access policy of one request: the system's for the server's own work, else the token's. */
export async function policyFor(repo: Repository, auth: AuthContext | undefined): Promise<AccessPolicy> {
  if (!auth) {
    return AccessPolicy.SYSTEM;
  }
  const patientRecords = auth.patient ? await personRecords(repo, auth.patient) : undefined;
  const restrictions: RowRestriction[] = [];
  for (const source of restrictionSources.get(repo.db) ?? []) {
    const restriction = await source(repo, auth, patientRecords);
    if (restriction) restrictions.push(restriction);
  }
  return new AccessPolicy(grantsOf(auth.scopes, patientRecords), restrictions, auth, patientRecords);
}

/**
 * The Patient records of the person a patient context names: the record itself and, through the master
 * patient index, every record of the same person at other sources and their enterprise (golden) record.
 * A patient app sees the person's community record, not one source's part of it.
 */
export async function personRecords(repo: Repository, patientId: string): Promise<string[]> {
  return (await personOf(repo, patientId)).records;
}

/** A person as the master patient index has them now: their Patient records and the enterprises those came through. */
export interface Person {
  /** The record asked about, the golden records found and every source record they link. */
  records: string[];
  /** The enterprise ids (golden record ids) among `records`, merged-away ones included. */
  enterprises: string[];
}

/** Hops through `replaced-by` links (merges of merges) before giving up on a chain. */
const MAX_REPLACED_HOPS = 16;

/**
 * The person of a Patient record (see personRecords). A golden record whose enterprise was merged into
 * another (inactive, `replaced-by`) stands for the enterprise it went into, as it does for anyone holding
 * its id: a Consent or a patient context naming it keeps following the person, and an unmerge (which makes
 * it active again with its own records) takes it back.
 */
export async function personOf(repo: Repository, patientId: string): Promise<Person> {
  const ids = new Set([patientId]);
  const enterprises = new Set<string>();
  let asked: string | undefined = patientId;
  for (let hop = 0; asked !== undefined && hop <= MAX_REPLACED_HOPS; hop++) {
    // Past the first hop `asked` is an enterprise id: its own golden record is all there is to read.
    const linking =
      hop === 0
        ? await repo.sql.query<{ id: string }>("SELECT DISTINCT id FROM sp_reference WHERE type = 'Patient' AND code = 'link' AND target_type = 'Patient' AND target_id = ?", [asked])
        : [];
    const candidates = await repo.readMany('Patient', [asked, ...linking.map((r) => r.id)]);
    let next: string | undefined;
    for (const patient of candidates as Patient[]) {
      if (isGolden(patient) && (patient.id === asked || linkedSourceIds(patient).includes(asked))) {
        ids.add(patient.id as string);
        enterprises.add(patient.id as string);
        linkedSourceIds(patient).forEach((id) => ids.add(id));
        if (patient.id === asked && patient.active === false) next = replacedBy(patient);
      }
    }
    asked = next !== undefined && !ids.has(next) ? next : undefined;
    if (asked !== undefined) ids.add(asked);
  }
  return { records: [...ids], enterprises: [...enterprises] };
}
