import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Patient } from '@medplum/fhirtypes';
import { BACKENDS } from './helpers/backends.js';
import { MR, person } from './helpers/people.js';
import { startMpiTestServer, type TestServer } from './helpers/server.js';

/** Incremental linking through the REST API: every Patient written is matched in the same transaction. */

for (const backend of BACKENDS) {
  describe(`master patient index: incremental linking (${backend})`, () => {
    let s: TestServer;
    before(async () => {
      s = await startMpiTestServer(backend);
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

    it('keeps golden records out of plain searches, counts and conditional creates, and shows them when asked', async () => {
      const a = await create(person('hospital-a', '880', 'Theodora', 'Quill', '1966-01-30'));
      const b = await create(person('clinic-b', '881', 'Teddy', 'Quill', '1966-01-30', { name: [{ family: 'Quill', given: ['Theodora'] }] }));
      const golden = await goldenOf(a);
      assert.deepEqual(linked(golden), [`Patient/${a}`, `Patient/${b}`].sort());
      const plain = await s.fhir('GET', 'Patient?family=quill&_total=accurate');
      assert.deepEqual(plain.body.entry.map((e: any) => e.resource.id).sort(), [a, b].sort());
      assert.equal(plain.body.total, 2);
      // The golden record carries hospital A's MRN too; the participant's own search finds only its record.
      const byMrn = await s.fhir('GET', 'Patient?identifier=urn:example:hospital-a:mrn|880');
      assert.deepEqual(byMrn.body.entry.map((e: any) => e.resource.id), [a]);
      const conditional = await s.fhir('POST', 'Patient', person('hospital-a', '880', 'Theodora', 'Quill', '1966-01-30'), {
        'if-none-exist': 'identifier=urn:example:hospital-a:mrn|880',
      });
      assert.equal(conditional.status, 200);
      assert.equal(conditional.body.id, a);
      // Asked for: by tag, by id, through link.
      const tagged = await s.fhir('GET', 'Patient?family=quill&_tag=https://tessera.dev/fhir/CodeSystem/mpi|golden');
      assert.deepEqual(tagged.body.entry.map((e: any) => e.resource.id), [golden.id]);
      assert.equal((await s.fhir('GET', `Patient?_id=${golden.id}`)).body.entry.length, 1);
      assert.equal((await s.fhir('GET', `Patient/${golden.id}`)).status, 200);
    });

    it('a source re-sending a record under the same MRN updates it, by POST and in a transaction', async () => {
      const first = await create(person('hospital-a', '950', 'Ingrid', 'Halvorsen', '1958-12-01'));
      const again = await s.fhir('POST', 'Patient', person('hospital-a', '950', 'Ingrid', 'Halvorsen', '1958-12-01', { telecom: [{ system: 'phone', value: '617-555-0199' }] }));
      assert.equal(again.status, 200, JSON.stringify(again.body));
      assert.equal(again.body.id, first);
      assert.equal(again.body.meta.versionId, '2');
      const txn = await s.fhir('POST', '', {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          { fullUrl: 'urn:uuid:1f0c2d5e-0000-4000-8000-000000000950', resource: person('hospital-a', '950', 'Ingrid', 'Halvorsen', '1958-12-01'), request: { method: 'POST', url: 'Patient' } },
          {
            resource: { resourceType: 'Observation', status: 'final', code: { text: 'weight' }, subject: { reference: 'urn:uuid:1f0c2d5e-0000-4000-8000-000000000950' } },
            request: { method: 'POST', url: 'Observation' },
          },
        ],
      });
      assert.equal(txn.status, 200, JSON.stringify(txn.body));
      assert.equal(txn.body.entry[0].response.status, '200 OK');
      assert.ok(txn.body.entry[0].response.location.includes(`Patient/${first}`));
      const observation = await s.fhir('GET', txn.body.entry[1].response.location.replace(/^.*\/fhir\//, '').replace(/\/_history\/.*$/, ''));
      assert.equal(observation.body.subject.reference, `Patient/${first}`);
      const all = await s.fhir('GET', 'Patient?identifier=urn:example:hospital-a:mrn|950');
      assert.deepEqual(all.body.entry.map((e: any) => e.resource.id), [first]);
      assert.deepEqual(linked(await goldenOf(first)), [`Patient/${first}`]);
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

    it('does not chain two people together: a record matching one member but contradicting another goes to review', async () => {
      const ssn = (value: string) => ({ system: 'http://hl7.org/fhir/sid/us-ssn', value });
      const ids = (source: string, mrn: string, ...more: { system: string; value: string }[]) => ({ identifier: [{ type: MR, system: `urn:example:${source}:mrn`, value: mrn }, ...more] });
      const a = await create(person('hospital-a', '820', 'Harriet', 'Blackwood', '1961-02-14', { gender: 'female', ...ids('hospital-a', '820', ssn('111-22-3333')) }));
      const b = await create(person('clinic-b', '821', 'Harriet', 'Blackwood', '1961-02-14', { gender: 'female' }));
      assert.equal((await goldenOf(a)).id, (await goldenOf(b)).id, 'B (no SSN) links to A');
      // C agrees with B on everything B has, and with A on everything but the SSN.
      const c = await create(person('lab-c', '822', 'Harriet', 'Blackwood', '1961-02-14', { gender: 'female', ...ids('lab-c', '822', ssn('444-55-6666')) }));
      assert.notEqual((await goldenOf(c)).id, (await goldenOf(a)).id, 'C is not chained to A through B');
      const queue = await s.fhir('GET', 'Patient/$mpi-review-queue?status=open&_count=100');
      assert.match(JSON.stringify(queue.body), /another record of this identity contradicts it: SSNs differ/);
    });

    it('keeps Jr and Sr apart at one address', async () => {
      const sr = await create(person('hospital-a', '700', 'James', 'Whitfield', '1950-06-01', { name: [{ family: 'Whitfield', given: ['James'], suffix: ['Sr'] }] }));
      const jr = await create(person('hospital-a', '701', 'James', 'Whitfield', '1950-06-01', { name: [{ family: 'Whitfield', given: ['James'], suffix: ['Jr'] }] }));
      assert.notEqual((await goldenOf(sr)).id, (await goldenOf(jr)).id);
    });

    it('weighs a shared name by how common it is in the index: a common name and birth date alone go to review, a rare one links', async () => {
      // Name, birth date and gender agree; the address moved and one side has no phone (the evidence a
      // mover leaves). With the priors alone that scores just over the auto-link threshold either way.
      const moved = { telecom: [], address: [{ line: ['77 Quarry Lane'], city: 'Lowell', postalCode: '01852' }] };
      for (let i = 0; i < 30; i++) {
        await create(person('hospital-c', `cn-${i}`, 'Michael', 'Brown', `${1940 + i}-02-14`, { telecom: [{ system: 'phone', value: `(508) 555-${String(1000 + i)}` }] }));
      }
      const first = await create(person('hospital-a', 'cn-a', 'Michael', 'Brown', '1983-07-19'));
      const second = await create(person('clinic-b', 'cn-b', 'Michael', 'Brown', '1983-07-19', moved));
      assert.notEqual((await goldenOf(first)).id, (await goldenOf(second)).id, 'a common name and birth date are not enough');
      const queue = await s.fhir('GET', 'Patient/$mpi-review-queue?_count=500');
      const pair = (queue.body.parameter ?? []).find((p: any) => {
        const ids = p.part?.filter((x: any) => x.name === 'patient' || x.name === 'other').map((x: any) => x.valueReference?.reference);
        return ids?.includes(`Patient/${first}`) && ids?.includes(`Patient/${second}`);
      });
      assert.ok(pair, 'the pair waits for a steward');
      const frequency = pair.part.filter((x: any) => x.name === 'contribution').find((c: any) => c.part.some((y: any) => y.valueCode === 'nameFrequency'));
      assert.ok(frequency, 'the steward sees the name-frequency weight');
      assert.ok(frequency.part.find((y: any) => y.name === 'weight').valueDecimal < 0, 'a common name weighs less than the priors assume');

      const rare = await create(person('hospital-a', 'rn-a', 'Ottoline', 'Vandersloot', '1983-07-19', { gender: 'female' }));
      const rareMoved = await create(person('clinic-b', 'rn-b', 'Ottoline', 'Vandersloot', '1983-07-19', { ...moved, gender: 'female' }));
      // Issue 16: name and birth date with nothing else in common (one side without a phone) was most of the
      // false links in a community of common names; the hand priors know nothing of how rarely this
      // population shares a birth date, so a steward decides (a learned model may lift it: mpi-match-model).
      assert.notEqual((await goldenOf(rare)).id, (await goldenOf(rareMoved)).id, 'the priors do not link on name and birth date alone');
    });

    it('keeps a linked record in its enterprise on update, and the golden record takes the newest values', async () => {
      const a = await create(person('hospital-a', '881', 'Thomas', 'Brennan', '1966-11-30'));
      const b = await create(person('clinic-b', 'T-4', 'Tom', 'Brennan', '1966-11-30'));
      const before = await goldenOf(a);
      const moved = { ...person('clinic-b', 'T-4', 'Tom', 'Brennan', '1966-11-30'), id: b, address: [{ line: ['3 New Road'], city: 'Boston', postalCode: '02118' }] };
      assert.equal((await s.fhir('PUT', `Patient/${b}`, moved)).status, 200);
      const after = await goldenOf(a);
      assert.equal(after.id, before.id);
      assert.deepEqual(linked(after), [`Patient/${a}`, `Patient/${b}`].sort());
      assert.equal(after.address?.[0].postalCode, '02118', 'survivorship: most recently updated source');
    });

    it("$everything on the enterprise record covers every linked source's data; on a source record, only its own", async () => {
      const a = await create(person('hospital-a', 'E-1', 'Katherine', 'Oduya', '1951-05-17', { gender: 'female' }));
      const b = await create(person('clinic-b', 'E-77', 'Kate', 'Oduya', '1951-05-17', { gender: 'female' }));
      const observe = async (patientId: string, text: string): Promise<string> => {
        const res = await s.fhir('POST', 'Observation', { resourceType: 'Observation', status: 'final', code: { text }, subject: { reference: `Patient/${patientId}` } });
        assert.equal(res.status, 201);
        return res.body.id;
      };
      const [fromA, fromB] = [await observe(a, 'glucose'), await observe(b, 'hba1c')];
      const golden = await goldenOf(a);
      const contents = async (patientId: string): Promise<string[]> => {
        const res = await s.fhir('GET', `Patient/${patientId}/$everything?_view=sources`);
        assert.equal(res.status, 200);
        return res.body.entry.map((e: any) => `${e.resource.resourceType}/${e.resource.id}`).sort();
      };
      assert.deepEqual(await contents(golden.id as string), [`Observation/${fromA}`, `Observation/${fromB}`, `Patient/${a}`, `Patient/${b}`, `Patient/${golden.id}`].sort());
      assert.deepEqual(await contents(a), [`Observation/${fromA}`, `Patient/${a}`].sort(), 'neither the golden record nor, through its links, the other source');
    });

    it('retires the golden record when its only source record is deleted', async () => {
      const a = await create(person('hospital-a', '990', 'Odile', 'Marchetti', '1940-01-15', { gender: 'female' }));
      const golden = await goldenOf(a);
      assert.equal((await s.fhir('DELETE', `Patient/${a}`)).status, 200);
      assert.equal((await s.fhir('GET', `Patient/${golden.id}`)).status, 410);
    });
  });
}
