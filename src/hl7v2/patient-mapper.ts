import type { Identifier, Patient } from '@medplum/fhirtypes';
import { SSN_SYSTEM } from '../mpi/features.js';
import { identifierQuery } from '../bundle/transaction-builder.js';
import { address, codeableConcept, codingSystem, contactPoint, cx, date, humanName, identifierType, type V2Identifier } from './datatypes.js';
import { MappingError, type MappingContext } from './mapping-context.js';
import type { V2Segment } from './message-reader.js';

/** Identifier types (HL7 table 0203) that name the person, never a record at one source. */
const PERSON_LEVEL_TYPES = new Set(['SS', 'SSN', 'DL', 'PPN', 'NI', 'NH', 'NNxxx', 'MA', 'MC', 'MCN', 'PEN', 'BC', 'DR']);
/** Identifier types of a source's own record number. */
const RECORD_TYPES = new Set(['MR', 'MRN', 'PI', 'PT', 'PN']);

const GENDER: Record<string, Patient['gender']> = { M: 'male', F: 'female', O: 'other', A: 'other', N: 'other', X: 'other', U: 'unknown' };
const MARITAL_CODES = new Set(['A', 'D', 'I', 'L', 'M', 'P', 'S', 'T', 'U', 'W', 'C']);

/**
 * PID to Patient (HL7 v2-to-FHIR PID map). The record number the sender keeps for the person, its MRN,
 * becomes an identifier of the participant's registered assigning authority, whatever the message calls
 * that authority: it is how the index recognises a re-sent record and how other participants' queries
 * (PIXm) name it. The first PID-3 repetition typed MR/PI/PT, else the first not naming the person
 * (an SSN or a licence), is that MRN; a PID-3 without one is a mapping error (AE).
 */
export function mapPatient(ctx: MappingContext, pid: V2Segment): { patient: Patient; mrn: string } {
  const identifiers: Identifier[] = [];
  const candidates = pid.eachRepetition(3).map((r) => cx(pid, 3, r)).filter((c): c is V2Identifier => !!c);
  const mrn = candidates.find((c) => RECORD_TYPES.has(c.typeCode)) ?? candidates.find((c) => !PERSON_LEVEL_TYPES.has(c.typeCode));
  if (!mrn) {
    throw new MappingError('PID-3 (patient identifier list) carries no record number of the sender', 'PID^1^3', '101');
  }
  identifiers.push({ type: identifierType('MR'), system: ctx.participant.mrnSystem, value: mrn.value });
  for (const other of candidates) {
    if (other !== mrn) {
      identifiers.push(otherIdentifier(other));
    }
  }
  const ssn = pid.value(19);
  if (ssn && !identifiers.some((i) => i.system === SSN_SYSTEM)) {
    identifiers.push({ type: identifierType('SS'), system: SSN_SYSTEM, value: ssn });
  }

  const patient: Patient = { resourceType: 'Patient', identifier: identifiers, active: true };
  const names = pid.eachRepetition(5).map((r) => humanName(pid, 5, r)).filter((n) => !!n);
  if (names.length) patient.name = names;
  const telecom = [
    ...pid.eachRepetition(13).map((r) => contactPoint(pid, 13, r, 'home')),
    ...pid.eachRepetition(14).map((r) => contactPoint(pid, 14, r, 'work')),
  ].filter((t) => !!t);
  if (telecom.length) patient.telecom = telecom;
  const gender = GENDER[pid.value(8).toUpperCase()];
  if (gender) patient.gender = gender;
  else if (pid.value(8)) ctx.warn(`PID-8 administrative sex "${pid.value(8)}" is not in HL7 table 0001: left out`);
  const birth = pid.value(7);
  if (birth) {
    const birthDate = date(birth);
    if (birthDate) patient.birthDate = birthDate;
    else ctx.warn(`PID-7 birth date "${birth}" is not a valid date: left out`);
  }
  const addresses = pid.eachRepetition(11).map((r) => address(pid, 11, r)).filter((a) => !!a);
  if (addresses.length) patient.address = addresses;
  const marital = pid.value(16);
  if (marital) {
    patient.maritalStatus = MARITAL_CODES.has(marital)
      ? { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus', code: marital, ...(pid.value(16, 2) ? { display: pid.value(16, 2) } : {}) }] }
      : codeableConcept(pid, 16);
  }
  const language = codeableConcept(pid, 15);
  if (language) patient.communication = [{ language }];
  const deathIndicator = pid.value(30).toUpperCase();
  const deathTime = ctx.dateTime(pid.value(29));
  if (deathTime) patient.deceasedDateTime = deathTime;
  else if (deathIndicator === 'Y' || deathIndicator === 'N') patient.deceasedBoolean = deathIndicator === 'Y';
  patient.managingOrganization = ctx.organization;
  return { patient, mrn: mrn.value };
}

/** Another identifier of the person: an SSN, a licence, another domain's number. */
function otherIdentifier(c: V2Identifier): Identifier {
  const type = identifierType(c.typeCode);
  let system: string | undefined;
  if (c.typeCode === 'SS' || c.authority.toUpperCase() === 'USSSA' || c.authority.toUpperCase() === 'SSA') {
    system = SSN_SYSTEM;
  } else if (c.authorityUniversalId && /^\d+(\.\d+)+$/.test(c.authorityUniversalId)) {
    system = codingSystem(c.authorityUniversalId);
  } else if (c.authority) {
    system = `urn:tessera:assigning-authority:${encodeURIComponent(c.authority)}`;
  }
  return { ...(type ? { type } : {}), ...(system ? { system } : {}), value: c.value };
}

/**
 * Adds the message's Patient to the transaction. ADT messages own the demographics and replace the
 * sender's record (conditional update on its MRN); results and immunizations only create it when the
 * exchange does not know it yet, and leave the registered demographics alone.
 */
export function addPatient(ctx: MappingContext, mode: 'replace' | 'create-if-missing'): Patient {
  const pid = ctx.message.segment('PID');
  if (!pid) {
    throw new MappingError('the message has no PID segment', 'PID', '100');
  }
  const { patient, mrn } = mapPatient(ctx, pid);
  const query = identifierQuery(ctx.participant.mrnSystem, mrn);
  ctx.patient = mode === 'replace' ? ctx.tx.upsert(patient, query) : ctx.tx.createIfMissing(patient, query);
  return patient;
}
