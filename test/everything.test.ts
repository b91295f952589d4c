import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { patientBundles, directoryBundle } from '../src/synthetic/community.js';
import { BACKENDS } from './helpers/backends.js';
import { startTestServer, type TestServer } from './helpers/server.js';

for (const backend of BACKENDS) {
  describe(`Patient/$everything (${backend})`, () => {
    let s: TestServer;
    let patientId: string;
    let expected: Map<string, number>;
    let otherPatientId: string;
    before(async () => {
      s = await startTestServer(backend);
      await s.fhir('POST', '', directoryBundle(7));
      const [mine, other] = [...patientBundles({ seed: 7, patients: 2, encountersPerPatient: [6, 6] })];
      const res = await s.fhir('POST', '', mine);
      assert.equal(res.status, 200);
      patientId = res.body.entry[0].resource.id;
      expected = new Map();
      for (const e of mine.entry ?? []) {
        expected.set(e.resource!.resourceType, (expected.get(e.resource!.resourceType) ?? 0) + 1);
      }
      otherPatientId = (await s.fhir('POST', '', other)).body.entry[0].resource.id;
    });
    after(async () => s?.close());

    it('returns the patient, their whole compartment, and what it references, and nothing of another patient', async () => {
      const res = await s.fhir('GET', `Patient/${patientId}/$everything`);
      assert.equal(res.status, 200);
      const byType = new Map<string, number>();
      for (const e of res.body.entry) {
        byType.set(e.resource.resourceType, (byType.get(e.resource.resourceType) ?? 0) + 1);
      }
      for (const [type, n] of expected) {
        assert.equal(byType.get(type), n, type);
      }
      assert.ok(byType.get('Practitioner')! >= 1);
      assert.equal(byType.get('Organization'), 1);
      assert.ok(!res.body.entry.some((e: any) => e.resource.id === otherPatientId));
      assert.ok(
        !res.body.entry.some((e: any) => e.resource.subject?.reference === `Patient/${otherPatientId}`),
        'no resource of the other patient',
      );
      assert.equal(res.body.total, res.body.entry.length);
    });

    it('filters by _type and _since, and pages with _count', async () => {
      const conditions = await s.fhir('GET', `Patient/${patientId}/$everything?_type=Observation`);
      assert.equal(conditions.body.entry.length, expected.get('Observation'));
      const future = await s.fhir('GET', `Patient/${patientId}/$everything?_since=2999-01-01T00:00:00Z`);
      assert.equal(future.body.entry.length, 0);
      const page = await s.fhir('GET', `Patient/${patientId}/$everything?_count=5`);
      assert.equal(page.body.entry.length, 5);
      const next = page.body.link.find((l: any) => l.relation === 'next').url;
      const page2 = await s.fhir('GET', next.slice(next.indexOf('/fhir/') + 5));
      assert.equal(page2.body.entry.length, 5);
      const seen = new Set(page.body.entry.map((e: any) => e.fullUrl));
      assert.ok(page2.body.entry.every((e: any) => !seen.has(e.fullUrl)));
    });

    it('404 for an unknown patient; a deleted resource drops out', async () => {
      assert.equal((await s.fhir('GET', 'Patient/nobody/$everything')).status, 404);
      const obs = (await s.fhir('GET', `Observation?subject=Patient/${patientId}&_count=1`)).body.entry[0].resource;
      await s.fhir('DELETE', `Observation/${obs.id}`);
      const res = await s.fhir('GET', `Patient/${patientId}/$everything?_type=Observation`);
      assert.equal(res.body.entry.length, expected.get('Observation')! - 1);
    });
  });
}
