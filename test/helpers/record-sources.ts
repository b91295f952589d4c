/**
 * One person's record as three participants would send it, written for the longitudinal-record tests:
 * an HL7 v2 ORU^R01 (the shapes of the public HL7 v2 samples in test/fixtures/hl7v2-samples), C-CDA R2.1
 * documents (the templates of the HL7 C-CDA examples in test/fixtures/ccda-hl7-examples, cut down to the
 * sections used), and FHIR R4 resources. The clinical content (codes from LOINC, SNOMED CT, RxNorm, CVX,
 * ICD-10-CM) is invented for the tests.
 */

export interface Demographics {
  given: string;
  family: string;
  birth: string; // YYYYMMDD
  gender: 'F' | 'M';
  street: string;
  city: string;
  zip: string;
  phone: string;
}

export interface CcdaContent {
  results?: { loinc: string; display: string; time: string; value: string; unit: string }[];
  problems?: { sct: string; display: string; onset: string; resolved?: string }[];
  allergies?: { rxnorm: string; display: string; active: boolean }[];
  noKnownAllergies?: boolean;
  medications?: { rxnorm: string; display: string; start: string; active: boolean }[];
}

const T = '2.16.840.1.113883.10.20.22';
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

function section(template: string, loinc: string, title: string, entries: string[]): string {
  return `<component><section><templateId root="${template}" extension="2015-08-01"/><code code="${loinc}" codeSystem="2.16.840.1.113883.6.1"/><title>${title}</title><text>${title}</text>${entries.map((e) => `<entry>${e}</entry>`).join('')}</section></component>`;
}

