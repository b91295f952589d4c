import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { createClient } from '../src/security/clients.js';
import { createTessera } from '../src/server/tessera.js';
import { patientBundles } from '../src/synthetic/community.js';
import { BACKENDS, dropTestSchema, testConfig } from './helpers/backends.js';
import { getToken, startTestServer } from './helpers/server.js';

for (const backend of BACKENDS) {
  describe(`operations (${backend})`, () => {
    const cleanups: (() => Promise<void> | void)[] = [];
    after(async () => {
      for (const c of cleanups) await c();
    });

    it('/healthz and /readyz answer without a token', async () => {
      const s = await startTestServer(backend);
      cleanups.push(() => s.close());
      const health = await fetch(`${s.url}/healthz`);
      assert.equal(health.status, 200);
      const ready = await fetch(`${s.url}/readyz`);
      assert.equal(ready.status, 200);
      assert.deepEqual(await ready.json(), { status: 'ready' });
    });

    it('refuses a body over the size limit with 413 OperationOutcome', async () => {
      const store = testConfig(backend);
      store.config.bodyLimit = 10_000;
      const s = await startTestServer(backend, store);
      cleanups.push(() => s.close());
      const big = { resourceType: 'Patient', name: [{ family: 'x'.repeat(20_000) }] };
      const res = await s.fhir('POST', 'Patient', big);
      assert.equal(res.status, 413);
      assert.equal(res.body.resourceType, 'OperationOutcome');
    });

    it('structured JSON logs carry no PHI (no names, identifiers, bodies or query values)', async () => {
      const lines: string[] = [];
      const logStream = new Writable({
        write(chunk, _enc, done) {
          lines.push(String(chunk));
          done();
        },
      });
      const { config, cleanup } = testConfig(backend);
      config.logLevel = 'info';
      const tessera = await createTessera(config, { logStream });
      cleanups.push(async () => {
        await tessera.close();
        await dropTestSchema(config);
        cleanup();
      });
      const url = await tessera.app.listen({ port: 0, host: '127.0.0.1' });
      const client = await createClient(tessera.db, { name: 'log-test', scope: 'system/*.cruds' });
      const token = await getToken(url, client.clientId, client.clientSecret as string);
      const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' };
      const body = JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Zyxwvutsson' }], identifier: [{ value: 'SSN-987-65-4321' }] });
      const created = await fetch(`${url}/fhir/Patient`, { method: 'POST', headers, body });
      assert.equal(created.status, 201);
      await fetch(`${url}/fhir/Patient?family=Zyxwvutsson&identifier=SSN-987-65-4321`, { headers });
      await fetch(`${url}/fhir/Patient`, { method: 'POST', headers, body: '{"resourceType":"Patient","name":[{"family":"Zyxwvutsson"' });
      const log = lines.join('');
      assert.ok(lines.length >= 3, 'requests are logged');
      assert.ok(lines.every((l) => JSON.parse(l)), 'every line is JSON');
      assert.doesNotMatch(log, /Zyxwvutsson/);
      assert.doesNotMatch(log, /987-65-4321/);
      assert.doesNotMatch(log, new RegExp(client.clientSecret as string));
    });

    it('graceful shutdown lets an in-flight transaction finish and commit', async () => {
      const store = testConfig(backend);
      const tessera = await createTessera(store.config);
      let received!: () => void;
      const transactionReceived = new Promise<void>((resolve) => (received = resolve));
      tessera.app.addHook('preHandler', async (req) => {
        if (req.method === 'POST' && req.url === '/fhir') received();
      });
      const url = await tessera.app.listen({ port: 0, host: '127.0.0.1' });
      const client = await createClient(tessera.db, { name: 'shutdown', scope: 'system/*.cruds' });
      const token = await getToken(url, client.clientId, client.clientSecret as string);
      const [bundle] = [...patientBundles({ seed: 3, patients: 1, encountersPerPatient: [40, 40] })];
      const inFlight = fetch(`${url}/fhir`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json', prefer: 'return=minimal' },
        body: JSON.stringify(bundle),
      });
      await transactionReceived; // the body has been read and the handler is about to run
      const closing = tessera.close();
      const res = await inFlight;
      assert.equal(res.status, 200);
      await closing;
      // Reopen the same store: everything the transaction wrote is there.
      const reopened = await startTestServer(backend, store);
      cleanups.push(() => reopened.close());
      const count = await reopened.fhir('GET', 'Observation?_summary=count');
      assert.equal(count.body.total, bundle.entry!.filter((e) => e.resource!.resourceType === 'Observation').length);
    });
  });
}
