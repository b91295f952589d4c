import type { CodeableConcept, Identifier, Patient } from '@medplum/fhirtypes';
import { SSN_SYSTEM } from '../mpi/features.js';
import { identifierQuery } from '../bundle/transaction-builder.js';
import type { Participant } from '../participants/participants.js';
import { address, codeSystemUri, concept, contactPoint, dateTime, humanName, identifier } from './cda-values.js';
import type { XmlElement } from './xml-element.js';

/** A document Tessera cannot take at all (not a CDA document, no patient): the sender gets this reason. */
export class CcdaDocumentError extends Error {}

const SSN_OID = '2.16.840.1.113883.4.1';
const GENDER: Record<string, Patient['gender']> = { M: 'male', F: 'female', UN: 'unknown', U: 'unknown' };

export interface DocumentHeader {
  /** ClinicalDocument/id: this document; setId + versionNumber: the document it is a version of. */
  id?: Identifier;
  setId?: Identifier;
  version?: string;
  type?: CodeableConcept;
  title: string;
  /** When the document was created (effectiveTime). */
  date?: string;
  confidentiality?: string;
  /** structuredBody (sections) or nonXMLBody (a PDF or text wrapped in CDA). */
  structured: boolean;
  /** The id this document replaces (relatedDocument typeCode RPLC), if any. */
  replaces?: Identifier;
}

export function readHeader(root: XmlElement): DocumentHeader {
  if (root.name !== 'ClinicalDocument') {
    throw new CcdaDocumentError(`the root element is <${root.name}>, not <ClinicalDocument>: not a CDA document`);
  }
  const type = concept(root.first('code'));
  const title = root.first('title')?.text() || type?.text || type?.coding?.[0]?.display || 'Clinical document';
  const replaced = root.elements('relatedDocument').find((r) => r.attr('typeCode') === 'RPLC');
  return {
    id: identifier(root.first('id')),
    setId: identifier(root.first('setId')),
    version: root.first('versionNumber')?.attr('value'),
    type,
    title,
    date: dateTime(root.first('effectiveTime')?.attr('value')),
    confidentiality: root.first('confidentialityCode')?.attr('code'),
    structured: !!root.first('component/structuredBody'),
    replaces: identifier(replaced?.first('parentDocument/id')),
  };
}

/**
 * recordTarget/patientRole to Patient. As for HL7 v2 (src/hl7v2/patient-mapper.ts), the sender's record
 * number becomes an identifier of the participant's registered assigning authority: the id whose root
 * is that authority's OID, else the first id with an extension that is not an SSN. A document naming
 * the patient by SSN alone (several public samples do) is filed under the sender's record with that
 * SSN; one with neither cannot be filed and is refused.
 */
export function readPatient(root: XmlElement, participant: Participant): DocumentPatient {
  const role = root.first('recordTarget/patientRole');
  if (!role) {
    throw new CcdaDocumentError('the document has no recordTarget/patientRole: whose record it is cannot be told');
  }
  const ids = role.elements('id').filter((i) => i.attr('extension') && !i.attr('nullFlavor'));
  const own = ids.find((i) => codeSystemUri(i.attr('root') ?? '') === participant.mrnSystem) ?? ids.find((i) => i.attr('root') !== SSN_OID);
  const ssn = ids.find((i) => i.attr('root') === SSN_OID)?.attr('extension');
  // A root-only id (<id root="2.100"/>): in CDA the root alone is the identifier (HL7 II data type).
  const rootOnly = own || ssn ? undefined : role.elements('id').find((i) => i.attr('root') && !i.attr('extension') && !i.attr('nullFlavor') && codeSystemUri(i.attr('root') as string) !== participant.mrnSystem);
  if (!own && !ssn && !rootOnly) {
    throw new CcdaDocumentError('recordTarget/patientRole carries no record number of the sender (an id with root and extension, or a root alone) and no SSN');
  }
  const mrn = own?.attr('extension') ?? rootOnly?.attr('root');
  const identifiers: Identifier[] = mrn ? [{ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] }, system: participant.mrnSystem, value: mrn }] : [];
  for (const other of ids) {
    if (other === own) continue;
    if (other.attr('root') === SSN_OID) identifiers.push({ system: SSN_SYSTEM, value: other.attr('extension') as string });
    else identifiers.push(identifier(other) as Identifier);
  }
  const organization = `Organization/${participant.organizationId}`;
  const person = role.first('patient');
  const patient: Patient = { resourceType: 'Patient', identifier: identifiers, active: true, managingOrganization: { reference: organization, display: participant.name } };
  const names = (person?.elements('name') ?? []).map(humanName).filter((n) => !!n);
  if (names.length) patient.name = names;
  const gender = GENDER[person?.first('administrativeGenderCode')?.attr('code') ?? ''];
  if (gender) patient.gender = gender;
  const birth = dateTime(person?.first('birthTime')?.attr('value'))?.slice(0, 10);
  if (birth) patient.birthDate = birth;
  const addresses = role.elements('addr').map(address).filter((a) => !!a);
  if (addresses.length) patient.address = addresses;
  const telecom = role.elements('telecom').map(contactPoint).filter((t) => !!t);
  if (telecom.length) patient.telecom = telecom;
  const marital = concept(person?.first('maritalStatusCode'));
  if (marital) patient.maritalStatus = marital;
  const languages = (person?.all('languageCommunication/languageCode') ?? []).map((l) => l.attr('code')).filter((c): c is string => !!c);
  if (languages.length) patient.communication = languages.map((code) => ({ language: { coding: [{ system: 'urn:ietf:bcp:47', code }] } }));
  if (own) {
    return { patient, recordQuery: identifierQuery(participant.mrnSystem, own.attr('extension') as string) };
  }
  if (rootOnly) {
    // A sender that puts its authority's OID where the patient's id belongs sends the same root for
    // everyone: the intake files the document only under a record of the same birth date and family
    // name (`confirm`), so such documents never land in another person's record.
    const family = patient.name?.[0]?.family;
    if (!patient.birthDate || !family) {
      throw new CcdaDocumentError(`recordTarget/patientRole has only a root-only id (${mrn}) and no birth date or family name to confirm whose it is`);
    }
    return {
      patient,
      recordQuery: identifierQuery(participant.mrnSystem, mrn as string),
      confirm: { birthDate: patient.birthDate, family },
      warning: `recordTarget's patient id is a root alone (${mrn}, no extension): taken as the record number, confirmed by birth date and family name`,
    };
  }
  // Only an SSN: the record this sender keeps for that SSN (it names the person, so it is scoped to the sender).
  return {
    patient,
    recordQuery: `${identifierQuery(SSN_SYSTEM, ssn as string)}&organization=${encodeURIComponent(organization)}`,
    warning: 'recordTarget carries no record number of the sender, only an SSN: the document is filed under the sender\'s record with that SSN',
  };
}

export interface DocumentPatient {
  patient: Patient;
  /** The search that finds the sender's record of this person (its MRN; an SSN within the sender when that is all there is). */
  recordQuery: string;
  warning?: string;
  /** A weak id (a root alone): the record it finds must have this birth date and family name. */
  confirm?: { birthDate: string; family: string };
}