/** A C-CDA R2.1 Continuity of Care Document of one patient with the given sections. */
export function ccdaDocument(mrnOid: string, mrn: string, who: Demographics, docId: string, content: CcdaContent): string {
  const results = (content.results ?? []).map(
    (r, i) => `<organizer classCode="BATTERY" moodCode="EVN"><templateId root="${T}.4.1" extension="2015-08-01"/><id root="${mrnOid}.9" extension="${docId}-org-${i}"/><code code="${r.loinc}" codeSystem="2.16.840.1.113883.6.1" displayName="${esc(r.display)}"/><statusCode code="completed"/><effectiveTime value="${r.time}"/>
      <component><observation classCode="OBS" moodCode="EVN"><templateId root="${T}.4.2" extension="2015-08-01"/><id root="${mrnOid}.9" extension="${docId}-res-${i}"/><code code="${r.loinc}" codeSystem="2.16.840.1.113883.6.1" displayName="${esc(r.display)}"/><statusCode code="completed"/><effectiveTime value="${r.time}"/><value xsi:type="PQ" value="${r.value}" unit="${r.unit}"/></observation></component></organizer>`,
  );
  const problems = (content.problems ?? []).map(
    (p, i) => `<act classCode="ACT" moodCode="EVN"><templateId root="${T}.4.3" extension="2015-08-01"/><id root="${mrnOid}.9" extension="${docId}-pc-${i}"/><code code="CONC" codeSystem="2.16.840.1.113883.5.6"/><statusCode code="${p.resolved ? 'completed' : 'active'}"/><effectiveTime><low value="${p.onset}"/></effectiveTime>
      <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN"><templateId root="${T}.4.4" extension="2015-08-01"/><id root="${mrnOid}.9" extension="${docId}-p-${i}"/><code code="55607006" codeSystem="2.16.840.1.113883.6.96"/><statusCode code="completed"/><effectiveTime><low value="${p.onset}"/>${p.resolved ? `<high value="${p.resolved}"/>` : ''}</effectiveTime><value xsi:type="CD" code="${p.sct}" codeSystem="2.16.840.1.113883.6.96" displayName="${esc(p.display)}"/></observation></entryRelationship></act>`,
  );
  const allergy = (inner: string, i: number, active: boolean) =>
    `<act classCode="ACT" moodCode="EVN"><templateId root="${T}.4.30" extension="2015-08-01"/><id root="${mrnOid}.9" extension="${docId}-ac-${i}"/><code code="CONC" codeSystem="2.16.840.1.113883.5.6"/><statusCode code="${active ? 'active' : 'completed'}"/><effectiveTime><low value="20200101"/></effectiveTime><entryRelationship typeCode="SUBJ">${inner}</entryRelationship></act>`;
  const allergies = (content.allergies ?? []).map((a, i) =>
    allergy(
      `<observation classCode="OBS" moodCode="EVN"><templateId root="${T}.4.7" extension="2014-06-09"/><id root="${mrnOid}.9" extension="${docId}-a-${i}"/><code code="ASSERTION" codeSystem="2.16.840.1.113883.5.4"/><statusCode code="completed"/><effectiveTime><low value="20200101"/></effectiveTime><value xsi:type="CD" code="416098002" codeSystem="2.16.840.1.113883.6.96" displayName="Drug allergy"/><participant typeCode="CSM"><participantRole classCode="MANU"><playingEntity classCode="MMAT"><code code="${a.rxnorm}" codeSystem="2.16.840.1.113883.6.88" displayName="${esc(a.display)}"/></playingEntity></participantRole></participant></observation>`,
      i,
      a.active,
    ),
  );
  if (content.noKnownAllergies) {
    allergies.push(
      allergy(
        `<observation classCode="OBS" moodCode="EVN" negationInd="true"><templateId root="${T}.4.7" extension="2014-06-09"/><id root="${mrnOid}.9" extension="${docId}-nka"/><code code="ASSERTION" codeSystem="2.16.840.1.113883.5.4"/><statusCode code="completed"/><effectiveTime><low nullFlavor="UNK"/></effectiveTime><value xsi:type="CD" code="419199007" codeSystem="2.16.840.1.113883.6.96" displayName="Allergy to substance"/></observation>`,
        99,
        true,
      ),
    );
  }
  const medications = (content.medications ?? []).map(
    (m, i) => `<substanceAdministration classCode="SBADM" moodCode="EVN"><templateId root="${T}.4.16" extension="2014-06-09"/><id root="${mrnOid}.9" extension="${docId}-m-${i}"/><statusCode code="${m.active ? 'active' : 'completed'}"/><effectiveTime xsi:type="IVL_TS"><low value="${m.start}"/>${m.active ? '' : `<high value="${m.start.slice(0, 4)}1231"/>`}</effectiveTime><consumable><manufacturedProduct classCode="MANU"><templateId root="${T}.4.23" extension="2014-06-09"/><manufacturedMaterial><code code="${m.rxnorm}" codeSystem="2.16.840.1.113883.6.88" displayName="${esc(m.display)}"/></manufacturedMaterial></manufacturedProduct></consumable></substanceAdministration>`,
  );
  const sections = [
    section(`${T}.2.3.1`, '30954-2', 'Results', results),
    section(`${T}.2.5.1`, '11450-4', 'Problems', problems),
    section(`${T}.2.6.1`, '48765-2', 'Allergies', allergies),
    section(`${T}.2.1.1`, '10160-0', 'Medications', medications),
  ].join('');
  return `<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<realmCode code="US"/><typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
<templateId root="${T}.1.1" extension="2015-08-01"/><templateId root="${T}.1.2" extension="2015-08-01"/>
<id root="${mrnOid}.8" extension="${docId}"/><code code="34133-9" codeSystem="2.16.840.1.113883.6.1" displayName="Summarization of Episode Note"/>
<title>Continuity of Care Document</title><effectiveTime value="20261110120000+0000"/><confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25"/><languageCode code="en-US"/>
<recordTarget><patientRole><id root="${mrnOid}" extension="${mrn}"/><addr use="HP"><streetAddressLine>${who.street}</streetAddressLine><city>${who.city}</city><postalCode>${who.zip}</postalCode></addr><telecom use="HP" value="tel:${who.phone}"/>
<patient><name use="L"><given>${who.given}</given><family>${who.family}</family></name><administrativeGenderCode code="${who.gender}" codeSystem="2.16.840.1.113883.5.1"/><birthTime value="${who.birth}"/></patient></patientRole></recordTarget>
<author><time value="20261110120000+0000"/><assignedAuthor><id root="${mrnOid}.7" extension="author"/><assignedPerson><name><given>Ana</given><family>Author</family></name></assignedPerson></assignedAuthor></author>
<custodian><assignedCustodian><representedCustodianOrganization><id root="${mrnOid}"/><name>Custodian</name></representedCustodianOrganization></assignedCustodian></custodian>
<component><structuredBody>${sections}</structuredBody></component>
</ClinicalDocument>`;
}

/** An ORU^R01 with one OBR and its OBX results (value type NM). */
export function oruMessage(facility: string, control: string, mrn: string, who: Demographics, order: string, results: { loinc: string; display: string; time: string; value: string; unit: string }[]): string {
  return [
    `MSH|^~\\&|LAB|${facility}|HIE|TESSERA|20261101090000||ORU^R01^ORU_R01|${control}|P|2.5.1`,
    `PID|1||${mrn}^^^${facility}^MR||${who.family}^${who.given}||${who.birth}|${who.gender}|||${who.street}^^${who.city}^^${who.zip}||${who.phone}`,
    `OBR|1|${order}|${order}|24323-8^Comprehensive metabolic panel^LN|||${results[0].time}|||||||||||||||${results[0].time}|||F`,
    ...results.map((r, i) => `OBX|${i + 1}|NM|${r.loinc}^${r.display}^LN||${r.value}|${r.unit}|||||F|||${r.time}`),
  ].join('\r');
}
