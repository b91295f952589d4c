import type { Identifier, Patient } from '@medplum/fhirtypes';

/** The US Social Security number's identifier system. */
export const SSN_SYSTEM = 'http://hl7.org/fhir/sid/us-ssn';

/** Tag on the golden (enterprise) Patient records the index maintains itself. */
export const MPI_TAG_SYSTEM = 'https://tessera.dev/fhir/CodeSystem/mpi';
export const GOLDEN_TAG = { system: MPI_TAG_SYSTEM, code: 'golden', display: 'Enterprise (golden) record' };
/** Identifier system of enterprise ids on golden records. */
export const ENTERPRISE_ID_SYSTEM = 'urn:tessera:enterprise-id';

export function isGolden(patient: Patient): boolean {
  return !!patient.meta?.tag?.some((t) => t.system === MPI_TAG_SYSTEM && t.code === GOLDEN_TAG.code);
}

/**
 * HL7 v2-0203 identifier types that name the person rather than one source's record of them (social
 * security, driver's licence, passport, national and insurance numbers): two sources sharing one of these
 * are two records of one person, for the matcher to weigh, never one record to overwrite.
 */
const PERSON_IDENTIFIER_TYPES = new Set(['SS', 'SB', 'DL', 'PPN', 'NI', 'NH', 'MC', 'MA', 'TAX', 'BCT', 'CZ', 'HC', 'JHN']);
/** NNxxx: national person identifier of country xxx (NNUSA, NNFRA ...). */
const NATIONAL_PERSON_TYPE = /^NN[A-Z]{3}$/;

/**
 * The identifier a source assigned to its own record: the one typed MR (HL7 v2-0203 medical record number),
 * else the first identifier with a system that is not a person-level one (SSN, licence, passport ...) nor
 * an enterprise id. Re-sending a record with the same source identifier updates that source record.
 */
export function sourceIdentifier(patient: Patient): { system: string; value: string } | undefined {
  const usable = (patient.identifier ?? []).filter((i): i is Identifier & { system: string; value: string } => !!i.system && !!i.value);
  const mrn = usable.find((i) => i.type?.coding?.some((c) => c.code === 'MR'));
  const isPersonLevel = (i: Identifier): boolean =>
    i.system === SSN_SYSTEM || i.system === ENTERPRISE_ID_SYSTEM || !!i.type?.coding?.some((c) => !!c.code && (PERSON_IDENTIFIER_TYPES.has(c.code) || NATIONAL_PERSON_TYPE.test(c.code)));
  const chosen = mrn ?? usable.find((i) => !isPersonLevel(i));
  return chosen ? { system: chosen.system, value: chosen.value } : undefined;
}
