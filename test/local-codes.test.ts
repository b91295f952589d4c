import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BACKENDS } from './helpers/backends.js';
import { tessera } from './helpers/cli.js';
import { MllpSender } from './helpers/mllp.js';
import { FIXTURES } from './helpers/paths.js';
import { getToken, startTestServer, type TestServer } from './helpers/server.js';
import { backfillStep } from '../src/codes/backfill.js';

/**
 * Local codes (issue 17 item 6). The messages are shaped like the public-health and hospital laboratory
 * feeds of the issue: HL7 v2.5.1 ORU^R01 whose OBX-3 carries the laboratory's own test code in its `L`
 * coding system (no LOINC alternate), a coded value in the lab's `99VLB` system, and a unit no UCUM table
 * knows; and an EHR's FHIR writes with its own allergy and medication codes (the vendor pattern of
 * `urn:oid:{its root}` systems seen in the issue's C-CDA samples). The LOINC, SNOMED CT, RxNorm and
 * UCUM targets are the real codes for those tests and substances.
 */
const LOINC = 'http://loinc.org';
const LOCAL_L = 'urn:tessera:hl7v2:coding-system:L';
const GLUCOSE = '2345-7';
const GLUCOSE_FASTING = '1558-6';

const labResult = (facility: string, control: string, order: string, value = '182') =>
  [
    `MSH|^~\\&|LIS|${facility}|HIE|TESSERA|20261201081500||ORU^R01^ORU_R01|${control}|P|2.5.1`,
    `PID|1||VL-1001^^^${facility}^MR||Okafor^Ada||19700304|F`,
    `OBR|1||${order}^${facility}|CHEM7^Basic chemistry^L|||20261201070000||||||||||||||||||F`,
    `OBX|1|NM|GLU^Glucose, serum^L||${value}|MGDL|70-99|H|||F|||20261201070000`,
    `OBX|2|CE|HCGS^hCG qualitative, serum^L||POS^Positive^99VLB||||||F|||20261201070000`,
  ].join('\r');

