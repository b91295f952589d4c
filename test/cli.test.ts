import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { BACKENDS, testConfig } from './helpers/backends.js';
import { tessera } from './helpers/cli.js';
import { getToken, startTestServer } from './helpers/server.js';


for (const backend of BACKENDS) {
  describe(`tessera CLI (${backend})`, () => {
    const store = testConfig(backend);
    const env = { DATABASE_URL: store.config.databaseUrl ?? '', TESSERA_PG_SCHEMA: store.config.schema ?? '' };
    const data = ['--data', store.config.dataDir];
    const inputs = mkdtempSync(join(tmpdir(), 'tessera-cli-'));
    after(() => {
      store.cleanup();
      rmSync(inputs, { recursive: true, force: true });
    });

    it('import: NDJSON with a bad line imports the good lines, names file and line, exits non-zero', async () => {
      const lines = [
        JSON.stringify({ resourceType: 'Patient', id: 'nd-1', name: [{ family: 'Ndjson' }] }),
        '{"resourceType": "Patient", "id": "nd-2", ',
        JSON.stringify({ resourceType: 'Patient', id: 'nd-3', gender: 'robot' }),
        JSON.stringify({ resourceType: 'Observation', id: 'nd-4', status: 'final', code: { text: 'ok' }, subject: { reference: 'Patient/nd-1' } }),
      ];
      writeFileSync(join(inputs, 'data.ndjson'), `${lines.join('\n')}\n`);
      writeFileSync(join(inputs, 'broken.json'), '{"resourceType": ');
      writeFileSync(join(inputs, 'single.json'), JSON.stringify({ resourceType: 'Practitioner', id: 'pr-1', name: [{ family: 'Single' }] }));
      const result = await tessera(['import', ...data, inputs], env);
      assert.equal(result.code, 1);
      assert.match(result.stdout, /Imported 3 resources from 3 files/);
      assert.match(result.stdout, /ERROR .*data\.ndjson:2: Malformed JSON/);
      assert.match(result.stdout, /ERROR .*data\.ndjson:3: .*administrative-gender/);
      assert.match(result.stdout, /ERROR .*broken\.json: Malformed JSON/);
      assert.match(result.stdout, /3 error\(s\)/);
    });

    it('import: the bulk path labels what a resource takes its meaning from in the same Bundle, as the transaction path does', async () => {
      // A prescription as an EHR export carries it: the Medication (RxNorm 1819, buprenorphine: 42 CFR
      // Part 2) and the MedicationRequest naming it by urn:uuid, a plain-create Bundle (the bulk path).
      const bundle = {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          { fullUrl: 'urn:uuid:5b0c7e1a-0000-4000-8000-000000000001', resource: { resourceType: 'Patient', identifier: [{ system: 'urn:cli-test:mrn', value: 'bulk-1' }], name: [{ family: 'Bulkload' }] }, request: { method: 'POST', url: 'Patient' } },
          { fullUrl: 'urn:uuid:5b0c7e1a-0000-4000-8000-000000000002', resource: { resourceType: 'Medication', code: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '1819' }] } }, request: { method: 'POST', url: 'Medication' } },
          { resource: { resourceType: 'MedicationRequest', status: 'active', intent: 'order', subject: { reference: 'urn:uuid:5b0c7e1a-0000-4000-8000-000000000001' }, medicationReference: { reference: 'urn:uuid:5b0c7e1a-0000-4000-8000-000000000002' } }, request: { method: 'POST', url: 'MedicationRequest' } },
        ],
      };
      const dir = mkdtempSync(join(inputs, 'bulk-'));
      writeFileSync(join(dir, 'prescription.json'), JSON.stringify(bundle));
      // A store of its own: closing the server drops its PostgreSQL schema, which the later tests
      // of this suite (reading nd-1 imported above) must keep.
      const own = testConfig(backend);
      const ownEnv = { DATABASE_URL: own.config.databaseUrl ?? '', TESSERA_PG_SCHEMA: own.config.schema ?? '' };
      const result = await tessera(['import', '--data', own.config.dataDir, dir], ownEnv);
      assert.equal(result.code, 0, result.stdout + result.stderr);
      const s = await startTestServer(backend, own);
      try {
        const found = await s.fhir('GET', 'MedicationRequest?subject.identifier=urn:cli-test:mrn|bulk-1');
        assert.equal(found.body.entry?.length, 1, JSON.stringify(found.body));
        const labels = (found.body.entry[0].resource.meta.security ?? []).map((c: { code: string }) => c.code).sort();
        assert.deepEqual(labels, ['ETH', 'R']);
      } finally {
        await s.close();
      }
    });

    it('import: a path that does not exist is a clear error', async () => {
      const result = await tessera(['import', ...data, join(inputs, 'nope.json')], env);
      assert.notEqual(result.code, 0);
      assert.match(result.stderr, /no such file or directory: .*nope\.json/);
    });

    it('clients create prints JSON credentials that work; a bad scope is refused', async () => {
      const created = await tessera(['clients', 'create', ...data, '--name', 'cli-client', '--scope', 'system/Patient.rs'], env);
      assert.equal(created.code, 0, created.stderr);
      const client = JSON.parse(created.stdout);
      assert.ok(client.clientId && client.clientSecret);
      assert.equal(client.scope, 'system/Patient.rs');
      const bad = await tessera(['clients', 'create', ...data, '--name', 'x', '--scope', 'system/Patient.xyz'], env);
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /Invalid scope "system\/Patient\.xyz"/);

      const s = await startTestServer(backend, { config: store.config, cleanup: () => {} });
      try {
        const token = await getToken(s.url, client.clientId, client.clientSecret);
        const res = await fetch(`${s.base}/Patient/nd-1`, { headers: { authorization: `Bearer ${token}` } });
        assert.equal(res.status, 200);
        assert.equal(((await res.json()) as any).name[0].family, 'Ndjson');
        const obs = await fetch(`${s.base}/Observation/nd-4`, { headers: { authorization: `Bearer ${token}` } });
        assert.equal(obs.status, 403);
      } finally {
        await s.close();
      }
    });

    it('clients create --purposes and clients purposes: what a client may declare; unknown codes and clients refused', async () => {
      const created = await tessera(['clients', 'create', ...data, '--name', 'payer', '--scope', 'system/Patient.rs', '--purposes', 'HPAYMT'], env);
      assert.equal(created.code, 0, created.stderr);
      const { clientId } = JSON.parse(created.stdout);
      const changed = await tessera(['clients', 'purposes', clientId, 'HPAYMT,HOPERAT', ...data], env);
      assert.equal(changed.code, 0, changed.stderr);
      assert.match(changed.stdout, /purposes HPAYMT,HOPERAT/);
      assert.match((await tessera(['clients', 'purposes', clientId, 'any', ...data], env)).stdout, /purposes any/);
      const unknown = await tessera(['clients', 'purposes', clientId, 'MARKETING', ...data], env);
      assert.notEqual(unknown.code, 0);
      assert.match(unknown.stderr, /Unknown purpose of use "MARKETING"/);
      const missing = await tessera(['clients', 'purposes', 'no-such-client', 'TREAT', ...data], env);
      assert.notEqual(missing.code, 0);
      assert.match(missing.stderr, /no client no-such-client/);
    });
  });
}
