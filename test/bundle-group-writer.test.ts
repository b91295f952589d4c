import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Bundle, BundleEntry, Patient, Subscription } from '@medplum/fhirtypes';
import { SIGNING_SECRET, SUBSCRIBER } from '../src/notify/subscription-registry.js';
import { addParticipant } from '../src/participants/participants.js';
import { isGolden } from '../src/mpi/source-identity.js';
import { BundleGroupWriter, DEFAULT_GROUP_RESOURCES, type BundleOutcome } from '../src/ingest/bundle-group-writer.js';
import { PreparePool } from '../src/ingest/prepare-pool.js';
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

for (const backend of BACKENDS) for (const withWorkers of [false, true]) {
  describe(`bulk Bundle groups (${backend}${withWorkers ? ', prepared on a worker thread' : ''})`, () => {
    const store = testConfig(backend);
    let tessera: Tessera;
    let pool: PreparePool | undefined;
    before(async () => {
      tessera = await createTessera(store.config);
      pool = withWorkers ? new PreparePool(1) : undefined;
    });
    after(async () => {
      await pool?.close();
      await tessera?.close();
      await dropTestSchema(store.config);
      store.cleanup();
    });

    /** The Patients the Bundles wrote (not the golden records the master patient index keeps beside them). */
    async function sourcePatients(): Promise<Patient[]> {
      const rows = await tessera.db.query<{ content: string }>("SELECT content FROM resource WHERE type = 'Patient' AND deleted = 0");
      return rows.map((r) => JSON.parse(r.content) as Patient).filter((p) => !isGolden(p));
    }

    async function families(): Promise<string[]> {
      return (await sourcePatients()).map((p) => p.name?.[0]?.family as string).sort();
    }

    async function write(bundles: Bundle[]): Promise<BundleOutcome[]> {
      const writer = new BundleGroupWriter(tessera.repo, DEFAULT_GROUP_RESOURCES, pool);
      const outcomes: BundleOutcome[] = [];
      for (const [i, b] of bundles.entries()) {
        await writer.add(b, (outcome) => (outcomes[i] = outcome));
      }
      await writer.flush();
      return outcomes;
    }

    it('a record re-sent under the same MRN updates the stored one, in a later group and within one group', async () => {
      const withMrn = (family: string): BundleEntry => ({
        resource: { resourceType: 'Patient', identifier: [{ system: 'urn:example:bulk:mrn', value: 'B-1' }], name: [{ family }] },
        request: { method: 'POST', url: 'Patient' },
      });
      await write([bundle('transaction', [withMrn('Resentfirst')])]);
      const outcomes = await write([bundle('transaction', [withMrn('Resentsecond')]), bundle('transaction', [withMrn('Resentthird')])]);
      assert.ok(outcomes.every((o) => 'response' in o), JSON.stringify(outcomes));
      const stored = (await sourcePatients()).filter((p) => p.identifier?.[0]?.value === 'B-1');
      assert.equal(stored.length, 1);
      assert.equal(stored[0].name?.[0]?.family, 'Resentthird');
      assert.equal(stored[0].meta?.versionId, '3');
      await tessera.repo.delete('Patient', stored[0].id as string);
    });

    it('a Subscription in a bulk Bundle has its signing secret and headers taken out, as on every write path', async () => {
      // A participant's subscription as an operator's bulk export would carry it (synthetic values).
      const { participant } = await addParticipant(tessera.repo, { name: `Bulk Practice ${withWorkers}`, mrnSystem: 'urn:example:bulk-practice:mrn' });
      const subscription = {
        resourceType: 'Subscription', status: 'requested', reason: 'bulk-loaded', criteria: 'Observation?code=http://loinc.org|4548-4',
        extension: [{ url: SUBSCRIBER, valueReference: { reference: `Organization/${participant.organizationId}` } }],
        channel: { type: 'rest-hook', endpoint: 'http://127.0.0.1:9/hook', payload: 'application/fhir+json', header: ['Authorization: Bearer bulk-token-9'], extension: [{ url: SIGNING_SECRET, valueString: 'bulk-s3cret' }] },
      } as Subscription;
      const [outcome] = await write([bundle('transaction', [{ resource: subscription, request: { method: 'POST', url: 'Subscription' } }])]);
      assert.ok(!('error' in outcome), JSON.stringify(outcome));
      const stored = await tessera.db.query<{ content: string }>("SELECT content FROM resource WHERE type = 'Subscription' AND content LIKE '%bulk-loaded%'");
      assert.equal(stored.length, 1);
      assert.doesNotMatch(stored[0].content, /bulk-s3cret|bulk-token-9/);
      const [kept] = await tessera.db.query<{ secret: string; headers: string }>('SELECT secret, headers FROM notify_subscription WHERE id = ?', [(JSON.parse(stored[0].content) as Subscription).id as string]);
      assert.equal(kept.secret, 'bulk-s3cret', 'the registry keeps the secret for signing');
      assert.match(kept.headers, /bulk-token-9/);
    });

    it('commits a clean group in one go', async () => {
      const outcomes = await write([bundle('transaction', [patient('A1'), patient('A2')]), bundle('transaction', [patient('A3')])]);
      assert.ok(outcomes.every((o) => 'response' in o));
      assert.deepEqual(await families(), ['A1', 'A2', 'A3']);
    });

    it('answers a create-only Bundle with 201s, locations and version 1, references rewritten', async () => {
      const [outcome] = await write([
        bundle('transaction', [
          {
            fullUrl: 'urn:uuid:0b6e9a52-41f4-4c5b-9a55-111111111111',
            resource: { resourceType: 'Practitioner', name: [{ family: 'R1' }] },
            request: { method: 'POST', url: 'Practitioner' },
          },
          {
            resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, performer: [{ reference: 'urn:uuid:0b6e9a52-41f4-4c5b-9a55-111111111111' }] },
            request: { method: 'POST', url: 'Observation' },
          } as BundleEntry,
        ]),
      ]);
      const entries = (outcome as { response: Bundle }).response.entry ?? [];
      assert.deepEqual(entries.map((e) => [e.response?.status, e.response?.etag]), [['201 Created', 'W/"1"'], ['201 Created', 'W/"1"']]);
      const [practitionerType, practitionerId] = (entries[0].response?.location ?? '').replace('urn:tessera/', '').split('/');
      assert.equal(practitionerType, 'Practitioner');
      const observationId = (entries[1].response?.location ?? '').split('/')[2];
      const observation = await tessera.repo.read('Observation', observationId);
      assert.equal((observation as { performer: { reference: string }[] }).performer[0].reference, `Practitioner/${practitionerId}`);
      assert.equal(observation.meta?.versionId, '1');
      const byPerformer = await tessera.repo.sql.query<{ id: string }>(
        "SELECT id FROM sp_reference WHERE type = 'Observation' AND code = 'performer' AND target_type = 'Practitioner' AND target_id = ?",
        [practitionerId],
      );
      assert.deepEqual(byPerformer.map((r) => r.id), [observationId]);
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
      // Nothing of the rolled-back attempt survives: every Patient row is a source the test wrote (the
      // deleted re-sent one included) or the golden record of an enterprise the index holds, and the index
      // knows exactly the live sources.
      const rows = await tessera.db.query<{ id: string; content: string | null; deleted: number }>("SELECT id, content, deleted FROM resource WHERE type = 'Patient'");
      const enterprises = new Set((await tessera.db.query<{ enterprise_id: string }>('SELECT enterprise_id FROM mpi_enterprise')).map((r) => r.enterprise_id));
      const sources = rows.filter((r) => !enterprises.has(r.id));
      assert.equal(sources.length, 8, 'seven live sources and the deleted re-sent record');
      assert.ok(sources.every((r) => r.content === null || !isGolden(JSON.parse(r.content) as Patient)), 'every golden record belongs to an enterprise');
      const indexed = (await tessera.db.query<{ patient_id: string }>('SELECT patient_id FROM mpi_source')).map((r) => r.patient_id).sort();
      assert.deepEqual(indexed, sources.filter((r) => Number(r.deleted) === 0).map((r) => r.id).sort());
      const [history] = await tessera.db.query<{ n: number }>(
        `SELECT COUNT(*) AS n FROM resource_history WHERE type = 'Patient' AND id IN (${sources.map(() => '?').join(',')})`,
        sources.map((r) => r.id),
      );
      assert.equal(Number(history.n), 3, 'only the re-sent record has earlier versions');
    });
  });
}
