import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { addParticipant } from '../src/participants/participants.js';
import { BACKENDS } from './helpers/backends.js';
import { MllpSender } from './helpers/mllp.js';
import { ccdaDocument, oruMessage, type Demographics } from './helpers/record-sources.js';
import { getToken, startTestServer, type TestServer } from './helpers/server.js';

/*
 * The longitudinal record end to end: one person sent by three participants as an HL7 v2 ORU, two C-CDA
 * documents and FHIR resources (content written here, shapes from the public samples: see
 * helpers/record-sources.ts); the merged view, its sources, conflicts, the policy, identity changes.
 */

const AMARA: Demographics = { given: 'Amara', family: 'Osei', birth: '19680314', gender: 'F', street: '41 Harbor Lane', city: 'Salem', zip: '01970', phone: '978-555-0142' };
const SOURCE = 'https://tessera.dev/fhir/StructureDefinition/merged-source';
const CONFLICT = 'https://tessera.dev/fhir/StructureDefinition/merge-conflict';

const sourcesOf = (r: any): string[] => (r.extension ?? []).filter((e: any) => e.url === SOURCE).map((e: any) => e.valueReference.display).sort();
const conflictsOf = (r: any): string[] => (r.extension ?? []).filter((e: any) => e.url === CONFLICT).map((e: any) => e.extension.find((x: any) => x.url === 'kind').valueCode);
const hasCode = (r: any, code: string): boolean => ['code', 'medicationCodeableConcept', 'vaccineCode'].some((k) => r[k]?.coding?.some((c: any) => c.code === code));

