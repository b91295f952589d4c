import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BACKENDS } from './helpers/backends.js';
import { crossedLocks } from './helpers/crossed-locks.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const patientEntry = (uuid: string, mrn: string) => ({
  fullUrl: `urn:uuid:${uuid}`,
  resource: { resourceType: 'Patient', identifier: [{ system: 'urn:mrn:tx', value: mrn }], name: [{ family: 'Transact' }], gender: 'female' },
  request: { method: 'POST', url: 'Patient' },
});
const observationEntry = (subjectUrl: string, extra: Record<string, unknown> = {}) => ({
  resource: { resourceType: 'Observation', status: 'final', code: { text: 'weight' }, subject: { reference: subjectUrl }, ...extra },
  request: { method: 'POST', url: 'Observation' },
});

async function counts(s: TestServer): Promise<[number, number]> {
  const p = await s.fhir('GET', 'Patient?_summary=count');
  const o = await s.fhir('GET', 'Observation?_summary=count');
  return [p.body.total, o.body.total];
}

for (const backend of BACKENDS) {
  describe(`transaction and batch Bundles (${backend})`, () => {
    let s: TestServer;
    before(async () => (s = await startTestServer(backend)));
    after(async () => s?.close());

    it('rewrites urn:uuid references and returns a transaction-response in entry order', async () => {
      const uuid = '6c1a0c3e-9c1c-4b7a-8d4e-1f2a3b4c5d6e';
      const res = await s.fhir('POST', '', {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [observationEntry(`urn:uuid:${uuid}`), patientEntry(uuid, 'T1')],
      });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.type, 'transaction-response');
      assert.equal(res.body.entry[0].response.status, '201 Created');
      assert.equal(res.body.entry[0].resource.resourceType, 'Observation');
      const patientId = res.body.entry[1].resource.id;
      assert.equal(res.body.entry[0].resource.subject.reference, `Patient/${patientId}`);
      const stored = await s.fhir('GET', `Observation/${res.body.entry[0].resource.id}`);
      assert.equal(stored.body.subject.reference, `Patient/${patientId}`);
      const bySubject = await s.fhir('GET', `Observation?subject=Patient/${patientId}`);
      assert.equal(bySubject.body.entry.length, 1);
    });

    it('stores 300 entries with tabs, newlines, backslashes and quotes intact (bulk path: COPY on PostgreSQL)', async () => {
      const awkward = 'tab\there\nnew line \\N back\\slash "quoted" \\. end\r';
      const entries = Array.from({ length: 300 }, (_, i) =>
        observationEntry('Patient/does-not-need-to-exist', { code: { text: `bulk-${i}` }, valueString: `${awkward} #${i}` }),
      );
      const res = await s.fhir('POST', '', { resourceType: 'Bundle', type: 'transaction', entry: entries });
      assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 500));
      const id = res.body.entry[299].resource.id;
      const stored = await s.fhir('GET', `Observation/${id}`);
      assert.equal(stored.body.valueString, `${awkward} #299`);
      const found = await s.fhir('GET', `Observation?value-string:exact=${encodeURIComponent(`${awkward} #7`)}`);
      assert.equal(found.body.entry?.length, 1);
      assert.equal(found.body.entry[0].resource.code.text, 'bulk-7');
    });

    it('is all or nothing: one invalid entry commits nothing and names the entry', async () => {
      const before = await counts(s);
      const res = await s.fhir('POST', '', {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [patientEntry('11111111-1111-4111-8111-111111111111', 'T2'), observationEntry('urn:uuid:11111111-1111-4111-8111-111111111111', { status: 'nonsense' })],
      });
      assert.equal(res.status, 422);
      assert.match(res.body.issue[0].diagnostics, /Bundle\.entry\[1\]/);
      assert.deepEqual(await counts(s), before);
    });

    it('rolls back earlier writes when a later update fails its If-Match', async () => {
      const existing = (await s.fhir('POST', 'Patient', { resourceType: 'Patient', name: [{ family: 'Existing' }] })).body;
      const before = await counts(s);
      const res = await s.fhir('POST', '', {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          patientEntry('22222222-2222-4222-8222-222222222222', 'T3'),
          { resource: { ...existing, active: true }, request: { method: 'PUT', url: `Patient/${existing.id}`, ifMatch: 'W/"9"' } },
        ],
      });
      assert.equal(res.status, 412);
      assert.deepEqual(await counts(s), before);
      assert.equal((await s.fhir('GET', `Patient/${existing.id}`)).body.meta.versionId, '1');
    });

    it('resolves conditional references and conditional creates inside the transaction', async () => {
      await s.fhir('POST', 'Patient', { resourceType: 'Patient', identifier: [{ system: 'urn:mrn:cond', value: 'C1' }] });
      const res = await s.fhir('POST', '', {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          observationEntry('Patient?identifier=urn:mrn:cond|C1'),
          {
            fullUrl: 'urn:uuid:33333333-3333-4333-8333-333333333333',
            resource: { resourceType: 'Patient', identifier: [{ system: 'urn:mrn:cond', value: 'C1' }] },
            request: { method: 'POST', url: 'Patient', ifNoneExist: 'identifier=urn:mrn:cond|C1' },
          },
          observationEntry('urn:uuid:33333333-3333-4333-8333-333333333333'),
        ],
      });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.entry[1].response.status, '200 OK');
      const subject0 = res.body.entry[0].resource.subject.reference;
      assert.equal(res.body.entry[2].resource.subject.reference, subject0);
      assert.equal((await s.fhir('GET', 'Patient?identifier=urn:mrn:cond|C1')).body.entry.length, 1);
      const ambiguous = await s.fhir('POST', '', { resourceType: 'Bundle', type: 'transaction', entry: [observationEntry('Patient?identifier=urn:mrn:none|X')] });
      assert.equal(ambiguous.status, 412);
    });

    it('processes DELETE, POST, PUT and GET in one transaction', async () => {
      const a = (await s.fhir('POST', 'Patient', { resourceType: 'Patient', name: [{ family: 'DeleteMe' }] })).body;
      const b = (await s.fhir('POST', 'Patient', { resourceType: 'Patient', name: [{ family: 'UpdateMe' }] })).body;
      const res = await s.fhir('POST', '', {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          { request: { method: 'GET', url: `Patient/${b.id}` } },
          { resource: { ...b, active: true }, request: { method: 'PUT', url: `Patient/${b.id}` } },
          { request: { method: 'DELETE', url: `Patient/${a.id}` } },
          { resource: { resourceType: 'Patient', id: 'tx-put-create', name: [{ family: 'PutCreate' }] }, request: { method: 'PUT', url: 'Patient/tx-put-create' } },
        ],
      });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.entry[0].resource.active, true); // reads run last
      assert.equal(res.body.entry[1].response.status, '200 OK');
      assert.equal(res.body.entry[2].response.status, '200 OK');
      assert.equal(res.body.entry[3].response.status, '201 Created');
      assert.equal((await s.fhir('GET', `Patient/${a.id}`)).status, 410);
    });

    it('conditional updates: one that matches updates, ones that match nothing create (201, recorded as PUT), each referenced by its fullUrl', async () => {
      const existing = (await s.fhir('POST', 'Observation', { resourceType: 'Observation', identifier: [{ system: 'urn:lab:tx', value: 'L1' }], status: 'preliminary', code: { text: 'glucose' } })).body;
      const conditional = (value: string, uuid: string) => ({
        fullUrl: `urn:uuid:${uuid}`,
        resource: { resourceType: 'Observation', identifier: [{ system: 'urn:lab:tx', value }], status: 'final', code: { text: 'glucose' } },
        request: { method: 'PUT', url: `Observation?identifier=urn:lab:tx|${value}` },
      });
      const res = await s.fhir('POST', '', {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          conditional('L1', '6a4c0e7e-1111-4000-8000-000000000001'),
          conditional('L2', '6a4c0e7e-1111-4000-8000-000000000002'),
          conditional('L3', '6a4c0e7e-1111-4000-8000-000000000003'),
          {
            resource: { resourceType: 'DiagnosticReport', status: 'final', code: { text: 'panel' }, result: [1, 2, 3].map((n) => ({ reference: `urn:uuid:6a4c0e7e-1111-4000-8000-00000000000${n}` })) },
            request: { method: 'POST', url: 'DiagnosticReport' },
          },
        ],
      });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual(res.body.entry.map((e: any) => e.response.status), ['200 OK', '201 Created', '201 Created', '201 Created']);
      assert.match(res.body.entry[0].response.location, new RegExp(`Observation/${existing.id}/_history/2$`));
      const report = (await s.fhir('GET', res.body.entry[3].response.location.replace(/^.*\/fhir\//, '').replace(/\/_history\/\d+$/, ''))).body;
      const ids = res.body.entry.slice(0, 3).map((e: any) => /Observation\/([^/]+)/.exec(e.response.location)?.[1]);
      assert.deepEqual(report.result.map((r: any) => r.reference), ids.map((id: string) => `Observation/${id}`));
      const created = await s.fhir('GET', `Observation/${ids[1]}/_history`);
      assert.deepEqual(created.body.entry.map((e: any) => e.request.method), ['PUT']);
      assert.equal((await s.fhir('GET', 'Observation?identifier=urn:lab:tx|L3')).body.entry.length, 1, 'a created one is indexed');
    });

    it('concurrent transactions with the same conditional writes (update and If-None-Exist) create the record once', async () => {
      // Each transaction searches, finds nothing and creates: without a lock held from the search to the
      // commit, PostgreSQL ran them side by side and each created its own Observation (8 of 8 did, once
      // the pool had its connections: hence several rounds).
      const bundle = (round: number, n: number) => ({
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          {
            resource: { resourceType: 'Observation', identifier: [{ system: 'urn:lab:race', value: `U${round}` }], status: 'final', code: { text: `race ${n}` } },
            request: { method: 'PUT', url: `Observation?identifier=urn:lab:race|U${round}` },
          },
          {
            resource: { resourceType: 'Observation', identifier: [{ system: 'urn:lab:race', value: `C${round}` }], status: 'final', code: { text: `race ${n}` } },
            request: { method: 'POST', url: 'Observation', ifNoneExist: `identifier=urn:lab:race|C${round}` },
          },
        ],
      });
      for (let round = 0; round < 3; round++) {
        const responses = await Promise.all(Array.from({ length: 8 }, (_, n) => s.fhir('POST', '', bundle(round, n))));
        assert.deepEqual(responses.map((r) => r.status), Array(8).fill(200), JSON.stringify(responses.find((r) => r.status !== 200)?.body));
        for (const value of [`U${round}`, `C${round}`]) {
          const found = await s.fhir('GET', `Observation?identifier=urn:lab:race|${value}`);
          assert.equal(found.body.entry?.length, 1, `round ${round}: one Observation ${value}`);
        }
        const created = responses.filter((r) => r.body.entry[0].response.status.startsWith('201'));
        assert.equal(created.length, 1, `round ${round}: one transaction created U${round}, the others updated it`);
      }
    });

    it('a transaction PostgreSQL ends for a deadlock with another is run again, not answered with an error', { skip: backend === 'sqlite' && 'SQLite has one writer: transactions cannot deadlock' }, async () => {
      // Each transaction's Patient write takes two locks in opposite orders (a test observer), as the
      // conditional writes and patient-index keys of two transactions can: PostgreSQL ends one of them.
      // Nothing in common for the patient index to lock on (its blocking keys): only the test's locks cross.
      s.tessera.repo.observe(crossedLocks('DeadA', 'DeadB'));
      const patient = (family: string, given: string, birthDate: string, gender: string) => ({
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [{ resource: { resourceType: 'Patient', name: [{ family, given: [given] }], birthDate, gender }, request: { method: 'POST', url: 'Patient' } }],
      });
      const responses = await Promise.all([s.fhir('POST', '', patient('DeadA', 'Ann', '1961-01-01', 'female')), s.fhir('POST', '', patient('DeadB', 'Bob', '1992-02-02', 'male'))]);
      assert.deepEqual(responses.map((r) => r.status), [200, 200], JSON.stringify(responses.map((r) => r.body)));
      for (const family of ['DeadA', 'DeadB']) {
        assert.equal((await s.fhir('GET', `Patient?family=${family}`)).body.entry?.length, 1, `one Patient ${family}`);
      }
    });

    it('refuses two entries on the same resource', async () => {
      const res = await s.fhir('POST', '', {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          { resource: { resourceType: 'Patient', id: 'same' }, request: { method: 'PUT', url: 'Patient/same' } },
          { resource: { resourceType: 'Patient', id: 'same', active: true }, request: { method: 'PUT', url: 'Patient/same' } },
        ],
      });
      assert.equal(res.status, 400);
    });

    it('batch: entries succeed or fail independently', async () => {
      const before = await counts(s);
      const res = await s.fhir('POST', '', {
        resourceType: 'Bundle',
        type: 'batch',
        entry: [
          { resource: { resourceType: 'Patient', name: [{ family: 'BatchOk' }] }, request: { method: 'POST', url: 'Patient' } },
          { resource: { resourceType: 'Patient', gender: 'robot' }, request: { method: 'POST', url: 'Patient' } },
          { request: { method: 'GET', url: 'Patient/does-not-exist' } },
        ],
      });
      assert.equal(res.status, 200);
      assert.equal(res.body.type, 'batch-response');
      assert.equal(res.body.entry[0].response.status, '201 Created');
      assert.equal(res.body.entry[1].response.status, '422');
      assert.equal(res.body.entry[1].response.outcome.resourceType, 'OperationOutcome');
      assert.equal(res.body.entry[2].response.status, '404');
      assert.deepEqual(await counts(s), [before[0] + 1, before[1]]);
    });

    it('batch: an update entry names the version it wrote, as in a transaction', async () => {
      const created = (await s.fhir('POST', 'Patient', { resourceType: 'Patient', name: [{ family: 'BatchUpdate' }] })).body;
      const res = await s.fhir('POST', '', {
        resourceType: 'Bundle',
        type: 'batch',
        entry: [{ resource: { ...created, gender: 'other' }, request: { method: 'PUT', url: `Patient/${created.id}` } }],
      });
      assert.equal(res.body.entry[0].response.status, '200 OK');
      assert.match(res.body.entry[0].response.location ?? '', new RegExp(`Patient/${created.id}/_history/2$`));
    });

    it('rejects a Bundle that is not a transaction or batch, and entries without request', async () => {
      assert.equal((await s.fhir('POST', '', { resourceType: 'Bundle', type: 'collection', entry: [] })).status, 400);
      assert.equal((await s.fhir('POST', '', { resourceType: 'Patient' })).status, 400);
      const noRequest = await s.fhir('POST', '', { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: { resourceType: 'Patient' } }] });
      assert.equal(noRequest.status, 400);
    });
  });
}
