import type { Identifier } from '@medplum/fhirtypes';
import { fhirError } from '../fhir/outcome.js';
import type { SqlExecutor } from '../store/database.js';
import { MpiStore } from './mpi-store.js';
import { ENTERPRISE_ID_SYSTEM } from './source-identity.js';

export interface CrossReference {
  identifier: Identifier;
  /** The Patient that identifier names here: a source record, or the enterprise (golden) record. */
  patientId: string;
}

/**
 * IHE PIXm (ITI-83): the identifiers that other identity domains (sources, and the exchange's own
 * enterprise ids) hold for the person a source identifier names. Only confirmed links count: records in
 * the same enterprise identity, never possible matches waiting for review. Errors as ITI-83 lays them
 * down: unknown domain 400, unknown identifier 404, unknown target domain 403.
 */
export async function crossReference(sql: SqlExecutor, system: string, value: string, targetSystems: string[]): Promise<CrossReference[]> {
  const store = new MpiStore(sql);
  const knownDomain = async (s: string): Promise<boolean> => s === ENTERPRISE_ID_SYSTEM || (await store.knowsSourceSystem(s));
  if (!(await knownDomain(system))) {
    throw fhirError(400, 'code-invalid', 'sourceIdentifier Assigning Authority not found');
  }
  for (const target of targetSystems) {
    if (!(await knownDomain(target))) {
      throw fhirError(403, 'code-invalid', 'targetSystem not found');
    }
  }
  let enterpriseId: string | undefined;
  if (system === ENTERPRISE_ID_SYSTEM) {
    enterpriseId = (await store.enterprise(value))?.status === 'active' ? value : undefined;
  } else {
    const patientId = await store.sourceByIdentifier(system, value);
    enterpriseId = patientId ? (await store.source(patientId))?.enterpriseId : undefined;
  }
  if (!enterpriseId) {
    throw fhirError(404, 'not-found', 'sourceIdentifier Patient Identifier not found');
  }
  const all: CrossReference[] = [
    { identifier: { system: ENTERPRISE_ID_SYSTEM, value: enterpriseId }, patientId: enterpriseId },
    ...(await store.sourcesOf(enterpriseId))
      .filter((s) => s.sourceSystem && s.sourceValue)
      .map((s) => ({ identifier: { system: s.sourceSystem, value: s.sourceValue }, patientId: s.patientId })),
  ];
  return all.filter((r) => !(r.identifier.system === system && r.identifier.value === value) && (!targetSystems.length || targetSystems.includes(r.identifier.system as string)));
}