for (const backend of BACKENDS) {
  describe(`the longitudinal record: merged facts with their sources (${backend})`, () => {
    let s: TestServer;
    let riversideToken: string;
    const ids: Record<string, string> = {};
    const participants: Record<string, string> = {};
    let sender: MllpSender;

    const goldenOf = async (sourceId: string): Promise<string> => {
      const res = await s.fhir('GET', `Patient?link=Patient/${sourceId}`);
      assert.equal(res.body.entry?.length, 1, JSON.stringify(res.body));
      return res.body.entry[0].resource.id;
    };
    const sourcePatient = async (system: string, value: string): Promise<string> => {
      const res = await s.fhir('GET', `Patient?identifier=${encodeURIComponent(system)}|${value}`);
      assert.equal(res.body.entry?.length, 1, `${system}|${value}`);
      return res.body.entry[0].resource.id;
    };
    const merged = async (patientId: string, query = '', token?: string): Promise<any[]> => {
      const res = await s.fhir('GET', `Patient/${patientId}/$merged-record${query}`, undefined, token ? { authorization: `Bearer ${token}` } : {});
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return (res.body as Bundle).entry!.map((e) => e.resource as any);
    };
    const facts = (entries: any[], type: string, code: string) => entries.filter((r) => r.resourceType === type && hasCode(r, code));

    before(async () => {
      s = await startTestServer(backend);
      s.tessera.config.mllpPort = 0;
      const port = (await s.tessera.startMllp()) as number;
      sender = new MllpSender(port);
      const riverside = await addParticipant(s.tessera.repo, { name: 'Riverside Clinic', mrnSystem: 'urn:oid:2.16.840.1.113883.19.101', hl7Facility: 'RIVERSIDE', scope: 'system/*.cruds' });
      riversideToken = await getToken(s.url, riverside.client!.clientId, riverside.client!.clientSecret as string);
      participants.riverside = riverside.participant.id;
      for (const [key, name, oid] of [['hillcrest', 'Hillcrest Hospital', '2.16.840.1.113883.19.102'], ['lakeside', 'Lakeside Medical', '2.16.840.1.113883.19.103']]) {
        participants[key] = (await addParticipant(s.tessera.repo, { name, mrnSystem: `urn:oid:${oid}` })).participant.id;
      }
      // Riverside's lab sends HbA1c and glucose by HL7 v2 (times with an offset-free HL7 TS, stored as UTC).
      const ack = await sender.send(
        oruMessage('RIVERSIDE', 'ORU-1', 'R-100', AMARA, 'ORD-77', [
          { loinc: '4548-4', display: 'Hemoglobin A1c', time: '20261001083000', value: '6.8', unit: '%' },
          { loinc: '2339-0', display: 'Glucose', time: '20261001083000', value: '110', unit: 'mg/dL' },
        ]),
      );
      assert.equal(ack.code, 'AA', ack.errors.join('; '));
      ids.riverside = await sourcePatient('urn:oid:2.16.840.1.113883.19.101', 'R-100');
      // Riverside's EHR sends its problem list, an allergy and a vaccination as FHIR (the problem in ICD-10-CM).
      const fhir = async (r: Resource) => {
        const res = await s.fhir('POST', r.resourceType, r, { authorization: `Bearer ${riversideToken}` });
        assert.equal(res.status, 201, JSON.stringify(res.body));
      };
      const subject = { reference: `Patient/${ids.riverside}` };
      await fhir({ resourceType: 'Condition', subject, code: { coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'I10', display: 'Essential hypertension' }] }, onsetDateTime: '2019-05-01', clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] } } as Resource);
      await fhir({ resourceType: 'AllergyIntolerance', patient: subject, code: { coding: [{ system: 'http://snomed.info/sct', code: '764146007', display: 'Penicillin' }, { system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '7980', display: 'Penicillin G' }] }, clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical', code: 'active' }] } } as Resource);
      await fhir({ resourceType: 'Immunization', status: 'completed', patient: subject, vaccineCode: { coding: [{ system: 'http://hl7.org/fhir/sid/cvx', code: '140', display: 'Influenza, seasonal' }] }, occurrenceDateTime: '2026-09-15T10:00:00Z' } as Resource);
      await fhir({ resourceType: 'Observation', status: 'final', subject, code: { coding: [{ system: 'http://loinc.org', code: '29463-7', display: 'Body weight' }] }, effectiveDateTime: '2026-10-01T08:00:00Z', valueQuantity: { value: 70, unit: 'kg', system: 'http://unitsofmeasure.org', code: 'kg' } } as Resource);
      // Hillcrest and Lakeside send C-CDA documents.
      const ccda = async (participant: string, body: string) => {
        const res = await s.fhir('POST', `$import-ccda?participant=${participant}`, body, { 'content-type': 'application/xml' });
        assert.equal(res.status, 200, JSON.stringify(res.body));
      };
      const hypertension = { sct: '38341003', display: 'Hypertension', onset: '20190501' };
      const hba1c = { loinc: '4548-4', display: 'Hemoglobin A1c', time: '20261001083000+0000', value: '6.8', unit: '%' };
      await ccda(
        participants.hillcrest,
        ccdaDocument('2.16.840.1.113883.19.102', 'H-200', AMARA, 'doc-h1', {
          results: [hba1c, { loinc: '2339-0', display: 'Glucose', time: '20261001084000+0000', value: '140', unit: 'mg/dL' }, { loinc: '29463-7', display: 'Body weight', time: '20261001080500+0000', value: '154.3', unit: '[lb_av]' }],
          problems: [hypertension, { sct: '195967001', display: 'Asthma', onset: '20100301' }],
          allergies: [{ rxnorm: '7980', display: 'Penicillin G', active: true }],
          medications: [{ rxnorm: '314076', display: 'lisinopril 10 MG Oral Tablet', start: '20190510', active: true }],
        }),
      );
      await ccda(
        participants.lakeside,
        ccdaDocument('2.16.840.1.113883.19.103', 'L-300', AMARA, 'doc-l1', {
          results: [{ ...hba1c, value: '6.80', time: '20261001084500+0000' }],
          problems: [hypertension, { sct: '195967001', display: 'Asthma', onset: '20100301', resolved: '20180601' }],
          noKnownAllergies: true,
          medications: [{ rxnorm: '314076', display: 'lisinopril 10 MG Oral Tablet', start: '20190510', active: false }],
        }),
      );
      ids.hillcrest = await sourcePatient('urn:oid:2.16.840.1.113883.19.102', 'H-200');
      ids.lakeside = await sourcePatient('urn:oid:2.16.840.1.113883.19.103', 'L-300');
      ids.golden = await goldenOf(ids.riverside);
      assert.equal(await goldenOf(ids.hillcrest), ids.golden, 'the MPI linked the three records');
      assert.equal(await goldenOf(ids.lakeside), ids.golden, 'the MPI linked the three records');
    });
    after(async () => {
      await sender?.close();
      await s?.close();
    });

    it('each fact once with every source: HbA1c by ORU and two C-CDAs, hypertension by FHIR (ICD-10-CM) and two C-CDAs', async () => {
      const record = await merged(ids.golden);
      const [a1c] = facts(record, 'Observation', '4548-4');
      assert.equal(facts(record, 'Observation', '4548-4').length, 1, 'one HbA1c');
      assert.deepEqual(sourcesOf(a1c), ['Hillcrest Hospital', 'Lakeside Medical', 'Riverside Clinic']);
      assert.deepEqual(conflictsOf(a1c), [], '6.8 and 6.80 agree');
      assert.equal(a1c.subject.reference, `Patient/${ids.golden}`);
      assert.ok(a1c.meta.tag.some((t: any) => t.code === 'merged'));
      const htn = facts(record, 'Condition', '38341003');
      assert.equal(htn.length, 1);
      assert.deepEqual(sourcesOf(htn[0]), ['Hillcrest Hospital', 'Lakeside Medical', 'Riverside Clinic']);
      assert.ok(hasCode(htn[0], 'I10'), 'the codes of every source');
      // Weight in kg (FHIR) and in pounds (C-CDA), 5 minutes apart: one fact, no conflict.
      const weight = facts(record, 'Observation', '29463-7');
      assert.equal(weight.length, 1);
      assert.deepEqual(conflictsOf(weight[0]), []);
      // A Provenance per fact names each source record and participant.
      const provenance = record.find((r) => r.resourceType === 'Provenance' && r.target[0].reference === `Observation/${a1c.id}`);
      assert.equal(provenance.entity.length, 3);
      assert.deepEqual(provenance.agent.map((a: any) => a.who.display).sort(), ['Hillcrest Hospital', 'Lakeside Medical', 'Riverside Clinic']);
      for (const e of provenance.entity) assert.equal((await s.fhir('GET', e.what.reference)).status, 200, 'each source record is there');
      // The source copies stay available: three HbA1c Observations.
      const copies = await s.fhir('GET', `Patient/${ids.golden}/$everything?_view=sources&_type=Observation`);
      assert.equal(copies.body.entry.filter((e: any) => hasCode(e.resource, '4548-4')).length, 3);
      // The merged view is the default on the enterprise record.
      const byDefault = await s.fhir('GET', `Patient/${ids.golden}/$everything?_type=Observation`);
      assert.equal(byDefault.body.entry.filter((e: any) => hasCode(e.resource, '4548-4')).length, 1);
    });

    it('a read of the merged view is found in the audit log by each source record it stood for', async () => {
      const reader = await s.tokenFor('system/*.rs');
      const record = await merged(ids.golden, '', reader);
      const [a1c] = facts(record, 'Observation', '4548-4');
      const sources = a1c.extension.filter((e: any) => e.url.endsWith('merged-source')).map((e: any) => e.valueReference.reference);
      assert.equal(sources.length, 3);
      await s.tessera.audit?.flush();
      for (const source of sources) {
        const found = await s.fhir('GET', `AuditEvent?entity=${source}&_count=200`);
        assert.ok(found.body.entry.some((e: any) => e.resource.subtype?.some((c: any) => String(c.code).includes('merged-record'))), `the $merged-record read names ${source}`);
      }
    });

    it('marks each kind of conflict: values, allergy vs no known allergies, medication stopped vs active, problem resolved vs active', async () => {
      const record = await merged(ids.golden);
      const [glucose] = facts(record, 'Observation', '2339-0');
      assert.deepEqual(conflictsOf(glucose), ['value']);
      assert.equal(sourcesOf(glucose).length, 2);
      const [penicillin] = facts(record, 'AllergyIntolerance', '7980');
      assert.deepEqual(sourcesOf(penicillin), ['Hillcrest Hospital', 'Riverside Clinic']);
      assert.deepEqual(conflictsOf(penicillin), ['allergy-vs-no-known-allergies']);
      const [none] = facts(record, 'AllergyIntolerance', '419199007');
      assert.deepEqual(conflictsOf(none), ['allergy-vs-no-known-allergies']);
      const [lisinopril] = facts(record, 'MedicationStatement', '314076');
      assert.deepEqual(conflictsOf(lisinopril), ['medication-status']);
      const [asthma] = facts(record, 'Condition', '195967001');
      assert.deepEqual(conflictsOf(asthma), ['problem-status']);
    });

    it('obeys the policy: a caller sees only facts built from source records it may read', async () => {
      const token = await s.tokenFor('system/Patient.rs system/Condition.rs');
      const record = await merged(ids.golden, '', token);
      assert.deepEqual([...new Set(record.map((r) => r.resourceType))].sort(), ['Condition', 'Patient', 'Provenance']);
      const summary = await s.fhir('GET', `Patient/${ids.golden}/$summary`, undefined, { authorization: `Bearer ${token}` });
      const types = new Set(summary.body.entry.map((e: any) => e.resource.resourceType));
      assert.ok(!types.has('Observation') && !types.has('AllergyIntolerance'));
      // A token for another type only: 403.
      const other = await s.tokenFor('system/Observation.rs');
      assert.equal((await s.fhir('GET', `Patient/${ids.golden}/$merged-record`, undefined, { authorization: `Bearer ${other}` })).status, 403);
    });

    it('the timeline: results and encounters across organisations in time order, paged', async () => {
      const first = await s.fhir('GET', `Patient/${ids.golden}/$timeline?_count=2`);
      assert.equal(first.status, 200);
      assert.equal(first.body.entry.length, 2);
      const all = await s.fhir('GET', `Patient/${ids.golden}/$timeline?_count=100`);
      const when = (r: any) => Date.parse(r.effectiveDateTime ?? r.occurrenceDateTime ?? r.period?.start ?? r.issued ?? r.date);
      const times = all.body.entry.map((e: any) => when(e.resource));
      assert.deepEqual(times, [...times].sort((a: number, b: number) => a - b));
      assert.equal(all.body.entry.filter((e: any) => e.resource.resourceType === 'Observation' && hasCode(e.resource, '4548-4')).length, 1);
      const next = first.body.link.find((l: any) => l.relation === 'next').url;
      const second = await s.fhir('GET', next.slice(next.indexOf('/fhir/') + 5));
      assert.deepEqual(second.body.entry.map((e: any) => e.resource.id), all.body.entry.slice(2, 4).map((e: any) => e.resource.id));
      const recent = await s.fhir('GET', `Patient/${ids.golden}/$timeline?_sort=-date&_count=1`);
      assert.equal(recent.body.entry[0].resource.id, all.body.entry.at(-1).resource.id);
      assert.equal((await s.fhir('GET', `Patient/${ids.golden}/$timeline?_type=Condition`)).status, 400);
    });

    it('searches over the merged view: Observation?patient=<enterprise>&_view=merged by code and date, Condition by a mapped code', async () => {
      const search = async (query: string, token?: string) => s.fhir('GET', query, undefined, token ? { authorization: `Bearer ${token}` } : {});
      const a1c = await search(`Observation?patient=Patient/${ids.golden}&_view=merged&code=${encodeURIComponent('http://loinc.org|4548-4')}&date=ge2026-10-01`);
      assert.equal(a1c.status, 200, JSON.stringify(a1c.body));
      assert.equal(a1c.body.total, 1, 'the three copies are one fact');
      const [fact] = a1c.body.entry.map((e: any) => e.resource);
      assert.deepEqual(sourcesOf(fact), ['Hillcrest Hospital', 'Lakeside Medical', 'Riverside Clinic']);
      assert.equal(fact.subject.reference, `Patient/${ids.golden}`);
      // The same search over the source copies: three.
      const copies = await search(`Observation?patient=${[ids.riverside, ids.hillcrest, ids.lakeside].map((id) => `Patient/${id}`).join(',')}&code=${encodeURIComponent('http://loinc.org|4548-4')}&_view=sources`);
      assert.equal(copies.body.entry.filter((e: any) => e.search.mode === 'match').length, 3);
      // Outside the date range: nothing.
      assert.equal((await search(`Observation?patient=${ids.golden}&_view=merged&code=${encodeURIComponent('http://loinc.org|4548-4')}&date=lt2026-01-01`)).body.total, 0);
      // Hypertension asked by SNOMED CT: Riverside sent it in ICD-10-CM (I10), which the code map joins.
      const htn = await search(`Condition?subject=Patient/${ids.golden}&_view=merged&code=${encodeURIComponent('http://snomed.info/sct|38341003')}`);
      assert.equal(htn.body.total, 1);
      assert.deepEqual(sourcesOf(htn.body.entry[0].resource), ['Hillcrest Hospital', 'Lakeside Medical', 'Riverside Clinic']);
      // Paging over the facts.
      const all = await search(`Observation?patient=${ids.golden}&_view=merged`);
      const page = await search(`Observation?patient=${ids.golden}&_view=merged&_count=1&_offset=1`);
      assert.equal(page.body.entry.length, 1);
      assert.equal(page.body.entry[0].resource.id, all.body.entry[1].resource.id);
      assert.ok(page.body.link.some((l: any) => l.relation === 'previous'));
      // The policy decides what is found: a token without Observation may not search them.
      const conditions = await s.tokenFor('system/Patient.rs system/Condition.rs');
      assert.equal((await search(`Observation?patient=${ids.golden}&_view=merged`, conditions)).status, 403);
      // A granular scope (active problems only): asthma is built from Hillcrest's active copy alone, and
      // Lakeside's resolved copy, which this caller may not read, neither joins it nor marks a conflict.
      const active = await s.tokenFor('system/Patient.rs system/Condition.rs?clinical-status=active');
      const asthma = await search(`Condition?patient=${ids.golden}&_view=merged&code=${encodeURIComponent('http://snomed.info/sct|195967001')}`, active);
      assert.equal(asthma.status, 200, JSON.stringify(asthma.body));
      assert.equal(asthma.body.total, 1);
      assert.deepEqual(sourcesOf(asthma.body.entry[0].resource), ['Hillcrest Hospital']);
      assert.deepEqual(conflictsOf(asthma.body.entry[0].resource), []);
      const everyone = await search(`Condition?patient=${ids.golden}&_view=merged&code=${encodeURIComponent('http://snomed.info/sct|195967001')}`);
      assert.deepEqual(conflictsOf(everyone.body.entry[0].resource), ['problem-status'], 'with both copies readable: the conflict');
      // Bad input: a clear 400.
      assert.equal((await search('Observation?_view=merged&code=4548-4')).status, 400, 'no person');
      assert.equal((await search(`Observation?patient=${ids.golden}&patient=${ids.riverside}&_view=merged`)).status, 400, 'two persons');
      assert.equal((await search(`Observation?patient=${ids.golden}&_view=everything`)).status, 400);
    });

    it('the memo of the merge follows writes: a new reading, a corrected one and a deletion show on the next read', async () => {
      const auth = { authorization: `Bearer ${riversideToken}` };
      const subject = { reference: `Patient/${ids.riverside}` };
      const before = facts(await merged(ids.golden), 'Observation', '8867-4');
      assert.equal(before.length, 0);
      const created = await s.fhir('POST', 'Observation', { resourceType: 'Observation', status: 'final', subject, code: { coding: [{ system: 'http://loinc.org', code: '8867-4', display: 'Heart rate' }] }, effectiveDateTime: '2026-10-02T08:00:00Z', valueQuantity: { value: 72, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' } }, auth);
      assert.equal(created.status, 201);
      const [added] = facts(await merged(ids.golden), 'Observation', '8867-4');
      assert.equal(added.valueQuantity.value, 72);
      const corrected = await s.fhir('PUT', `Observation/${created.body.id}`, { ...created.body, valueQuantity: { ...created.body.valueQuantity, value: 74 } }, auth);
      assert.equal(corrected.status, 200, JSON.stringify(corrected.body));
      assert.equal(facts(await merged(ids.golden), 'Observation', '8867-4')[0].valueQuantity.value, 74);
      assert.equal((await s.fhir('DELETE', `Observation/${created.body.id}`, undefined, auth)).status < 300, true);
      assert.equal(facts(await merged(ids.golden), 'Observation', '8867-4').length, 0);
    });

    it('unlinking the identity re-derives two records', async () => {
      const res = await s.fhir('POST', 'Patient/$mpi-unlink', { resourceType: 'Parameters', parameter: [{ name: 'patient', valueReference: { reference: `Patient/${ids.lakeside}` } }, { name: 'reason', valueString: 'another Amara Osei' }] });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const apart = await goldenOf(ids.lakeside);
      assert.notEqual(apart, ids.golden);
      const rest = await merged(ids.golden);
      const [a1c] = facts(rest, 'Observation', '4548-4');
      assert.deepEqual(sourcesOf(a1c), ['Hillcrest Hospital', 'Riverside Clinic']);
      assert.deepEqual(conflictsOf(facts(rest, 'AllergyIntolerance', '7980')[0]), [], 'the no-known-allergies record left with Lakeside');
      assert.deepEqual(conflictsOf(facts(rest, 'MedicationStatement', '314076')[0]), []);
      const lakeside = await merged(apart);
      assert.deepEqual(sourcesOf(facts(lakeside, 'Observation', '4548-4')[0]), ['Lakeside Medical']);
      assert.equal(facts(lakeside, 'Condition', '38341003').length, 1);
    });
  });
}
