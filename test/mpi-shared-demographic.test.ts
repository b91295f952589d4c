import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { firstNameDateKey } from '../src/mpi/blocking.js';
import { personFeatures } from '../src/mpi/features.js';
import { NameFrequencies } from '../src/mpi/name-frequency.js';
import { sharedBirthDatePeople } from '../src/synthetic/shared-demographic.js';
import { BACKENDS } from './helpers/backends.js';
import { startMpiTestServer, type TestServer } from './helpers/server.js';

/**
 * 10,000 different people sharing one birth date (issue 16 item 4), through the API in batch Bundles:
 * the index's stored rows stay bounded per record (no pair rows for namesakes far below review, at most
 * five review pairs a record, a fixed number of blocking keys) and none of them is linked to another.
 * Data: src/synthetic/shared-demographic.ts (Vietnamese surname frequencies, common given names: hundreds
 * share a full name). Create time is measured by `npm run bench:mpi-shared`, not asserted here.
 */
const N = 10_000;

for (const backend of BACKENDS) {
  describe(`master patient index: ${N} records sharing one birth date (${backend})`, () => {
    let s: TestServer;
    before(async () => {
      s = await startMpiTestServer(backend);
    });
    after(async () => s?.close());

    it('bounded pair and key rows per record, no false link', { timeout: 1_200_000 }, async () => {
      const people = sharedBirthDatePeople(N);
      for (let start = 0; start < N; start += 100) {
        const entry = people.slice(start, start + 100).map((resource) => ({ resource, request: { method: 'POST', url: 'Patient' } }));
        const res = await s.fhir('POST', '', { resourceType: 'Bundle', type: 'batch', entry });
        assert.equal(res.status, 200);
      }
      const count = async (sql: string) => Number((await s.tessera.db.query<{ n: number }>(sql))[0].n);
      assert.equal(await count('SELECT COUNT(*) AS n FROM mpi_source'), N);
      const pairs = await count('SELECT COUNT(*) AS n FROM mpi_pair');
      assert.ok(pairs <= 5 * N, `at most 5 review pairs per record (${pairs} for ${N})`);
      const keys = await count('SELECT COUNT(*) AS n FROM mpi_block');
      assert.ok(keys <= 8 * N, `a fixed number of blocking keys per record (${keys} for ${N})`);
      assert.equal(await count("SELECT COUNT(*) AS n FROM mpi_enterprise WHERE status = 'active'"), N, 'different people, never linked');
      // Namesakes far below review leave no row: pairs are the review band only.
      assert.equal(await count('SELECT COUNT(*) AS n FROM mpi_pair WHERE score < 14'), 0);
    });

    it('people sharing first name and birth date are counted only as far as the match decision needs', async () => {
      // Hundreds share each first name and the birth date here; counting them all made each create slower
      // as they grew (bench:mpi-shared). The matcher asks for `enough` (MatchModel.decisiveDateSharers + 1).
      const key = firstNameDateKey(personFeatures(sharedBirthDatePeople(1)[0])) as string;
      const [{ n }] = await s.tessera.db.query<{ n: number }>('SELECT COUNT(DISTINCT s.enterprise_id) AS n FROM mpi_block b JOIN mpi_source s ON s.patient_id = b.patient_id WHERE b.key = ?', [key]);
      const people = Number(n);
      assert.ok(people > 100, `a key hundreds share (${people})`);
      const names = new NameFrequencies();
      assert.equal(await names.keySharers(s.tessera.db, key, ''), people, 'counted exactly when no bound is asked');
      for (const enough of [1, 2, 3, 50]) {
        const counted = await names.keySharers(s.tessera.db, key, '', enough);
        assert.ok(counted >= enough && counted <= people, `at least ${enough}, at most all: ${counted}`);
      }
      assert.equal(await names.keySharers(s.tessera.db, key, '', people + 1), people, 'exact below the bound');
    });
  });
}
