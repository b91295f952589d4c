import type { Identifier, Patient } from '@medplum/fhirtypes';
import { SSN_SYSTEM } from './features.js';

/** Tag on the golden (enterprise) Patient records the index maintains itself. */
export const MPI_TAG_SYSTEM = 'https://tessera.dev/fhir/CodeSystem/mpi';
export const GOLDEN_TAG = { system: MPI_TAG_SYSTEM, code: 'golden', display: 'Enterprise (golden) record' };
/** Identifier system of enterprise ids on golden records. */
export const ENTERPRISE_ID_SYSTEM = 'urn:tessera:enterprise-id';

export function isGolden(patient: Patient): boolean {
  return !!patient.meta?.tag?.some((t) => t.system === MPI_TAG_SYSTEM && t.code === GOLDEN_TAG.code);
}

/**
 * The identifier a source assigned to its own record: the one typed MR (HL7 v2-0203 medical record number),
 * else the first identifier that is not a national one (SSN) and carries a system. Re-sending a record with
 * the same source identifier updates that source record.
 */
export function sourceIdentifier(patient: Patient): { system: string; value: string } | undefined {
  const usable = (patient.identifier ?? []).filter((i): i is Identifier & { system: string; value: string } => !!i.system && !!i.value);
  const mrn = usable.find((i) => i.type?.coding?.some((c) => c.code === 'MR'));
  const chosen = mrn ?? usable.find((i) => i.system !== SSN_SYSTEM && i.system !== ENTERPRISE_ID_SYSTEM);
  return chosen ? { system: chosen.system, value: chosen.value } : undefined;
}