for (const backend of BACKENDS) {
  describe(`local codes: maps, unmapped worklist, backfill (${backend})`, () => {
    let s: TestServer;
    let sender: MllpSender;
    let valley: { id: string };
    let ehr: { participant: { id: string }; client: { clientId: string; clientSecret: string } };
    let tmp: string;
    const env = () => ({ DATABASE_URL: s.tessera.config.databaseUrl ?? '', TESSERA_PG_SCHEMA: s.tessera.config.schema ?? '' });
    const cli = (args: string[]) => tessera([...args, '--data', s.tessera.config.dataDir], env());
    const api = async (path: string, token = s.token) => {
      const res = await fetch(`${s.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
      return { status: res.status, body: (await res.json()) as any };
    };
    const glucoseResults = async () => (await s.fhir('GET', `Observation?code=${encodeURIComponent(`${LOCAL_L}|GLU`)}&_count=100`)).body.entry?.map((e: any) => e.resource) ?? [];
    const codesOf = (concept: any) => (concept.coding ?? []).map((c: any) => `${c.system}|${c.code}`).sort();

    before(async () => {
      tmp = mkdtempSync(join(tmpdir(), 'tessera-codes-'));
      s = await startTestServer(backend);
      s.tessera.config.mllpPort = 0;
      sender = new MllpSender((await s.tessera.startMllp()) as number);
      const added = await cli(['participants', 'add', '--name', 'Valley Reference Lab', '--mrn-system', 'urn:example:valley:mrn', '--hl7-facility', 'VALLEYLAB']);
      assert.equal(added.code, 0, added.stderr);
      valley = JSON.parse(added.stdout).participant;
      const other = await cli(['participants', 'add', '--name', 'Hillside Lab', '--mrn-system', 'urn:example:hillside:mrn', '--hl7-facility', 'HILLSIDE']);
      assert.equal(other.code, 0, other.stderr);
      const ehrAdded = await cli(['participants', 'add', '--name', 'Brookline Family Practice', '--mrn-system', 'urn:example:brookline:mrn', '--scope', 'system/*.cruds']);
      assert.equal(ehrAdded.code, 0, ehrAdded.stderr);
      ehr = JSON.parse(ehrAdded.stdout);
    });
    after(async () => {
      await sender?.close();
      await s?.close();
      rmSync(tmp, { recursive: true, force: true });
    });

    it('a local lab code with no mapping is kept as sent and goes on the worklist with counts, first and last seen', async () => {
      assert.equal((await sender.send(labResult('VALLEYLAB', 'VL-1', 'ORD-1'))).code, 'AA');
      assert.equal((await sender.send(labResult('VALLEYLAB', 'VL-2', 'ORD-2', '95'))).code, 'AA');
      const results = await glucoseResults();
      assert.equal(results.length, 2);
      assert.deepEqual(codesOf(results[0].code), [`${LOCAL_L}|GLU`], 'nothing added without a mapping');
      assert.equal((await s.fhir('GET', `Observation?code=${LOINC}|${GLUCOSE}`)).body.total ?? (await s.fhir('GET', `Observation?code=${LOINC}|${GLUCOSE}`)).body.entry?.length ?? 0, 0);

      const worklist = await api(`/participants/${valley.id}/unmapped-codes`);
      assert.equal(worklist.status, 200, JSON.stringify(worklist.body));
      const glu = worklist.body.unmapped.find((u: any) => u.code === 'GLU');
      assert.equal(glu.system, LOCAL_L);
      assert.equal(glu.occurrences, 2, 'counted once per result that arrived');
      assert.equal(glu.display, 'Glucose, serum');
      assert.equal(glu.element, 'Observation.code');
      assert.ok(glu.firstSeen <= glu.lastSeen && glu.sampleMessage);
      const codes = worklist.body.unmapped.map((u: any) => `${u.element} ${u.system}|${u.code}`);
      assert.ok(codes.includes('Observation.valueCodeableConcept urn:tessera:hl7v2:coding-system:99VLB|POS'), codes.join('\n'));
      assert.ok(codes.includes('Observation.valueQuantity.unit |MGDL'), 'a unit no UCUM table knows');
      // The panel code, on the order and the report the result created (the element first seen is named).
      assert.ok(codes.some((c: string) => /^(ServiceRequest|DiagnosticReport)\.code urn:tessera:hl7v2:coding-system:L\|CHEM7$/.test(c)), codes.join('\n'));
      assert.ok(!codes.some((c: string) => c.includes('v2-0078') || c.includes('loinc')), 'standard codes are not local');

      const listed = await cli(['codes', 'unmapped', '--participant', valley.id]);
      assert.equal(listed.code, 0, listed.stderr);
      assert.match(listed.stdout, /^2\turn:tessera:hl7v2:coding-system:L\|GLU\tGlucose, serum\tObservation\.code/m);

      const narrow = await s.tokenFor('system/Observation.rs');
      assert.equal((await api(`/participants/${valley.id}/unmapped-codes`, narrow)).status, 403, 'the worklist needs the reach of the message log');
      assert.equal((await api('/participants/no-such/unmapped-codes')).status, 404);
    });

    it('mapping a local code adds the standard coding to what already arrived (a new version, the local coding kept) and to what arrives next; search by LOINC finds both', async () => {
      const mapped = await cli(['codes', 'map', '--participant', valley.id, '--system', 'L', '--code', 'GLU', '--to', `LN|${GLUCOSE}`, '--display', 'Glucose [Mass/volume] in Serum or Plasma']);
      assert.equal(mapped.code, 0, mapped.stderr);
      assert.match(mapped.stdout, /L\|GLU -> http:\/\/loinc\.org\|2345-7/);
      for (const r of await glucoseResults()) {
        assert.deepEqual(codesOf(r.code), [`${LOINC}|${GLUCOSE}`, `${LOCAL_L}|GLU`]);
        assert.equal(r.meta.versionId, '2', 'backfilled as a new version');
        assert.match(r.meta.source, /^urn:tessera:message:/, 'still attributed to the message it came in');
        const added = r.code.coding.find((c: any) => c.system === LOINC);
        assert.equal(added.extension[0].valueReference.reference, `ConceptMap/local-codes-${valley.id}`);
      }
      assert.equal((await sender.send(labResult('VALLEYLAB', 'VL-3', 'ORD-3', '101'))).code, 'AA');
      const byLoinc = (await s.fhir('GET', `Observation?code=${LOINC}|${GLUCOSE}&_count=100`)).body.entry.map((e: any) => e.resource);
      assert.equal(byLoinc.length, 3, 'the two that arrived before the mapping and the one after');
      assert.ok(byLoinc.some((r: any) => r.meta.versionId === '1' && r.valueQuantity.value === 101), 'mapped as it arrived');
      const worklist = (await api(`/participants/${valley.id}/unmapped-codes`)).body.unmapped;
      assert.ok(!worklist.some((u: any) => u.code === 'GLU'), 'a mapped code leaves the worklist');

      // The same local code from another laboratory means what that laboratory means: not mapped.
      assert.equal((await sender.send(labResult('HILLSIDE', 'HL-1', 'HORD-1'))).code, 'AA');
      const hillside = (await glucoseResults()).filter((r: any) => !r.code.coding.some((c: any) => c.system === LOINC));
      assert.equal(hillside.length, 1);
      assert.deepEqual(codesOf(hillside[0].code), [`${LOCAL_L}|GLU`]);
    });

    it('a mapping changed to another target replaces the standard coding it added; the local coding stays', async () => {
      const remapped = await cli(['codes', 'map', '--participant', valley.id, '--system', 'L', '--code', 'GLU', '--to', `LN|${GLUCOSE_FASTING}`]);
      assert.equal(remapped.code, 0, remapped.stderr);
      const valleyResults = (await glucoseResults()).filter((r: any) => r.code.coding.length > 1);
      assert.equal(valleyResults.length, 3);
      for (const r of valleyResults) assert.deepEqual(codesOf(r.code), [`${LOINC}|${GLUCOSE_FASTING}`, `${LOCAL_L}|GLU`]);
      assert.equal((await s.fhir('GET', `Observation?code=${LOINC}|${GLUCOSE}`)).body.entry?.length ?? 0, 0, 'the old target is gone from the index too');
      const history = (await s.fhir('GET', `Observation/${valleyResults[0].id}/_history`)).body;
      assert.ok(history.entry.length >= 2, 'history keeps the earlier versions');
    });

    it('a CSV mapping table maps value codes and units, reaching the units already stored (no search parameter indexes them); a bad row names its line and changes nothing', async () => {
      const bad = join(tmp, 'bad.csv');
      writeFileSync(bad, 'source_system,source_code,target_system,target_code,target_display\n99VLB,POS,SCT,10828004,Positive\n99VLB,NEG,SCT\n');
      const refused = await cli(['codes', 'import', '--participant', valley.id, bad]);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /bad\.csv line 3: expected source_system,source_code,target_system,target_code/);
      const hcg = async () => (await s.fhir('GET', `Observation?code=${encodeURIComponent(`${LOCAL_L}|HCGS`)}&_count=100`)).body.entry.map((e: any) => e.resource);
      assert.ok((await hcg()).every((r: any) => r.valueCodeableConcept.coding.length === 1), 'nothing of the refused table applied');

      const table = join(tmp, 'valley-map.csv');
      writeFileSync(table, 'source_system,source_code,target_system,target_code,target_display\n99VLB,POS,SCT,10828004,"Positive (qualifier value)"\n,MGDL,UCUM,mg/dL,\nL,HCGS,LN,2106-3,"Choriogonadotropin (pregnancy test) [Presence] in Serum or Plasma"\n');
      const imported = await cli(['codes', 'import', '--participant', valley.id, table]);
      assert.equal(imported.code, 0, imported.stderr);
      assert.match(imported.stdout, /^3 mapping\(s\)/);
      const [valleyHcg, hillsideHcg] = [(await hcg()).filter((r: any) => r.code.coding.length > 1), (await hcg()).filter((r: any) => r.code.coding.length === 1)];
      assert.deepEqual([valleyHcg.length, hillsideHcg.length], [3, 1], "Valley's three results mapped, Hillside's left as sent");
      for (const r of valleyHcg) {
        assert.deepEqual(codesOf(r.valueCodeableConcept), ['http://snomed.info/sct|10828004', 'urn:tessera:hl7v2:coding-system:99VLB|POS'], 'the value code, found through value-concept');
        assert.deepEqual(codesOf(r.code), [`${LOINC}|2106-3`, `${LOCAL_L}|HCGS`]);
      }
      assert.deepEqual(codesOf(hillsideHcg[0].valueCodeableConcept), ['urn:tessera:hl7v2:coding-system:99VLB|POS']);
      // Units are indexed by no token parameter: the mapping still reaches the results already stored.
      assert.match(imported.stdout, /; \d+ stored resource\(s\) updated/);
      for (const r of (await glucoseResults()).filter((r: any) => r.code.coding.length > 1)) {
        assert.deepEqual([r.valueQuantity.unit, r.valueQuantity.system, r.valueQuantity.code], ['MGDL', 'http://unitsofmeasure.org', 'mg/dL']);
        assert.deepEqual([r.referenceRange[0].low.code, r.referenceRange[0].high.code], ['mg/dL', 'mg/dL'], 'the reference range in the same unit');
      }
      const again = await cli(['codes', 'backfill', '--participant', valley.id]);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, / 0 given standard codings/, 'the mapping change left nothing for the full scan');
      const listed = (await api(`/participants/${valley.id}/unmapped-codes`)).body.unmapped.map((u: any) => u.code);
      assert.deepEqual(listed.filter((c: string) => ['GLU', 'POS', 'MGDL', 'HCGS'].includes(c)), []);
      const glu = (await api(`/participants/${valley.id}/unmapped-codes?_count=1000`)).body;
      assert.ok(!glu.unmapped.some((u: any) => u.occurrences > 4), 'backfills are not counted as arrivals');
    });

    it("an EHR's own allergy and medication codes, mapped through a ConceptMap written over the FHIR API, get SNOMED CT and RxNorm codings", async () => {
      const token = await getToken(s.url, ehr.client.clientId, ehr.client.clientSecret);
      const auth = { authorization: `Bearer ${token}` };
      const localSystem = 'urn:oid:1.2.840.114350.1.13.99.2.7.2.767080';
      const bundle = {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          { fullUrl: 'urn:uuid:p', resource: { resourceType: 'Patient', identifier: [{ system: 'urn:example:brookline:mrn', value: 'B-7' }], name: [{ family: 'Lindqvist' }] }, request: { method: 'POST', url: 'Patient' } },
          { resource: { resourceType: 'AllergyIntolerance', clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical', code: 'active' }] }, patient: { reference: 'urn:uuid:p' }, code: { coding: [{ system: localSystem, code: 'ALG-PCN', display: 'Penicillins' }] }, reaction: [{ manifestation: [{ coding: [{ system: localSystem, code: 'RX-HIVES', display: 'Hives' }] }] }] }, request: { method: 'POST', url: 'AllergyIntolerance' } },
          { resource: { resourceType: 'MedicationStatement', status: 'active', subject: { reference: 'urn:uuid:p' }, medicationCodeableConcept: { coding: [{ system: localSystem, code: 'MED-4410', display: 'Lisinopril 10 mg tablet' }] } }, request: { method: 'POST', url: 'MedicationStatement' } },
        ],
      };
      const posted = await s.fhir('POST', '', bundle, auth);
      assert.equal(posted.status, 200, JSON.stringify(posted.body));
      const unmapped = (await api(`/participants/${ehr.participant.id}/unmapped-codes`)).body.unmapped.map((u: any) => `${u.element}|${u.code}`).sort();
      assert.deepEqual(unmapped, ['AllergyIntolerance.code|ALG-PCN', 'AllergyIntolerance.reaction.manifestation|RX-HIVES', 'MedicationStatement.medicationCodeableConcept|MED-4410']);

      const conceptMap = {
        resourceType: 'ConceptMap',
        id: 'brookline-ehr-codes',
        status: 'active',
        identifier: { system: 'urn:tessera:participant', value: ehr.participant.id },
        group: [
          { source: localSystem, target: 'http://snomed.info/sct', element: [{ code: 'ALG-PCN', target: [{ code: '764146007', display: 'Penicillin', equivalence: 'equivalent' }] }, { code: 'RX-HIVES', target: [{ code: '126485001', display: 'Urticaria', equivalence: 'equivalent' }] }] },
          { source: localSystem, target: 'http://www.nlm.nih.gov/research/umls/rxnorm', element: [{ code: 'MED-4410', target: [{ code: '314076', display: 'lisinopril 10 MG Oral Tablet', equivalence: 'equivalent' }] }, { code: 'MED-9999', target: [{ equivalence: 'unmatched' }] }] },
        ],
      };
      const put = await s.fhir('PUT', 'ConceptMap/brookline-ehr-codes', conceptMap);
      assert.ok(put.status === 201 || put.status === 200, JSON.stringify(put.body));
      await s.tessera.codeBackfill.drain(); // what `tessera serve` runs in the background after the write
      const allergy = (await s.fhir('GET', 'AllergyIntolerance?code=http://snomed.info/sct|764146007')).body.entry.map((e: any) => e.resource);
      assert.equal(allergy.length, 1, 'found by the standard code it arrived without');
      assert.deepEqual(codesOf(allergy[0].code), ['http://snomed.info/sct|764146007', `${localSystem}|ALG-PCN`]);
      assert.deepEqual(codesOf(allergy[0].reaction[0].manifestation[0]), ['http://snomed.info/sct|126485001', `${localSystem}|RX-HIVES`]);
      const meds = (await s.fhir('GET', 'MedicationStatement?code=http://www.nlm.nih.gov/research/umls/rxnorm|314076')).body.entry;
      assert.equal(meds.length, 1);
      assert.equal((await api(`/participants/${ehr.participant.id}/unmapped-codes`)).body.unmapped.length, 0);

      // Deleting the map takes away what it added; the EHR's codes stay.
      assert.equal((await s.fhir('DELETE', 'ConceptMap/brookline-ehr-codes')).status < 300, true);
      await s.tessera.codeBackfill.drain();
      const after = (await s.fhir('GET', `AllergyIntolerance/${allergy[0].id}`)).body;
      assert.deepEqual(codesOf(after.code), [`${localSystem}|ALG-PCN`]);
    });

    it("a C-CDA result coded in the sender's own code system gets the LOINC coding its map gives as the document is imported", async () => {
      // HL7's CCD example 1 (test/fixtures/ccda-hl7-examples) with its hemoglobin result coded the way
      // several vendor documents of the issue code lab tests: a code system OID of the sender's own.
      const localOid = '2.16.840.1.113883.19.5.99999.77';
      const loincHgb = '<code code="718-7" displayName="Hemoglobin" codeSystem="2.16.840.1.113883.6.1" codeSystemName="LOINC" />';
      const original = readFileSync(join(FIXTURES, 'ccda-hl7-examples', 'CCD_CCD_1_CCD.xml'), 'utf8');
      assert.ok(original.includes(loincHgb));
      const document = original.replace(loincHgb, `<code code="HGB-01" displayName="Hemoglobin" codeSystem="${localOid}" codeSystemName="Good Health Lab" />`);
      const added = await cli(['participants', 'add', '--name', 'Good Health Clinic', '--mrn-system', 'urn:oid:2.16.840.1.113883.19.5.99999.2']);
      assert.equal(added.code, 0, added.stderr);
      const clinic = JSON.parse(added.stdout).participant;
      const mapped = await cli(['codes', 'map', '--participant', clinic.id, '--system', `urn:oid:${localOid}`, '--code', 'HGB-01', '--to', 'http://loinc.org|718-7', '--display', 'Hemoglobin [Mass/volume] in Blood']);
      assert.equal(mapped.code, 0, mapped.stderr);
      const imported = await s.fhir('POST', `$import-ccda?participant=${clinic.id}`, document, { 'content-type': 'application/xml' });
      assert.equal(imported.status, 200, JSON.stringify(imported.body));
      const found = (await s.fhir('GET', `Observation?code=${encodeURIComponent(`urn:oid:${localOid}|HGB-01`)}`)).body.entry.map((e: any) => e.resource);
      assert.equal(found.length, 1);
      assert.deepEqual(codesOf(found[0].code), ['http://loinc.org|718-7', `urn:oid:${localOid}|HGB-01`]);
      assert.equal(found[0].meta.versionId, '1', 'mapped as it was written');
      const byLoinc = (await s.fhir('GET', `Observation?code=http://loinc.org|718-7&_count=100`)).body.entry.map((e: any) => e.resource.id);
      assert.ok(byLoinc.includes(found[0].id));
    });

    it("a unit the laboratory codes in its own system (OBX-6 `MEQL^mEq per L^99VLB`) is kept as sent, goes on the worklist, and maps to UCUM through the ConceptMap with the original kept", async () => {
      // Sender style: a hospital laboratory that codes units in its own table, as it codes tests (the
      // issue's Valley-like LIS); a second message carries UCUM as the CWE alternate (components 4-6).
      const sodium = (control: string, order: string, unit: string) =>
        [
          `MSH|^~\\&|LIS|VALLEYLAB|HIE|TESSERA|20261202081500||ORU^R01^ORU_R01|${control}|P|2.5.1`,
          'PID|1||VL-1001^^^VALLEYLAB^MR||Okafor^Ada||19700304|F',
          `OBR|1||${order}^VALLEYLAB|BMP^Basic metabolic panel^L|||20261202070000||||||||||||||||||F`,
          `OBX|1|NM|2951-2^Sodium [Moles/volume] in Serum or Plasma^LN||139|${unit}|136-145|N|||F|||20261202070000`,
        ].join('\r');
      assert.equal((await sender.send(sodium('VL-NA-1', 'ORD-NA-1', 'MEQL^mEq per L^99VLB'))).code, 'AA');
      const stored = async (order: string) => {
        const reports = (await s.fhir('GET', `DiagnosticReport?identifier=${encodeURIComponent(order)}`)).body;
        const all = (await s.fhir('GET', `Observation?code=${LOINC}|2951-2&_count=100`)).body.entry.map((e: any) => e.resource);
        return { all, reports };
      };
      let [first] = (await stored('ORD-NA-1')).all;
      assert.deepEqual([first.valueQuantity.unit, first.valueQuantity.system, first.valueQuantity.code], ['mEq per L', 'urn:tessera:hl7v2:coding-system:99VLB', 'MEQL'], "the sender's coded unit, as sent");
      const worklist = (await api(`/participants/${valley.id}/unmapped-codes`)).body.unmapped;
      const unit = worklist.find((u: any) => u.code === 'MEQL');
      assert.deepEqual([unit?.element, unit?.system, unit?.display], ['Observation.valueQuantity.unit', 'urn:tessera:hl7v2:coding-system:99VLB', 'mEq per L']);

      const mapped = await cli(['codes', 'map', '--participant', valley.id, '--system', '99VLB', '--code', 'MEQL', '--to', 'UCUM|meq/L']);
      assert.equal(mapped.code, 0, mapped.stderr);
      assert.match(mapped.stdout, /; 1 stored resource\(s\) updated/);
      first = (await s.fhir('GET', `Observation/${first.id}`)).body;
      assert.equal(first.meta.versionId, '2');
      assert.deepEqual([first.valueQuantity.unit, first.valueQuantity.system, first.valueQuantity.code], ['mEq per L', 'http://unitsofmeasure.org', 'meq/L']);
      const ext = Object.fromEntries(first.valueQuantity.extension.map((e: any) => [e.url.replace(/.*\//, ''), e.valueCoding ?? e.valueReference]));
      assert.deepEqual(ext['original-unit'], { system: 'urn:tessera:hl7v2:coding-system:99VLB', code: 'MEQL' }, 'the original kept');
      assert.equal(ext['mapped-by'].reference, `ConceptMap/local-codes-${valley.id}`);
      assert.equal(first.referenceRange[0].low.code, 'meq/L');
      assert.ok(!(await api(`/participants/${valley.id}/unmapped-codes`)).body.unmapped.some((u: any) => u.code === 'MEQL'));
      const byUcum = (await s.fhir('GET', `Observation?value-quantity=${encodeURIComponent('139|http://unitsofmeasure.org|meq/L')}`)).body;
      assert.deepEqual(byUcum.entry?.map((e: any) => e.resource.id), [first.id], 'found by its UCUM quantity');

      // A later message of the same lab, mapped as it arrives; one with a UCUM alternate needs no map.
      assert.equal((await sender.send(sodium('VL-NA-2', 'ORD-NA-2', 'MEQL^mEq per L^99VLB'))).code, 'AA');
      assert.equal((await sender.send(sodium('VL-NA-3', 'ORD-NA-3', 'MEQL^mEq per L^99VLB^meq/L^^UCUM'))).code, 'AA');
      const later = (await stored('')).all.filter((o: any) => o.id !== first.id);
      assert.equal(later.length, 2);
      for (const o of later) {
        assert.equal(o.meta.versionId, '1');
        assert.deepEqual([o.valueQuantity.system, o.valueQuantity.code], ['http://unitsofmeasure.org', 'meq/L']);
        assert.deepEqual(o.valueQuantity.extension.find((e: any) => e.url.endsWith('/original-unit')).valueCoding, { system: 'urn:tessera:hl7v2:coding-system:99VLB', code: 'MEQL' });
      }
      assert.equal(later.filter((o: any) => o.valueQuantity.extension.some((e: any) => e.url.endsWith('/mapped-by'))).length, 1, 'only the one without UCUM was mapped by the exchange');
    });

    it('tessera import (the bulk path, worker threads) applies the code map of the sender a resource came from, as every write path does', async () => {
      // A restore of the lab's results as an NDJSON export carries them: each names, in meta.source, the
      // message of the laboratory it came in (here the sample message of Valley's first result).
      const [sent] = (await glucoseResults()).filter((r: any) => r.code.coding.length > 1);
      const file = join(tmp, 'valley-results.ndjson');
      const lines = [201, 202, 203].map((value) =>
        JSON.stringify({ resourceType: 'Observation', status: 'final', meta: { source: sent.meta.source }, code: { coding: [{ system: LOCAL_L, code: 'GLU', display: 'Glucose, serum' }] }, subject: sent.subject, effectiveDateTime: '2026-11-20T07:00:00Z', valueQuantity: { value, unit: 'mg/dL', system: 'http://unitsofmeasure.org', code: 'mg/dL' } }),
      );
      writeFileSync(file, `${lines.join('\n')}\n`);
      const imported = await cli(['import', '--workers', '1', file]);
      assert.equal(imported.code, 0, imported.stdout + imported.stderr);
      assert.match(imported.stdout, /Imported 3 resources/);
      const restored = (await glucoseResults()).filter((r: any) => [201, 202, 203].includes(r.valueQuantity.value));
      assert.equal(restored.length, 3);
      for (const r of restored) {
        assert.deepEqual(codesOf(r.code), [`${LOINC}|${GLUCOSE_FASTING}`, `${LOCAL_L}|GLU`], 'mapped on the way in');
        assert.equal(r.meta.versionId, '1');
      }
    });

    it('mapping a code later reaches every stored resource carrying it, after the ConceptMap write, in bounded batches that resume where they stopped', async () => {
      // Newborn-screening style: 1 200 phenylalanine results under the laboratory's own code `PHE`,
      // restored in bulk (meta.source: a message of Valley's), then the steward maps PHE to LOINC 29573-3.
      const [sent] = (await glucoseResults()).filter((r: any) => r.code.coding.length > 1);
      const file = join(tmp, 'valley-phe.ndjson');
      const count = 1200;
      const lines = Array.from({ length: count }, (_, i) =>
        JSON.stringify({ resourceType: 'Observation', status: 'final', meta: { source: sent.meta.source }, code: { coding: [{ system: LOCAL_L, code: 'PHE', display: 'Phenylalanine' }] }, subject: sent.subject, effectiveDateTime: '2026-11-21T07:00:00Z', valueQuantity: { value: 40 + (i % 80), unit: 'umol/L', system: 'http://unitsofmeasure.org', code: 'umol/L' } }),
      );
      writeFileSync(file, `${lines.join('\n')}\n`);
      const imported = await cli(['import', '--workers', '1', file]);
      assert.equal(imported.code, 0, imported.stdout + imported.stderr);
      const byLoinc = async () => (await s.fhir('GET', `Observation?code=${LOINC}|29573-3&_summary=count`)).body.total;

      const map = (await s.fhir('GET', `ConceptMap/local-codes-${valley.id}`)).body;
      const group = map.group.find((g: any) => g.source === LOCAL_L && g.target === LOINC);
      group.element.push({ code: 'PHE', target: [{ code: '29573-3', display: 'Phenylalanine [Moles/volume] in DBS', equivalence: 'equivalent' }] });
      const put = await s.fhir('PUT', `ConceptMap/${map.id}`, map);
      assert.equal(put.status, 200, JSON.stringify(put.body));
      assert.equal(await byLoinc(), 0, 'the ConceptMap write rewrote nothing itself');
      const queued = await s.tessera.db.query<{ code: string; after_rk: number }>('SELECT code, after_rk FROM code_backfill');
      assert.deepEqual(queued.map((q) => [q.code, Number(q.after_rk)]), [['PHE', -1]], 'the code queued with the write');

      const step = await backfillStep(s.tessera.repo);
      assert.ok(step.updated > 0 && step.updated <= 500, `one batch rewrites at most 500 (${step.updated})`);
      assert.equal(await byLoinc(), step.updated, 'committed batch by batch');
      const [cursor] = await s.tessera.db.query<{ after_rk: number }>('SELECT after_rk FROM code_backfill');
      assert.ok(Number(cursor.after_rk) > -1, 'the cursor moved: a stop resumes after it');

      const rest = await s.tessera.codeBackfill.drain();
      assert.equal(step.updated + rest, count);
      assert.equal(await byLoinc(), count);
      assert.deepEqual(await s.tessera.db.query('SELECT code FROM code_backfill'), [], 'the queue is empty');
      const one = (await s.fhir('GET', `Observation?code=${LOINC}|29573-3&_count=1`)).body.entry[0].resource;
      assert.deepEqual(codesOf(one.code), [`${LOINC}|29573-3`, `${LOCAL_L}|PHE`]);
      assert.equal(one.meta.versionId, '2');
    });
  });
}
