import type { Patient } from '@medplum/fhirtypes';
import { linkedSourceIds } from '../mpi/golden-record.js';
import { isGolden } from '../mpi/source-identity.js';
import type { AuthContext } from '../security/token-service.js';
import type { Repository } from '../store/repository.js';
import { AccessPolicy, grantsOf, type RowRestriction } from './access-policy.js';

/**
 * Restrictions on every type's rows besides the scopes (patients' consents, security labels), each
 * worked out for one caller. Configured per store at start-up (createTessera), keyed by its Database so
 * that transactions' repositories share them.
 */
export type RestrictionSource = (repo: Repository, auth: AuthContext) => Promise<RowRestriction | undefined>;

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
    const restriction = await source(repo, auth);
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
  const ids = new Set([patientId]);
  const linking = await repo.sql.query<{ id: string }>(
    "SELECT DISTINCT id FROM sp_reference WHERE type = 'Patient' AND code = 'link' AND target_type = 'Patient' AND target_id = ?",
    [patientId],
  );
  const candidates = await repo.readMany('Patient', [patientId, ...linking.map((r) => r.id)]);
  for (const patient of candidates as Patient[]) {
    if (isGolden(patient) && (patient.id === patientId || linkedSourceIds(patient).includes(patientId))) {
      ids.add(patient.id as string);
      linkedSourceIds(patient).forEach((id) => ids.add(id));
    }
  }
  return [...ids];
}
