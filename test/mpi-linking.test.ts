import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Patient } from '@medplum/fhirtypes';
import { BACKENDS, testConfig } from './helpers/backends.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/** Incremental linking through the REST API: every Patient written is matched in the same transaction. */

const MR = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] };

function person(source: string, mrn: string, given: string, family: string, birthDate: string, extra: Partial<Patient> = {}): Patient {
  return {
    resourceType: 'Patient',
    identifier: [{ type: MR, system: `urn:example:${source}:mrn`, value: mrn }],
    name: [{ family, given: [given] }],
    birthDate,
    gender: 'male',
    telecom: [{ system: 'phone', value: '(617) 555-0134' }],
    address: [{ line: ['12 Elm Street'], city: 'Cambridge', postalCode: '02139' }],
    ...extra,
  };
}

for (const backend of BACKENDS) {
  describe(`master patient index: incremental linking (${backend})`, () => {
    let s: TestServer;
    before(async () => {
      const store = testConfig(backend);
      store.config.mpi = true;
      s = await startTestServer(backend, store);
    });
    after(async () => s?.close());

    const create = async (p: Patient): Promise<string> => {
      const res = await s.fhir('POST', 'Patient', p);
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res.body.id;
    };
    /** The golden Patient whose links include this source record. */
    const goldenOf = async (sourceId: string): Promise<Patient> => {
      const res = await s.fhir('GET', `Patient?link=Patient/${sourceId}`);
      assert.equal(res.status, 200);
      assert.equal(res.body.entry?.length, 1, `exactly one golden record links Patient/${sourceId}`);
      return res.body.entry[0].resource;
    };
    const linked = (golden: Patient) => (golden.link ?? []).map((l) => l.other.reference).sort();

    it('links a nickname from another source into one enterprise identity with a golden record', async () => {
      const a = await create(person('hospital-a', '123', 'Robert', 'Smith', '1980-03-04'));
      const b = await create(person('clinic-b', '9-88', 'Bob', 'Smith', '1980-03-04'));
      const golden = await goldenOf(a);
      assert.deepEqual(linked(golden), [`Patient/${a}`, `Patient/${b}`].sort());
      assert.equal((await goldenOf(b)).id, golden.id);
      assert.ok(golden.meta?.tag?.some((t) => t.code === 'golden'));
      const ids = (golden.identifier ?? []).map((i) => `${i.system}|${i.value}`);
      assert.ok(ids.includes('urn:example:hospital-a:mrn|123') && ids.includes('urn:example:clinic-b:mrn|9-88'), 'identifiers of every source');
      assert.ok(ids.includes(`urn:tessera:enterprise-id|${golden.id}`));
    });

    it('links a record whose birth date has day and month swapped when the SSN agrees', async () => {
      const ssn = { system: 'http://hl7.org/fhir/sid/us-ssn', value: '999-41-2267' };
      const base = { gender: 'female' as const, telecom: [], address: [{ line: ['4 Harbour Road'], postalCode: '94110' }] };
      const a = await create(person('hospital-a', '501', 'Maria', 'Garcia', '1975-04-07', { ...base, identifier: [{ type: MR, system: 'urn:example:hospital-a:mrn', value: '501' }, ssn] }));
      const b = await create(person('clinic-b', '77', 'Maria', 'Garcia', '1975-07-04', { ...base, identifier: [{ type: MR, system: 'urn:example:clinic-b:mrn', value: '77' }, ssn] }));
      assert.equal((await goldenOf(a)).id, (await goldenOf(b)).id);
    });

    it('keeps twins apart: same surname, birth date, address and phone, different first names', async () => {
      const a = await create(person('hospital-a', '610', 'Jennifer', 'Okafor', '2001-09-12', { gender: 'female' }));
      const b = await create(person('hospital-a', '611', 'Jessica', 'Okafor', '2001-09-12', { gender: 'female' }));
      const ga = await goldenOf(a);
      const gb = await goldenOf(b);
      assert.notEqual(ga.id, gb.id);
      assert.deepEqual(linked(ga), [`Patient/${a}`]);
      assert.deepEqual(linked(gb), [`Patient/${b}`]);
    });

    it('keeps Jr and Sr apart at one address', async () => {
      const sr = await create(person('hospital-a', '700', 'James', 'Whitfield', '1950-06-01', { name: [{ family: 'Whitfield', given: ['James'], suffix: ['Sr'] }] }));
      const jr = await create(person('hospital-a', '701', 'James', 'Whitfield', '1950-06-01', { name: [{ family: 'Whitfield', given: ['James'], suffix: ['Jr'] }] }));
      assert.notEqual((await goldenOf(sr)).id, (await goldenOf(jr)).id);
    });

    it('keeps a linked record in its enterprise on update, and the golden record takes the newest values', async () => {
      const a = await create(person('hospital-a', '880', 'Thomas', 'Brennan', '1966-11-30'));
      const b = await create(person('clinic-b', 'T-4', 'Tom', 'Brennan', '1966-11-30'));
      const before = await goldenOf(a);
      const moved = { ...person('clinic-b', 'T-4', 'Tom', 'Brennan', '1966-11-30'), id: b, address: [{ line: ['3 New Road'], city: 'Boston', postalCode: '02118' }] };
      assert.equal((await s.fhir('PUT', `Patient/${b}`, moved)).status, 200);
      const after = await goldenOf(a);
      assert.equal(after.id, before.id);
      assert.deepEqual(linked(after), [`Patient/${a}`, `Patient/${b}`].sort());
      assert.equal(after.address?.[0].postalCode, '02118', 'survivorship: most recently updated source');
    });

    it('retires the golden record when its only source record is deleted', async () => {
      const a = await create(person('hospital-a', '990', 'Odile', 'Marchetti', '1940-01-15', { gender: 'female' }));
      const golden = await goldenOf(a);
      assert.equal((await s.fhir('DELETE', `Patient/${a}`)).status, 200);
      assert.equal((await s.fhir('GET', `Patient/${golden.id}`)).status, 410);
    });
  });
}
