import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { parseScopes } from '../src/security/scopes.js';
import type { AuthContext } from '../src/security/token-service.js';
import { BACKENDS } from './helpers/backends.js';
import { bodyOf, engineAs } from './helpers/governance.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/**
 * The probes of the governance issue, each a named test: what a token may not read must not be readable,
 * searchable, countable or includable by any path. Data: a small synthetic community written below (two
 * patients, their practitioner and organisation, vital signs and a laboratory result; LOINC codes as real
 * senders use them). Sensitive data, consent and labels: test/consent-labels.test.ts.
 */
const VITALS = 'http://terminology.hl7.org/CodeSystem/observation-category|vital-signs';
const LAB = 'http://terminology.hl7.org/CodeSystem/observation-category|laboratory';

function category(code: string) {
  return [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code }] }];
}

const types = (bundle: Bundle) => (bundle.entry ?? []).filter((e) => e.resource?.resourceType !== 'OperationOutcome').map((e) => e.resource?.resourceType);

for (const backend of BACKENDS) {
  describe(`access policy: scopes on every path (${backend})`, () => {
    let s: TestServer;
    const ids: Record<string, string> = {};
    const as = async (scope: string) => ({ authorization: `Bearer ${await s.tokenFor(scope)}` });

    const engine = (auth: AuthContext, method: string, path: string, body?: unknown) => engineAs(s, auth, method, path, body);

    before(async () => {
      s = await startTestServer(backend);
      const post = async (r: Resource) => (await s.fhir('POST', r.resourceType, r)).body.id as string;
      ids.org = await post({ resourceType: 'Organization', name: 'Riverside Clinic' });
      ids.doc = await post({ resourceType: 'Practitioner', name: [{ family: 'Osler' }] });
      ids.a = await post({ resourceType: 'Patient', name: [{ family: 'Alvarez' }], generalPractitioner: [{ reference: `Practitioner/${ids.doc}` }], managingOrganization: { reference: `Organization/${ids.org}` } });
      ids.b = await post({ resourceType: 'Patient', name: [{ family: 'Brennan' }] });
      const obs = (patient: string, cat: string, code: string, value: number) =>
        post({ resourceType: 'Observation', status: 'final', category: category(cat), code: { coding: [{ system: 'http://loinc.org', code }] }, subject: { reference: `Patient/${patient}` }, performer: [{ reference: `Practitioner/${ids.doc}` }], valueQuantity: { value } });
      ids.aVitals = await obs(ids.a, 'vital-signs', '8867-4', 72);
      ids.aLab = await obs(ids.a, 'laboratory', '4548-4', 6.9); // haemoglobin A1c
      ids.bVitals = await obs(ids.b, 'vital-signs', '8867-4', 64);
    });
    after(async () => s?.close());

    it('_include, _include:iterate and _revinclude add no type outside the scopes (system/Patient.rs)', async () => {
      const h = await as('system/Patient.rs');
      for (const q of [
        `Patient?_id=${ids.a}&_revinclude=Observation:subject`,
        `Patient?_id=${ids.a}&_include=Patient:general-practitioner&_include=Patient:organization`,
        `Patient?_id=${ids.a}&_revinclude=Observation:subject&_include:iterate=Observation:performer`,
      ]) {
        const res = await s.fhir('GET', q, undefined, h);
        assert.equal(res.status, 200, q);
        assert.deepEqual(types(res.body), ['Patient'], q);
      }
    });

    it('_include=Observation:subject does not add the Patient to a system/Observation.rs token; nor through POST _search or a batch entry', async () => {
      const h = await as('system/Observation.rs');
      const get = await s.fhir('GET', `Observation?subject=Patient/${ids.a}&_include=Observation:subject`, undefined, h);
      assert.equal(get.status, 200);
      assert.deepEqual(new Set(types(get.body)), new Set(['Observation']));
      const post = await s.fhir('POST', 'Observation/_search', `subject=Patient/${ids.a}&_include=Observation:subject`, { ...h, 'content-type': 'application/x-www-form-urlencoded' });
      assert.equal(post.status, 200);
      assert.deepEqual(new Set(types(post.body)), new Set(['Observation']));
      const batch = await s.fhir('POST', '', { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: `Observation?subject=Patient/${ids.a}&_include=Observation:subject` } }, { request: { method: 'GET', url: `Patient/${ids.a}` } }] }, h);
      assert.equal(batch.status, 200);
      assert.deepEqual(new Set(types(batch.body.entry[0].resource)), new Set(['Observation']));
      assert.equal(batch.body.entry[1].response.status, '403');
    });

    it('_has and chains through a type outside the scopes are refused, not answered yes or no', async () => {
      const h = await as('system/Patient.rs');
      const has = await s.fhir('GET', 'Patient?_has:Observation:subject:code=http://loinc.org|4548-4', undefined, h);
      assert.equal(has.status, 403);
      assert.equal(has.body.resourceType, 'OperationOutcome');
      const obsOnly = await as('system/Observation.rs');
      const chain = await s.fhir('GET', 'Observation?subject:Patient.name=alvarez', undefined, obsOnly);
      assert.equal(chain.status, 403);
      // With both types the same searches answer.
      const both = await as('system/Patient.rs system/Observation.rs');
      assert.equal((await s.fhir('GET', 'Patient?_has:Observation:subject:code=http://loinc.org|4548-4', undefined, both)).body.entry.length, 1);
      assert.equal((await s.fhir('GET', 'Observation?subject:Patient.name=alvarez', undefined, both)).body.entry.length, 2);
    });

    it('granular scopes: system/Observation.rs?category=vital-signs reads, searches, counts and includes vital signs only', async () => {
      const h = await as(`system/Observation.rs?category=${VITALS} system/Patient.rs`);
      const all = await s.fhir('GET', 'Observation?_total=accurate', undefined, h);
      assert.equal(all.body.total, 2);
      assert.deepEqual(all.body.entry.map((e: any) => e.resource.id).sort(), [ids.aVitals, ids.bVitals].sort());
      assert.equal((await s.fhir('GET', `Observation?category=${LAB}&_summary=count`, undefined, h)).body.total, 0);
      assert.equal((await s.fhir('GET', `Observation/${ids.aLab}`, undefined, h)).status, 404);
      assert.equal((await s.fhir('GET', `Observation/${ids.aLab}/_history/1`, undefined, h)).status, 404);
      assert.equal((await s.fhir('GET', `Observation/${ids.aVitals}`, undefined, h)).status, 200);
      const rev = await s.fhir('GET', `Patient?_id=${ids.a}&_revinclude=Observation:subject`, undefined, h);
      assert.deepEqual(rev.body.entry.map((e: any) => e.resource.id).sort(), [ids.a, ids.aVitals].sort());
      // _has counts only what the scope reaches: the laboratory result cannot be probed for.
      assert.equal((await s.fhir('GET', 'Patient?_has:Observation:subject:code=http://loinc.org|4548-4', undefined, h)).body.entry.length, 0);
      const everything = await s.fhir('GET', `Patient/${ids.a}/$everything`, undefined, await as(`system/Observation.rs?category=${VITALS} system/Patient.rs system/Practitioner.rs`));
      assert.ok(!everything.body.entry.some((e: any) => e.resource.id === ids.aLab));
      assert.ok(everything.body.entry.some((e: any) => e.resource.id === ids.aVitals));
    });

    it('patient/*.rs without a patient context reaches nothing (it does not behave like system/*.rs)', async () => {
      const h = await as('patient/*.rs');
      assert.equal((await s.fhir('GET', 'Observation', undefined, h)).status, 403);
      assert.equal((await s.fhir('GET', `Patient/${ids.a}`, undefined, h)).status, 403);
    });

    it('patient/*.rs with a patient context reaches that patient\'s compartment only, by every path', async () => {
      const auth: AuthContext = { clientId: 'patient-app', scopes: parseScopes('patient/*.rs'), patient: ids.a };
      const obs = bodyOf(await engine(auth, 'GET', 'Observation?_total=accurate'));
      assert.equal(obs.total, 2);
      assert.ok(obs.entry?.every((e) => (e.resource as any).subject.reference === `Patient/${ids.a}`));
      const patients = bodyOf(await engine(auth, 'GET', 'Patient'));
      assert.deepEqual(patients.entry?.map((e) => e.resource?.id), [ids.a]);
      await assert.rejects(engine(auth, 'GET', `Observation/${ids.bVitals}`), { status: 404 });
      await assert.rejects(engine(auth, 'GET', `Patient/${ids.b}/$everything`), { status: 404 });
      // Practitioners hold nobody's data: reachable. Another patient's data through _revinclude: not.
      assert.equal((await engine(auth, 'GET', `Practitioner/${ids.doc}`)).status, 200);
      const rev = bodyOf(await engine(auth, 'GET', `Practitioner?_id=${ids.doc}&_revinclude=Observation:performer`));
      assert.ok(rev.entry?.filter((e) => e.resource?.resourceType === 'Observation').every((e) => (e.resource as any).subject.reference === `Patient/${ids.a}`));
      assert.equal(rev.entry?.filter((e) => e.resource?.resourceType === 'Observation').length, 2);
      const has = bodyOf(await engine(auth, 'GET', 'Patient?_has:Observation:subject:code=http://loinc.org|8867-4'));
      assert.deepEqual(has.entry?.map((e) => e.resource?.id), [ids.a]);
      await assert.rejects(engine(auth, 'GET', 'Observation/_history'), { status: 403 });
      await assert.rejects(engine(auth, 'GET', '_history'), { status: 403 });
    });

    it('writes stay within reach: a patient app writes into its own patient\'s record only (create, update, transaction), a granular token within its category', async () => {
      const auth: AuthContext = { clientId: 'patient-app', scopes: parseScopes('patient/Observation.cruds patient/Patient.rs'), patient: ids.a };
      const obs = (patient: string, cat = 'vital-signs') => ({ resourceType: 'Observation', status: 'final', category: category(cat), code: { text: 'pulse' }, subject: { reference: `Patient/${patient}` } });
      const count = async () => (await s.fhir('GET', 'Observation?_summary=count')).body.total as number;
      const before = await count();
      const own = await engine(auth, 'POST', 'Observation', obs(ids.a));
      assert.equal(own.status, 201);
      await assert.rejects(engine(auth, 'POST', 'Observation', obs(ids.b)), { status: 403 });
      // Moving one's own record into another patient's: refused, version unchanged.
      await assert.rejects(engine(auth, 'PUT', `Observation/${own.body?.id}`, { ...obs(ids.b), id: own.body?.id }), { status: 403 });
      await assert.rejects(
        engine(auth, 'POST', '', { resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 'POST', url: 'Observation' }, resource: obs(ids.a) }, { request: { method: 'POST', url: 'Observation' }, resource: obs(ids.b) }] }),
        { status: 403 },
      );
      assert.equal(await count(), before + 1, 'only the allowed create was stored');
      assert.equal((await s.fhir('GET', `Observation/${own.body?.id}`)).body.meta.versionId, '1');
      const granular = { authorization: `Bearer ${await s.tokenFor(`system/Observation.crus?category=${VITALS}`)}` };
      assert.equal((await s.fhir('POST', 'Observation', obs(ids.b), granular)).status, 201);
      assert.equal((await s.fhir('POST', 'Observation', obs(ids.b, 'laboratory'), granular)).status, 403);
      assert.equal(await count(), before + 2);
    });
  });
}
