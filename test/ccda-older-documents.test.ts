import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { addParticipant } from '../src/participants/participants.js';
import { BACKENDS } from './helpers/backends.js';
import { FIXTURES } from './helpers/paths.js';
import { getToken, startTestServer, type TestServer } from './helpers/server.js';

/**
 * Older and bigger documents as EHRs still send them: a HITSP C32 / CCD 1.0 summary (test/fixtures/ccda-c32,
 * written from the C32 and CCD 1.0 template ids), a document whose patient id is a root alone (an EHR that
 * puts a per-patient OID in `root`), and a document just under the size limit (a CCD padded the way
 * documents with embedded PDFs and long notes grow, from the HL7 example CCD_CCD_2_CCD.xml, CC0).
 */
const LIMIT = 2 * 1024 * 1024;
const c32 = readFileSync(join(FIXTURES, 'ccda-c32', 'c32-summary.xml'), 'utf8');
const ccd = readFileSync(join(FIXTURES, 'ccda-hl7-examples', 'CCD_CCD_2_CCD.xml'), 'utf8');

for (const backend of BACKENDS) {
  describe(`C-CDA: older and bigger documents (${backend})`, () => {
    let s: TestServer;
    let token: string;
    const importDocument = (body: string) => s.fhir('POST', '$import-ccda', body, { 'content-type': 'application/xml', authorization: `Bearer ${token}` });
    const ofPatient = async (type: string, patient: string) => (await s.fhir('GET', `${type}?patient=${patient}&_count=50`)).body.entry?.map((e: any) => e.resource) ?? [];
    before(async () => {
      process.env.TESSERA_CCDA_MAX_BYTES = String(LIMIT);
      s = await startTestServer(backend);
      delete process.env.TESSERA_CCDA_MAX_BYTES;
      const { client } = await addParticipant(s.tessera.repo, { name: 'Springfield Family Practice', mrnSystem: 'urn:oid:2.16.840.1.113883.19.5.99999.2', scope: 'system/*.cruds' });
      token = await getToken(s.url, client?.clientId as string, client?.clientSecret as string);
    });
    after(async () => s?.close());

    it('a C32 / CCD 1.0 document: its problem, allergy, medication, result and immunization entries become resources', async () => {
      const res = await importDocument(c32);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const patient = (await s.fhir('GET', 'Patient?identifier=urn:oid:2.16.840.1.113883.19.5.99999.2|C32-77012')).body.entry[0].resource.id;
      const conditions = await ofPatient('Condition', patient);
      assert.deepEqual(conditions.map((c: any) => c.code.coding[0].code).sort(), ['38341003', '44054006'], 'both CCD 1.0 problem observations (template 2.16.840.1.113883.10.20.1.28)');
      assert.equal(conditions.find((c: any) => c.code.coding[0].code === '38341003').clinicalStatus.coding[0].code, 'active');
      const [allergy] = await ofPatient('AllergyIntolerance', patient);
      assert.equal(allergy.code.coding[0].code, '70618');
      assert.equal(allergy.reaction[0].manifestation[0].coding[0].code, '247472004');
      const medications = [...(await ofPatient('MedicationStatement', patient)), ...(await ofPatient('MedicationRequest', patient))];
      assert.equal(medications[0].medicationCodeableConcept.coding[0].code, '314076');
      const results = await ofPatient('Observation', patient);
      assert.ok(results.some((o: any) => o.code.coding[0].code === '4548-4' && o.valueQuantity.value === 7.1));
      const [immunization] = await ofPatient('Immunization', patient);
      assert.equal(immunization.vaccineCode.coding[0].code, '88');
    });

    it('a root-only patient id is a valid id (warned), confirmed by birth date and family name; without them the document is refused', async () => {
      // The C32 summary with its patient id made root-only and its entries left out (the root-only person is another patient).
      const rootOnly = (root: string, family: string, birth?: string) =>
        c32
          .replace('<id root="2.16.840.1.113883.19.5.99999.2" extension="C32-77012"/>', `<id root="${root}"/>`)
          .replace('<family>Whitaker</family>', `<family>${family}</family>`)
          .replace('<birthTime value="19470322"/>', birth ? `<birthTime value="${birth}"/>` : '<birthTime nullFlavor="UNK"/>')
          .replace('extension="C32-2009-0042"', `extension="${root}-${family}"`)
          .replace(/<structuredBody>[\s\S]*<\/structuredBody>/, '<structuredBody><component><section><code code="11450-4" codeSystem="2.16.840.1.113883.6.1"/><title>Problems</title><text>None known</text></section></component></structuredBody>');
      const first = await importDocument(rootOnly('2.100', 'Rootonly', '19750501'));
      assert.equal(first.status, 200, JSON.stringify(first.body));
      const issues = first.body.parameter.find((p: any) => p.name === 'outcome').resource.issue;
      assert.ok(issues.some((i: any) => /root alone \(2\.100/.test(i.diagnostics)), JSON.stringify(issues));
      const [patient] = (await s.fhir('GET', 'Patient?identifier=urn:oid:2.16.840.1.113883.19.5.99999.2|2.100')).body.entry.map((e: any) => e.resource);
      assert.equal(patient.name[0].family, 'Rootonly');
      // The same root for another person (a sender that puts its authority there): refused, never filed under the first.
      const other = await importDocument(rootOnly('2.100', 'Otherperson', '19800202'));
      assert.equal(other.status, 400);
      assert.match(other.body.issue[0].diagnostics, /already names a patient of another birth date or family name/);
      const records = (await s.fhir('GET', 'Patient?identifier=urn:oid:2.16.840.1.113883.19.5.99999.2|2.100')).body.entry;
      assert.equal(records.length, 1);
      assert.equal((await s.fhir('GET', `DocumentReference?patient=${patient.id}`)).body.entry.length, 1, 'the refused document is not in the first person\'s record');
      const unconfirmed = await importDocument(rootOnly('2.101', 'Nobirth'));
      assert.equal(unconfirmed.status, 400);
      assert.match(unconfirmed.body.issue[0].diagnostics, /root-only id \(2\.101\) and no birth date/);
    });

    it('a document just under TESSERA_CCDA_MAX_BYTES is stored whole (its Binary is over 1 MB); one byte over is refused', async () => {
      const pad = (size: number) => {
        const filler = `<!-- ${'embedded report text '.repeat(Math.ceil(size / 21))}`.slice(0, size - Buffer.byteLength(ccd) - 4);
        return ccd.replace('</ClinicalDocument>', `${filler} -->\n</ClinicalDocument>`).replace(/<id root="([^"]*)" extension="([^"]*)"\/>/, '<id root="$1" extension="$2-big"/>');
      };
      const near = pad(LIMIT - 64);
      assert.ok(Buffer.byteLength(near) <= LIMIT && Buffer.byteLength(near) > LIMIT - 200);
      const res = await importDocument(near);
      assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 500));
      const documentReference = res.body.parameter.find((p: any) => p.name === 'documentReference').valueReference.reference;
      const binaries = (await s.fhir('GET', 'Binary?_count=10')).body;
      const stored = await Promise.all((binaries.entry ?? []).map(async (e: any) => (await s.fhir('GET', `Binary/${e.resource.id}`)).body));
      assert.ok(stored.some((b: any) => b.data && Buffer.from(b.data, 'base64').toString('utf8') === near), `the original is stored byte for byte ${documentReference ?? ''}`);
      const over = await importDocument(`${near}${' '.repeat(LIMIT - Buffer.byteLength(near) + 1)}`);
      assert.equal(over.status, 413);
    });
  });
}
