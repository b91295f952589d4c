import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Bundle, BundleEntry } from '@medplum/fhirtypes';
import { BundleGroupWriter, type BundleOutcome } from '../src/ingest/bundle-group-writer.js';
import { createTessera, type Tessera } from '../src/server/tessera.js';
import { BACKENDS, dropTestSchema, testConfig } from './helpers/backends.js';

/**
 * Bulk loads write many Bundles per database transaction, first without savepoints; when anything in the
 * group fails, the group is rolled back and redone with a savepoint per Bundle. Whatever path it takes,
 * each Bundle must end up exactly as if it had been posted alone.
 */
const patient = (family: string): BundleEntry => ({
  resource: { resourceType: 'Patient', name: [{ family }] },
  request: { method: 'POST', url: 'Patient' },
});
const badPatient = (family: string): BundleEntry => ({
  resource: { resourceType: 'Patient', name: [{ family }], gender: 'robot' } as never,
  request: { method: 'POST', url: 'Patient' },
});
const bundle = (type: 'transaction' | 'batch', entry: BundleEntry[]): Bundle => ({ resourceType: 'Bundle', type, entry });

for (const backend of BACKENDS) {
  describe(`bulk Bundle groups (${backend})`, () => {
    const store = testConfig(backend);
    let tessera: Tessera;
    before(async () => (tessera = await createTessera(store.config)));
    after(async () => {
      await tessera?.close();
      await dropTestSchema(store.config);
      store.cleanup();
    });

    async function families(): Promise<string[]> {
      const rows = await tessera.db.query<{ content: string }>("SELECT content FROM resource WHERE type = 'Patient'");
      return rows.map((r) => JSON.parse(r.content).name[0].family).sort();
    }

    async function write(bundles: Bundle[]): Promise<BundleOutcome[]> {
      const writer = new BundleGroupWriter(tessera.repo);
      const outcomes: BundleOutcome[] = [];
      for (const [i, b] of bundles.entries()) {
        await writer.add(b, (outcome) => (outcomes[i] = outcome));
      }
      await writer.flush();
      return outcomes;
    }

    it('commits a clean group in one go', async () => {
      const outcomes = await write([bundle('transaction', [patient('A1'), patient('A2')]), bundle('transaction', [patient('A3')])]);
      assert.ok(outcomes.every((o) => 'response' in o));
      assert.deepEqual(await families(), ['A1', 'A2', 'A3']);
    });

    it('undoes only the failing transaction Bundle of a group, and keeps the batch entries that succeed', async () => {
      const outcomes = await write([
        bundle('transaction', [patient('B1')]),
        bundle('transaction', [patient('B2'), badPatient('B3')]),
        bundle('batch', [patient('B4'), badPatient('B5'), patient('B6')]),
        bundle('transaction', [patient('B7')]),
      ]);
      assert.ok('response' in outcomes[0] && 'response' in outcomes[3]);
      assert.ok('error' in outcomes[1]);
      assert.match((outcomes[1] as { error: Error }).error.message, /administrative-gender/);
      const batch = (outcomes[2] as { response: Bundle }).response;
      assert.deepEqual(batch.entry?.map((e) => e.response?.status.slice(0, 3)), ['201', '422', '201']);
      assert.deepEqual(await families(), ['A1', 'A2', 'A3', 'B1', 'B4', 'B6', 'B7']);
      const history = await tessera.db.query<{ n: number }>("SELECT COUNT(*) AS n FROM resource_history WHERE type = 'Patient'");
      assert.equal(Number(history[0].n), 7, 'no history rows survive from the rolled-back attempt');
    });
  });
}
