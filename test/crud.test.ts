import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BACKENDS } from './helpers/backends.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const patient = (family = 'Chalmers') => ({
  resourceType: 'Patient',
  identifier: [{ system: 'urn:oid:1.2.36.146.595.217.0.1', value: `MRN-${family}` }],
  name: [{ family, given: ['Peter', 'James'] }],
  gender: 'male',
  birthDate: '1974-12-25',
});

for (const backend of BACKENDS) {
  describe(`REST CRUD (${backend})`, () => {
    let s: TestServer;
    before(async () => (s = await startTestServer(backend)));
    after(async () => s?.close());

    it('creates with 201, Location, ETag and Last-Modified, and reads back', async () => {
      const res = await s.fhir('POST', 'Patient', patient());
      assert.equal(res.status, 201);
      assert.match(res.headers.get('location') ?? '', new RegExp(`/fhir/Patient/${res.body.id}/_history/1$`));
      assert.equal(res.headers.get('etag'), 'W/"1"');
      assert.ok(res.headers.get('last-modified'));
      assert.equal(res.body.meta.versionId, '1');
      const read = await s.fhir('GET', `Patient/${res.body.id}`);
      assert.equal(read.status, 200);
      assert.deepEqual(read.body.name, patient().name);
      assert.equal(read.headers.get('etag'), 'W/"1"');
      assert.match(read.headers.get('content-type') ?? '', /application\/fhir\+json/);
    });

    it('ignores a client-supplied id on create and assigns its own', async () => {
      const res = await s.fhir('POST', 'Patient', { ...patient('ClientChosen'), id: 'client-chosen' });
      assert.equal(res.status, 201);
      assert.notEqual(res.body.id, 'client-chosen');
    });

    it('updates with versioning, vread of every version, and instance history', async () => {
      const created = (await s.fhir('POST', 'Patient', patient('Versioned'))).body;
      const updated = await s.fhir('PUT', `Patient/${created.id}`, { ...created, gender: 'female' });
      assert.equal(updated.status, 200);
      assert.equal(updated.body.meta.versionId, '2');
      assert.equal((await s.fhir('GET', `Patient/${created.id}/_history/1`)).body.gender, 'male');
      assert.equal((await s.fhir('GET', `Patient/${created.id}/_history/2`)).body.gender, 'female');
      assert.equal((await s.fhir('GET', `Patient/${created.id}/_history/3`)).status, 404);
      const history = await s.fhir('GET', `Patient/${created.id}/_history`);
      assert.equal(history.body.type, 'history');
      assert.equal(history.body.total, 2);
      assert.deepEqual(history.body.entry.map((e: any) => e.resource.meta.versionId), ['2', '1']);
      assert.deepEqual(history.body.entry.map((e: any) => e.request.method), ['PUT', 'POST']);
    });

    it('an update that changes nothing keeps the current version (no new version, history or index rows)', async () => {
      const created = (await s.fhir('POST', 'Patient', patient('Unchanged'))).body;
      const again = await s.fhir('PUT', `Patient/${created.id}`, { ...created, meta: { source: '#another-message' } });
      assert.equal(again.status, 200);
      assert.equal(again.body.meta.versionId, '1', 'the same content: version 1 is kept');
      assert.equal(again.headers.get('etag'), 'W/"1"');
      assert.equal(again.body.meta.lastUpdated, created.meta.lastUpdated);
      assert.equal((await s.fhir('GET', `Patient/${created.id}/_history`)).body.total, 1);
      // Key order and absent elements do not count as changes; a tag or any element does.
      const { resourceType, id, ...rest } = created;
      const reordered = await s.fhir('PUT', `Patient/${created.id}`, { id, ...rest, resourceType, active: undefined });
      assert.equal(reordered.body.meta.versionId, '1');
      const tagged = await s.fhir('PUT', `Patient/${created.id}`, { ...created, meta: { tag: [{ system: 'urn:example:tags', code: 'reviewed' }] } });
      assert.equal(tagged.body.meta.versionId, '2');
      const changed = await s.fhir('PUT', `Patient/${created.id}`, { ...tagged.body, gender: 'female' });
      assert.equal(changed.body.meta.versionId, '3');
      assert.equal((await s.fhir('GET', 'Patient?identifier=MRN-Unchanged&gender=female')).body.entry.length, 1, 'the changed version is indexed');
    });

    it('creates on update with a client id (update-as-create) and returns 201', async () => {
      const res = await s.fhir('PUT', 'Patient/chosen-id-1', { ...patient('Chosen'), id: 'chosen-id-1' });
      assert.equal(res.status, 201);
      assert.equal(res.body.id, 'chosen-id-1');
    });

    it('enforces optimistic locking with If-Match (412 on a stale version)', async () => {
      const created = (await s.fhir('POST', 'Patient', patient('Locked'))).body;
      const ok = await s.fhir('PUT', `Patient/${created.id}`, { ...created, active: true }, { 'if-match': 'W/"1"' });
      assert.equal(ok.status, 200);
      const stale = await s.fhir('PUT', `Patient/${created.id}`, { ...created, active: false }, { 'if-match': 'W/"1"' });
      assert.equal(stale.status, 412);
      assert.equal(stale.body.resourceType, 'OperationOutcome');
      assert.equal((await s.fhir('GET', `Patient/${created.id}`)).body.active, true);
    });

    it('answers If-None-Match with 304 for the current version', async () => {
      const created = (await s.fhir('POST', 'Patient', patient('Cached'))).body;
      const res = await s.fhir('GET', `Patient/${created.id}`, undefined, { 'if-none-match': 'W/"1"' });
      assert.equal(res.status, 304);
    });

    it('soft-deletes: 410 on read, history keeps the deletion, re-create via PUT works', async () => {
      const created = (await s.fhir('POST', 'Patient', patient('Deleted'))).body;
      assert.equal((await s.fhir('DELETE', `Patient/${created.id}`)).status, 200);
      const gone = await s.fhir('GET', `Patient/${created.id}`);
      assert.equal(gone.status, 410);
      assert.equal(gone.body.issue[0].code, 'deleted');
      const history = await s.fhir('GET', `Patient/${created.id}/_history`);
      assert.equal(history.body.total, 2);
      assert.equal(history.body.entry[0].request.method, 'DELETE');
      assert.equal(history.body.entry[0].resource, undefined);
      assert.equal((await s.fhir('GET', `Patient/${created.id}/_history/1`)).status, 200);
      assert.equal((await s.fhir('GET', `Patient?_id=${created.id}`)).body.total, 0);
      const again = await s.fhir('PUT', `Patient/${created.id}`, { ...created, meta: undefined });
      assert.equal(again.status, 201);
      assert.equal(again.body.meta.versionId, '3');
      assert.equal((await s.fhir('DELETE', 'Patient/never-existed')).status, 404);
    });

    it('conditional create (If-None-Exist) returns the existing resource instead of a duplicate', async () => {
      const body = patient('Conditional');
      const first = await s.fhir('POST', 'Patient', body, { 'if-none-exist': 'identifier=urn:oid:1.2.36.146.595.217.0.1|MRN-Conditional' });
      assert.equal(first.status, 201);
      const second = await s.fhir('POST', 'Patient', body, { 'if-none-exist': 'identifier=urn:oid:1.2.36.146.595.217.0.1|MRN-Conditional' });
      assert.equal(second.status, 200);
      assert.equal(second.body.id, first.body.id);
      const search = await s.fhir('GET', 'Patient?identifier=urn:oid:1.2.36.146.595.217.0.1|MRN-Conditional');
      assert.equal(search.body.total, 1);
    });

    it('conditional update creates, then updates the single match, and refuses multiple matches', async () => {
      const q = 'Patient?identifier=urn:oid:1.2.36.146.595.217.0.1|MRN-CondUpd';
      const created = await s.fhir('PUT', q, patient('CondUpd'));
      assert.equal(created.status, 201);
      const updated = await s.fhir('PUT', q, { ...patient('CondUpd'), active: true });
      assert.equal(updated.status, 200);
      assert.equal(updated.body.id, created.body.id);
      assert.equal(updated.body.meta.versionId, '2');
      // Two records (their own MRNs) sharing a second identifier.
      for (const mrn of ['twin-1', 'twin-2']) {
        const identifier = [{ type: { coding: [{ code: 'MR' }] }, system: 'urn:test:mrn', value: mrn }, { system: 'urn:test', value: 'dup' }];
        assert.equal((await s.fhir('POST', 'Patient', { ...patient('Twin'), identifier })).status, 201);
      }
      assert.equal((await s.fhir('PUT', 'Patient?identifier=urn:test|dup', patient('Twin'))).status, 412);
      assert.equal((await s.fhir('DELETE', 'Patient?identifier=urn:test|dup')).status, 412);
    });

    it('conditional delete removes the single match', async () => {
      const created = (await s.fhir('POST', 'Patient', patient('CondDel'))).body;
      assert.equal((await s.fhir('DELETE', 'Patient?identifier=urn:oid:1.2.36.146.595.217.0.1|MRN-CondDel')).status, 200);
      assert.equal((await s.fhir('GET', `Patient/${created.id}`)).status, 410);
    });

    it('applies JSON Patch, validates the result, and honours test operations', async () => {
      const created = (await s.fhir('POST', 'Patient', patient('Patched'))).body;
      const patchHeaders = { 'content-type': 'application/json-patch+json' };
      const ok = await s.fhir('PATCH', `Patient/${created.id}`, [{ op: 'replace', path: '/gender', value: 'female' }], patchHeaders);
      assert.equal(ok.status, 200);
      assert.equal(ok.body.gender, 'female');
      assert.equal(ok.body.meta.versionId, '2');
      const failedTest = await s.fhir(
        'PATCH',
        `Patient/${created.id}`,
        [{ op: 'test', path: '/gender', value: 'male' }, { op: 'replace', path: '/active', value: true }],
        patchHeaders,
      );
      assert.equal(failedTest.status, 412);
      const invalid = await s.fhir('PATCH', `Patient/${created.id}`, [{ op: 'replace', path: '/gender', value: 'robot' }], patchHeaders);
      assert.equal(invalid.status, 422);
      const idChange = await s.fhir('PATCH', `Patient/${created.id}`, [{ op: 'replace', path: '/id', value: 'other' }], patchHeaders);
      assert.equal(idChange.status, 400);
      const current = (await s.fhir('GET', `Patient/${created.id}`)).body;
      assert.equal(current.meta.versionId, '2');
      assert.equal(current.active, undefined);
    });

    describe('bad input never corrupts the store', () => {
      it('rejects malformed JSON with 400 OperationOutcome', async () => {
        const res = await s.fhir('POST', 'Patient', '{"resourceType": "Patient", ');
        assert.equal(res.status, 400);
        assert.equal(res.body.resourceType, 'OperationOutcome');
        assert.match(res.body.issue[0].diagnostics, /Malformed JSON/);
      });

      it('rejects a resourceType that does not match the URL, or is unknown', async () => {
        assert.equal((await s.fhir('POST', 'Patient', { resourceType: 'Observation', status: 'final', code: { text: 'x' } })).status, 400);
        assert.equal((await s.fhir('POST', 'Patient', { resourceType: 'Pateint' })).status, 400);
        assert.equal((await s.fhir('POST', 'Pateint', { resourceType: 'Pateint' })).status, 404);
        assert.equal((await s.fhir('POST', 'Patient', [1, 2])).status, 400);
      });

      it('rejects invalid codes, dates and unknown elements with 422 and the element path', async () => {
        const badGender = await s.fhir('POST', 'Patient', { ...patient(), gender: 'robot' });
        assert.equal(badGender.status, 422);
        assert.deepEqual(badGender.body.issue[0].expression, ['Patient.gender']);
        const badDate = await s.fhir('POST', 'Patient', { ...patient(), birthDate: '1974-13-45' });
        assert.equal(badDate.status, 422);
        assert.match(JSON.stringify(badDate.body), /birthDate/);
        const unknown = await s.fhir('POST', 'Patient', { ...patient(), favouriteColour: 'blue' });
        assert.equal(unknown.status, 422);
        const badStatus = await s.fhir('POST', 'Observation', { resourceType: 'Observation', status: 'done', code: { text: 'x' } });
        assert.equal(badStatus.status, 422);
        const missingRequired = await s.fhir('POST', 'Observation', { resourceType: 'Observation', status: 'final' });
        assert.equal(missingRequired.status, 422);
      });

      it('rejects an update whose body id differs from the URL', async () => {
        const created = (await s.fhir('POST', 'Patient', patient('Mismatch'))).body;
        const res = await s.fhir('PUT', `Patient/${created.id}`, { ...created, id: 'someone-else' });
        assert.equal(res.status, 400);
        assert.equal((await s.fhir('GET', `Patient/${created.id}`)).body.meta.versionId, '1');
      });

      it('415 OperationOutcome for a content type other than FHIR JSON (XML is not supported yet)', async () => {
        const res = await s.fhir('POST', 'Patient', '<Patient xmlns="http://hl7.org/fhir"/>', { 'content-type': 'application/fhir+xml' });
        assert.equal(res.status, 415);
        assert.equal(res.body.resourceType, 'OperationOutcome');
      });

      it('404 for an unknown id, 405 for an unsupported method', async () => {
        assert.equal((await s.fhir('GET', 'Patient/does-not-exist')).status, 404);
        assert.equal((await s.fhir('DELETE', '')).status, 405);
      });

      it('a failed write leaves the previous version intact', async () => {
        const created = (await s.fhir('POST', 'Patient', patient('Intact'))).body;
        await s.fhir('PUT', `Patient/${created.id}`, { ...created, birthDate: 'yesterday' });
        const current = await s.fhir('GET', `Patient/${created.id}`);
        assert.equal(current.body.meta.versionId, '1');
        assert.equal(current.body.birthDate, '1974-12-25');
        assert.equal((await s.fhir('GET', `Patient/${created.id}/_history`)).body.total, 1);
      });
    });

    it('type and system history with _since and _count paging', async () => {
      const since = new Date().toISOString();
      await new Promise((r) => setTimeout(r, 5));
      for (let i = 0; i < 3; i++) {
        await s.fhir('POST', 'Practitioner', { resourceType: 'Practitioner', name: [{ family: `Hist${i}` }] });
      }
      const typeHistory = await s.fhir('GET', `Practitioner/_history?_since=${encodeURIComponent(since)}&_count=2`);
      assert.equal(typeHistory.body.total, 3);
      assert.equal(typeHistory.body.entry.length, 2);
      const next = typeHistory.body.link.find((l: any) => l.relation === 'next');
      assert.ok(next);
      const page2 = await s.fhir('GET', next.url.slice(next.url.indexOf('/fhir') + 5));
      assert.equal(page2.body.entry.length, 1);
      const system = await s.fhir('GET', `_history?_since=${encodeURIComponent(since)}`);
      assert.equal(system.body.total, 3);
      assert.equal((await s.fhir('GET', '_history?_since=notadate')).status, 400);
    });

    it('publishes a CapabilityStatement without authentication', async () => {
      const res = await fetch(`${s.base}/metadata`);
      const cs = (await res.json()) as any;
      assert.equal(res.status, 200);
      assert.equal(cs.fhirVersion, '4.0.1');
      const patientResource = cs.rest[0].resource.find((r: any) => r.type === 'Patient');
      assert.ok(patientResource.searchParam.some((p: any) => p.name === 'birthdate' && p.type === 'date'));
      assert.ok(patientResource.operation.some((o: any) => o.name === 'everything'));
      assert.ok(cs.rest[0].resource.length > 140);
    });
  });
}
