import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { closureRecord } from '../src/engine/operations/merged-closure.js';
import { mergedView, mergedViewHolding, type MergedView } from '../src/engine/operations/merged-view.js';
import { personOf } from '../src/engine/operations/patient-record.js';
import { requestFor } from '../src/engine/fhir-request.js';
import { addParticipant } from '../src/participants/participants.js';
import { LOCAL_LAB_SYSTEM, LOINC } from '../src/record/code-maps.js';
import { bucketKeys } from '../src/record/merged-record.js';
import { BACKENDS } from './helpers/backends.js';
import { getToken, startTestServer, type TestServer } from './helpers/server.js';
import { goldenOf, sendThreeCopies, syntheaPatientBundles } from './helpers/synthea-copies.js';

/*
 * A merged search merges only the records that could share a fact with its matches (their closure over
 * the merge's bucket keys, engine/operations/merged-closure.ts); the facts it answers must be those the
 * merge of the person's whole type gives. Data: (1) one person sent by three participants through their
 * FHIR clients, content written here (LOINC codes; Eastside sends its HbA1c in its local code, which the
 * shipped code maps send to LOINC; one glucose result carries both the blood and the serum LOINC code);
 * (2) the first six shared Synthea patients, each sent by three participants with the perturbations of
 * test/helpers/synthea-copies.ts (shifted times, rounded values, local lab codes, ICD-10-CM problems).
 */

/* eslint-disable @typescript-eslint/no-explicit-any */

const SOURCE = 'https://tessera.dev/fhir/StructureDefinition/merged-source';
const CONFLICT = 'https://tessera.dev/fhir/StructureDefinition/merge-conflict';
const sourcesOf = (r: any): string[] => (r.extension ?? []).filter((e: any) => e.url === SOURCE).map((e: any) => e.valueReference.reference).sort();
const conflictsOf = (r: any): string[] => (r.extension ?? []).filter((e: any) => e.url === CONFLICT).map((e: any) => e.extension.find((x: any) => x.url === 'detail').valueString).sort();
const matches = (body: any): any[] => (body.entry ?? []).filter((e: any) => e.search?.mode === 'match').map((e: any) => e.resource);
const q = (s: string): string => encodeURIComponent(s);
const keyOf = (r: Resource): string => `${r.resourceType}/${r.id}`;

/** The fact of the view holding a source record: its id, sources and conflicts (what must not differ). */
function factHolding(view: MergedView, source: string): { id: string; sources: string[]; conflicts: string[] } | undefined {
  const i = view.facts.findIndex((f) => f.sources.some((s) => keyOf(s.resource) === source));
  if (i < 0) return undefined;
  const fact = view.facts[i];
  return { id: fact.id, sources: fact.sources.map((s) => keyOf(s.resource)).sort(), conflicts: fact.conflicts.map((c) => c.detail).sort() };
}

