import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
// fhir-kit-client is an independent FHIR client (not written here): it checks our wire format.
import { Client } from 'fhir-kit-client';
import { BACKENDS } from './helpers/backends.js';
import { startTestServer, type TestServer } from './helpers/server.js';

for (const backend of BACKENDS) {
  describe(`interoperability with fhir-kit-client (${backend})`, () => {
    let s: TestServer;
    let client: any;
    before(async () => {
      s = await startTestServer(backend);
      client = new Client({ baseUrl: s.base, bearerToken: s.token });
    });
    after(async () => s?.close());

    it('reads the CapabilityStatement', async () => {
      const cs = await client.capabilityStatement();
      assert.equal(cs.fhirVersion, '4.0.1');
    });

    it('create, read, update, history, search and delete', async () => {
      const created = await client.create({ resourceType: 'Patient', body: { resourceType: 'Patient', name: [{ family: 'Kit', given: ['Fhir'] }], gender: 'other' } });
      assert.ok(created.id);
      const read = await client.read({ resourceType: 'Patient', id: created.id });
      assert.equal(read.name[0].family, 'Kit');
      const updated = await client.update({ resourceType: 'Patient', id: created.id, body: { ...read, active: true } });
      assert.equal(updated.meta.versionId, '2');
      const history = await client.history({ resourceType: 'Patient', id: created.id });
      assert.equal(history.total, 2);
      const vread = await client.vread({ resourceType: 'Patient', id: created.id, version: '1' });
      assert.equal(vread.active, undefined);
      const found = await client.search({ resourceType: 'Patient', searchParams: { family: 'kit', gender: 'other' } });
      assert.equal(found.entry.length, 1);
      assert.equal(found.entry[0].resource.id, created.id);
      await client.delete({ resourceType: 'Patient', id: created.id });
      await assert.rejects(client.read({ resourceType: 'Patient', id: created.id }), (err: any) => err.response?.status === 410);
    });

    it('transaction and paging through nextPage', async () => {
      const entries = Array.from({ length: 7 }, (_, i) => ({
        resource: { resourceType: 'Practitioner', name: [{ family: `Paged${i}` }] },
        request: { method: 'POST', url: 'Practitioner' },
      }));
      const response = await client.transaction({ body: { resourceType: 'Bundle', type: 'transaction', entry: entries } });
      assert.equal(response.entry.length, 7);
      const page1 = await client.search({ resourceType: 'Practitioner', searchParams: { name: 'paged', _count: 3, _sort: 'family' } });
      assert.equal(page1.entry.length, 3);
      const page2 = await client.nextPage({ bundle: page1 });
      assert.deepEqual(page2.entry.map((e: any) => e.resource.name[0].family), ['Paged3', 'Paged4', 'Paged5']);
    });
  });
}
