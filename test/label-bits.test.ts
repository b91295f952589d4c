import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Bundle } from '@medplum/fhirtypes';
import { openDatabase } from '../src/store/open.js';
import { LABEL_BITS_VERSION } from '../src/store/schema.js';
import { BACKENDS, testConfig } from './helpers/backends.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/**
 * The `labels` column (src/labels/label-bits.ts) lets the policy pass unlabelled rows without looking at
 * their index rows, so a row whose column missed its labels would be disclosed. Shown here: a store whose
 * labelled data was written before the column existed gets it computed by the migration, and a write that
 * changes a resource's labels changes the column. Data: a synthetic patient with a pulse (LOINC 8867-4)
 * and an HIV viral load (LOINC 20447-9), which the labelling step marks HIV / R.
 */
const idsOf = (b: Bundle) => (b.entry ?? []).filter((e) => e.search?.mode !== 'outcome').map((e) => e.resource?.id as string).sort();
const observation = (patient: string, code: string) => ({ resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code }] }, subject: { reference: `Patient/${patient}` }, valueQuantity: { value: 70 } });

for (const backend of BACKENDS) {
  describe(`label bits (${backend})`, () => {
    const store = testConfig(backend);
    let s: TestServer | undefined;
    after(async () => s?.close());

    it('are computed for data stored before the column existed, and follow later writes', async () => {
      const first = await startTestServer(backend, store);
      const patient = (await first.fhir('POST', 'Patient', { resourceType: 'Patient', name: [{ family: 'Quarry' }] })).body.id as string;
      const pulse = (await first.fhir('POST', 'Observation', observation(patient, '8867-4'))).body.id as string;
      const hiv = (await first.fhir('POST', 'Observation', observation(patient, '20447-9'))).body;
      assert.ok(hiv.meta.security.some((c: { code: string }) => c.code === 'HIV'));
      await first.tessera.close();

      // Back to a schema without the column: its migration is undone and forgotten (the later ones stay).
      const db = await openDatabase(store.config);
      assert.ok(LABEL_BITS_VERSION > 0);
      await db.exec('DROP INDEX resource_labelled');
      await db.exec('ALTER TABLE resource DROP COLUMN labels');
      await db.run('DELETE FROM schema_migrations WHERE version = ?', [LABEL_BITS_VERSION]);
      await db.close();

      s = await startTestServer(backend, store);
      const uncleared = { authorization: `Bearer ${await s.tokenFor('system/*.rs')}` };
      const search = await s.fhir('GET', `Observation?subject=Patient/${patient}`, undefined, uncleared);
      assert.deepEqual(idsOf(search.body), [pulse]);
      assert.equal((await s.fhir('GET', `Observation/${hiv.id}`, undefined, uncleared)).status, 404);

      // Recoded to a plain result, the same resource loses its labels and becomes readable.
      await s.fhir('PUT', `Observation/${hiv.id}`, { ...observation(patient, '8867-4'), id: hiv.id });
      assert.equal((await s.fhir('GET', `Observation/${hiv.id}`, undefined, uncleared)).status, 200);
      // And labelled again, withheld again.
      await s.fhir('PUT', `Observation/${hiv.id}`, { ...observation(patient, '20447-9'), id: hiv.id });
      assert.equal((await s.fhir('GET', `Observation/${hiv.id}`, undefined, uncleared)).status, 404);
    });
  });
}