for (const backend of BACKENDS) {
  describe(`merged searches merge the closure of their matches (${backend})`, () => {
    let s: TestServer;
    let golden: string;
    const patients: Record<string, string> = {};
    const rec: Record<string, string> = {};
    const system = () => requestFor('GET', 'Observation', { baseUrl: s.base });
    const person = () => `patient=Patient/${golden}&_view=merged`;
    const read = async (ref: string): Promise<Resource> => (await s.fhir('GET', ref)).body;
    const get = async (path: string) => {
      const res = await s.fhir('GET', path);
      assert.equal(res.status, 200, `${path}: ${JSON.stringify(res.body)}`);
      return res.body;
    };
    /** The facts $merged-record (the whole view) shows, by id. */
    const wholeRecord = async () => new Map<string, any>((await get(`Patient/${golden}/$merged-record?_type=Observation&_count=1000`)).entry.map((e: any) => [e.resource.id, e.resource]));

    before(async () => {
      s = await startTestServer(backend);
      const tokens: Record<string, string> = {};
      for (const [key, name, oid] of [['north', 'Northgate Clinic', '2.16.840.1.113883.19.301'], ['east', 'Eastside Laboratory', '2.16.840.1.113883.19.302'], ['south', 'Southview Hospital', '2.16.840.1.113883.19.303']]) {
        const added = await addParticipant(s.tessera.repo, { name, mrnSystem: `urn:oid:${oid}`, scope: 'system/*.cruds' });
        tokens[key] = await getToken(s.url, added.client!.clientId, added.client!.clientSecret as string);
        const patient = await s.fhir('POST', 'Patient', { resourceType: 'Patient', identifier: [{ system: `urn:oid:${oid}`, value: `${key}-7` }], name: [{ family: 'Moreau', given: ['Amina'] }], gender: 'female', birthDate: '1966-05-14', telecom: [{ system: 'phone', value: '617-555-0142' }], address: [{ line: ['31 Hancock Street'], city: 'Quincy', postalCode: '02171' }] }, { authorization: `Bearer ${tokens[key]}` });
        assert.equal(patient.status, 201, JSON.stringify(patient.body));
        patients[key] = patient.body.id;
      }
      const post = async (site: string, name: string, codings: { system: string; code: string }[], time: string, value: number, unit: string) => {
        const r = { resourceType: 'Observation', status: 'final', subject: { reference: `Patient/${patients[site]}` }, code: { coding: codings }, effectiveDateTime: time, valueQuantity: { value, unit, system: 'http://unitsofmeasure.org', code: unit } };
        const res = await s.fhir('POST', 'Observation', r, { authorization: `Bearer ${tokens[site]}` });
        assert.equal(res.status, 201, JSON.stringify(res.body));
        rec[`${name}.${site}`] = `Observation/${res.body.id}`;
      };
      const a1c = { system: LOINC, code: '4548-4' };
      // One HbA1c of 1 October (08:30, 08:33, 08:41): Eastside sends its local code; Southview's value differs.
      await post('north', 'a1c', [a1c], '2026-10-01T08:30:00Z', 6.8, '%');
      await post('east', 'a1c', [{ system: LOCAL_LAB_SYSTEM, code: 'HBA1C' }], '2026-10-01T08:33:00Z', 6.8, '%');
      await post('south', 'a1c', [a1c], '2026-10-01T08:41:00Z', 7.4, '%');
      // An older HbA1c from two of them: in the closure (same concept), not a fact the searches below find.
      await post('north', 'a1c-june', [a1c], '2026-06-02T09:00:00Z', 7.1, '%');
      await post('east', 'a1c-june', [{ system: LOCAL_LAB_SYSTEM, code: 'HBA1C' }], '2026-06-02T09:05:00Z', 7.1, '%');
      // A glucose joined through a second key: Northgate codes it as blood glucose, Eastside as blood and
      // serum glucose, Southview as serum glucose only (and reads it higher).
      await post('north', 'glucose', [{ system: LOINC, code: '2339-0' }], '2026-09-01T07:00:00Z', 104, 'mg/dL');
      await post('east', 'glucose', [{ system: LOINC, code: '2339-0' }, { system: LOINC, code: '2345-7' }], '2026-09-01T07:04:00Z', 104, 'mg/dL');
      await post('south', 'glucose', [{ system: LOINC, code: '2345-7' }], '2026-09-01T07:09:00Z', 140, 'mg/dL');
      await post('north', 'sodium', [{ system: LOINC, code: '2947-0' }], '2026-09-01T07:00:00Z', 139, 'mmol/L');
      golden = (await s.fhir('GET', `Patient?link=Patient/${patients.north}`)).body.entry[0].resource.id;
      for (const key of ['east', 'south']) assert.equal((await s.fhir('GET', `Patient?link=Patient/${patients[key]}`)).body.entry?.[0]?.resource.id, golden, `${key} is linked`);
    });
    after(async () => s?.close());

    it('a fact whose copies carry different codings: the closure follows the code maps', async () => {
      // Only Southview's copy (08:41) matches; Eastside's, in its local code, is reached through the maps.
      const found = await get(`Observation?${person()}&code=${q(`${LOINC}|4548-4`)}&date=ge2026-10-01T08:40:00Z`);
      assert.equal(found.total, 1);
      const [fact] = matches(found);
      assert.deepEqual(sourcesOf(fact), [rec['a1c.north'], rec['a1c.east'], rec['a1c.south']].sort());
      assert.equal(conflictsOf(fact).length, 1, 'the value differs in Southview\'s copy');
      const whole = (await wholeRecord()).get(fact.id);
      assert.ok(whole, 'the whole record holds the same fact (same id)');
      assert.deepEqual(fact, whole, 'the same resource: content, sources, conflicts');
      // The closure: the five HbA1c records (both facts), in either coding, and nothing else.
      const closure = await closureRecord(s.tessera.repo, await personOf(s.tessera.repo, golden), system(), 'Observation', [await read(rec['a1c.south'])]);
      assert.deepEqual(closure?.entries.map((e) => `${e.type}/${e.id}`).sort(), ['a1c', 'a1c-june'].flatMap((n) => Object.keys(rec).filter((k) => k.startsWith(`${n}.`)).map((k) => rec[k])).sort());
    });

    it('a chain of records joined through a second key', async () => {
      // Only Northgate's copy (07:00) matches; Southview's shares no code with it, only with Eastside's.
      const found = await get(`Observation?${person()}&code=${q(`${LOINC}|2339-0`)}&date=le2026-09-01T07:02:00Z`);
      assert.equal(found.total, 1);
      const [fact] = matches(found);
      assert.deepEqual(sourcesOf(fact), [rec['glucose.north'], rec['glucose.east'], rec['glucose.south']].sort());
      assert.deepEqual(fact, (await wholeRecord()).get(fact.id));
      const glucose = [rec['glucose.north'], rec['glucose.east'], rec['glucose.south']].sort();
      const listed = async (seed: Resource) => (await closureRecord(s.tessera.repo, await personOf(s.tessera.repo, golden), system(), 'Observation', [seed]))?.entries.map((e) => `${e.type}/${e.id}`).sort();
      assert.deepEqual(await listed(await read(rec['glucose.north'])), glucose);
      // A seed as a search read it before it was rewritten (then a sodium): listed by id, its keys followed.
      const before = { ...(await read(rec['glucose.north'])), code: { coding: [{ system: LOINC, code: '2947-0' }] } } as Resource;
      assert.deepEqual(await listed(before), [...glucose, rec['sodium.north']].sort());
    });

    it('answers every search the same as the whole view, sorted or not', async () => {
      const whole = await wholeRecord();
      for (const search of ['', `&code=${q(`${LOINC}|2345-7`)}`, `&code=${q(`${LOINC}|4548-4`)}&_sort=-date`, '&date=lt2026-10-01', `&code=${q(`${LOINC}|2947-0`)}`]) {
        const found = matches(await get(`Observation?${person()}${search}`));
        assert.ok(found.length, search);
        for (const fact of found) assert.deepEqual(fact, whole.get(fact.id), `${search}: ${fact.id}`);
      }
    });
  });

  describe(`merged searches on six Synthea patients sent by three participants (${backend})`, () => {
    let s: TestServer;
    const originals: Bundle[] = syntheaPatientBundles().slice(0, 6);
    before(async () => {
      s = await startTestServer(backend);
      await sendThreeCopies(s, originals);
    });
    after(async () => s?.close());

    it('the facts holding any record, merged from its closure, are those of the whole type', async () => {
      const repo = s.tessera.repo;
      const req = requestFor('GET', 'Observation', { baseUrl: s.base });
      const decided = new Map<string, number>();
      const undecided = new Map<string, number>();
      let compared = 0;
      for (const n of originals.keys()) {
        const golden = await goldenOf(s, n);
        const person = await personOf(repo, golden);
        const copies: Resource[] = (await s.fhir('GET', `Patient/${golden}/$everything?_view=sources&_count=5000`)).body.entry.map((e: any) => e.resource);
        for (const type of ['Observation', 'Condition', 'Procedure', 'Immunization', 'MedicationRequest', 'DiagnosticReport', 'CarePlan', 'Encounter', 'AllergyIntolerance']) {
          const records = copies.filter((r) => r.resourceType === type);
          if (!records.length) continue;
          const whole = await mergedView(repo, golden, req, { types: [type] });
          // One seed per concept (the last copy sent of it), and one search's worth of seeds: all of one day.
          const byConcept = new Map(records.map((r) => [bucketKeys(r).concept.join(' ') || keyOf(r), r]));
          const day = (r: any): string => JSON.stringify(r).match(/"(\d{4}-\d\d-\d\d)T/)?.[1] ?? '';
          const busiest = records.filter((r) => day(r) === day(records[Math.floor(records.length / 2)]));
          for (const seeds of [...[...byConcept.values()].map((r) => [r]), busiest]) {
            const closure = await closureRecord(repo, person, req, type, seeds);
            (closure ? decided : undecided).set(type, ((closure ? decided : undecided).get(type) ?? 0) + 1);
            if (closure && seeds.length === 1 && byConcept.size > 1) assert.ok(closure.entries.length < records.length, `${type}: one record's closure is a part of the type`);
            const holding = await mergedViewHolding(repo, person, req, type, seeds);
            for (const seed of seeds) {
              assert.deepEqual(factHolding(holding, keyOf(seed)), factHolding(whole, keyOf(seed)), `${type} holding ${keyOf(seed)}`);
              compared++;
            }
          }
        }
      }
      const counts = (m: Map<string, number>) => [...m].map(([t, c]) => `${t} ${c}`).join(', ');
      console.log(`# ${backend}: ${compared} facts compared; closures decided: ${counts(decided)}; whole type: ${counts(undecided)}`);
      for (const type of ['Observation', 'Condition', 'Procedure', 'Immunization', 'MedicationRequest']) assert.ok(decided.get(type), `${type}: closures decided`);
      assert.ok(!decided.has('Encounter') && !decided.has('AllergyIntolerance'), 'encounters and allergies merge the whole type');
    });
  });
}
