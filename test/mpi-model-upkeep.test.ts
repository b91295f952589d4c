import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Bundle, Patient } from '@medplum/fhirtypes';
import { latestModel, saveModel } from '../src/mpi/model-store.js';
import { storeAddressOf } from '../src/store/store-address.js';
import { learningDue, ModelUpkeep } from '../src/mpi/model-upkeep.js';
import { PatientLinker } from '../src/mpi/patient-linker.js';
import { identityPopulation } from '../src/synthetic/identity-population.js';
import { createTessera } from '../src/server/tessera.js';
import { BACKENDS } from './helpers/backends.js';
import { startMpiTestServer, type TestServer } from './helpers/server.js';

/**
 * Data: the seeded synthetic population of src/synthetic/identity-population.ts (500 people, about 1,000
 * records: typing errors, nicknames, moves, missing fields, twins, Jr/Sr, people sharing common names and
 * birth dates), POSTed through the HTTP API in transaction Bundles of 50, in generation order. The truth
 * (which person each record is) is the generator's; the index never sees it.
 */
const PERSONS = 500;
/** Below a deployment's 1,000, so that the test's population holds several times it. */
const MIN_RECORDS = 400;

describe('learningDue', () => {
  it('learns first at the minimum, then each time the index has doubled since the model in force was learned', () => {
    assert.equal(learningDue(999, undefined), false);
    assert.equal(learningDue(1_000, undefined), true);
    assert.equal(learningDue(1_999, { records: 1_000 }), false);
    assert.equal(learningDue(2_000, { records: 1_000 }), true);
    // A model stored without its count (trained before upkeep existed) stays until a rebuild or training.
    assert.equal(learningDue(50_000, { records: undefined }), false);
  });
});

for (const backend of BACKENDS) {
  describe(`The match model follows the index as it grows (${backend})`, () => {
    let server: TestServer;
    let upkeep: ModelUpkeep;
    let linker: PatientLinker;
    const personOf = new Map<string, number>();

    const openQuestions = async () => {
      const res = await server.fhir('GET', 'Patient/$mpi-review-queue?_count=1');
      assert.equal(res.status, 200);
      return Number((res.body.parameter as { name: string; valueInteger?: number }[]).find((p) => p.name === 'total')?.valueInteger);
    };
    /** Pairs of records in one identity: all of them, and those that are one person. */
    const linkedPairs = async () => {
      const rows = await server.tessera.db.query<{ patient_id: string; enterprise_id: string }>('SELECT patient_id, enterprise_id FROM mpi_source');
      const members = new Map<string, string[]>();
      for (const r of rows) members.set(r.enterprise_id, [...(members.get(r.enterprise_id) ?? []), r.patient_id]);
      let linked = 0;
      let correct = 0;
      for (const ids of members.values()) {
        for (let i = 0; i < ids.length; i++) {
          for (let j = i + 1; j < ids.length; j++) {
            linked++;
            if (personOf.get(ids[i]) === personOf.get(ids[j])) correct++;
          }
        }
      }
      return { linked, correct };
    };

    before(async () => {
      server = await startMpiTestServer(backend);
      linker = server.tessera.repo.observerOf(PatientLinker) as PatientLinker;
      upkeep = new ModelUpkeep(server.tessera.repo, linker, { store: storeAddressOf(server.tessera.config), minRecords: MIN_RECORDS });
      const records = [...identityPopulation({ seed: 53, persons: PERSONS })];
      for (let i = 0; i < records.length; i += 50) {
        const chunk = records.slice(i, i + 50);
        const bundle: Bundle = { resourceType: 'Bundle', type: 'transaction', entry: chunk.map((r) => ({ resource: r.patient as Patient, request: { method: 'POST', url: 'Patient' } })) };
        const res = await server.fhir('POST', '', bundle);
        assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 500));
        (res.body as Bundle).entry?.forEach((e, k) => personOf.set(/Patient\/([^/]+)/.exec(e.response?.location ?? '')?.[1] as string, chunk[k].personId));
      }
    });
    after(() => server?.close());

    it('learns a model from the index (off the request thread) once it holds enough records, puts it in force, and links the review queue\'s records the learned model is sure of, without a false link', async () => {
      assert.equal(linker.model.version, undefined, 'the hand priors are in force on a fresh store');
      const questionsBefore = await openQuestions();
      const before = await linkedPairs();
      assert.equal(before.correct, before.linked, 'the priors link no two people');
      assert.ok(questionsBefore > 0, 'the priors leave questions for a steward');

      const running = upkeep.run();
      // Learning compares a million random pairs on a thread of its own: the server answers meanwhile.
      const answered = server.fhir('GET', `Patient/${[...personOf.keys()][0]}`).then((res) => `answered ${res.status}`);
      assert.equal(await Promise.race([answered, running.then(() => 'learned first')]), 'answered 200');
      const result = await running;
      const stored = await latestModel(server.tessera.db);
      assert.ok(result.adopted?.learnedHere, JSON.stringify(result));
      assert.equal(result.adopted.version, stored?.version);
      assert.equal(stored?.records, personOf.size, 'the model says how many records it was learned from');
      assert.equal(linker.model.version, stored?.version, 'the learned model is in force');
      assert.ok(result.rematched > 0 && result.linked > 0, JSON.stringify(result));

      const after = await linkedPairs();
      const questionsAfter = await openQuestions();
      assert.equal(after.correct, after.linked, 'no false link under the learned model');
      assert.ok(after.linked > before.linked, `${after.linked} pairs linked after, ${before.linked} before`);
      assert.ok(questionsAfter < questionsBefore, `${questionsAfter} open questions after, ${questionsBefore} before`);
    });

    it('does not learn again before the index has doubled, and puts in force a model another process stored', async () => {
      const again = await upkeep.run();
      assert.deepEqual(again, { rematched: 0, linked: 0 });

      // Another Tessera process on the same store learned (or an operator trained) a newer model.
      const current = await latestModel(server.tessera.db);
      assert.ok(current);
      await saveModel(server.tessera.db, current, current.records);
      const newer = await latestModel(server.tessera.db);
      const adopted = await upkeep.run();
      assert.equal(adopted.adopted?.learnedHere, false);
      assert.equal(adopted.adopted?.version, newer?.version);
      assert.equal(linker.model.version, newer?.version);
    });

    it('runs on its timer in the background and stops with the server', async () => {
      const current = await latestModel(server.tessera.db);
      assert.ok(current);
      await saveModel(server.tessera.db, current, current.records);
      const seen = new Promise<number | undefined>((resolve) => upkeep.start(20, (err) => { throw err; }, (r) => resolve(r.adopted?.version)));
      const version = await seen;
      await upkeep.stop();
      assert.equal(version, (await latestModel(server.tessera.db))?.version);
    });

    it('two processes learning at once each store a model, and both then put the newer one in force', { skip: backend !== 'postgres' && 'several processes share PostgreSQL only' }, async () => {
      const current = await latestModel(server.tessera.db);
      assert.ok(current);
      // Stored as learned from 10 records: the index has doubled since, so both learn.
      await saveModel(server.tessera.db, current, 10);
      const second = await createTessera({ ...server.tessera.config, mpi: true }, { auditThread: false });
      try {
        const secondLinker = second.repo.observerOf(PatientLinker) as PatientLinker;
        const upkeeps = [upkeep, new ModelUpkeep(second.repo, secondLinker, { store: storeAddressOf(second.config), minRecords: MIN_RECORDS })];
        const results = await Promise.all(upkeeps.map((u) => u.run()));
        assert.deepEqual(results.map((r) => r.adopted?.learnedHere), [true, true], JSON.stringify(results));
        const newest = await latestModel(server.tessera.db);
        assert.equal(Math.max(...results.map((r) => r.adopted?.version ?? 0)), newest?.version);
        // Each one's next run adopts the newest stored model (the one that stored it already has it in force).
        await Promise.all(upkeeps.map((u) => u.run()));
        assert.deepEqual([linker.model.version, secondLinker.model.version], [newest?.version, newest?.version]);
        const pairs = await linkedPairs();
        assert.equal(pairs.correct, pairs.linked, 'no false link after both rematched');
      } finally {
        await second.close();
      }
    });

    it('ends a learning in progress when it stops, storing nothing (a closing server does not wait it out)', async () => {
      const current = await latestModel(server.tessera.db);
      assert.ok(current);
      // Stored as learned from 10 records: the index has doubled since, so the next run learns again.
      await saveModel(server.tessera.db, current, 10);
      const before = await latestModel(server.tessera.db);
      const stopping = new ModelUpkeep(server.tessera.repo, linker, { store: storeAddressOf(server.tessera.config), minRecords: MIN_RECORDS });
      const errors: unknown[] = [];
      stopping.start(1, (err) => errors.push(err));
      // Learning takes tens of seconds on its thread; the run is well inside it by now.
      await new Promise((resolve) => setTimeout(resolve, 300));
      await stopping.stop();
      assert.deepEqual(errors, []);
      assert.equal((await latestModel(server.tessera.db))?.version, before?.version, 'no model stored by the learning that was ended');
    });

    it('started again while a stop still waits for its run, keeps one series of runs, and its learning is not ended by that stop', async () => {
      const current = await latestModel(server.tessera.db);
      assert.ok(current);
      await saveModel(server.tessera.db, current, 10); // learning due again: each run learns for seconds
      const saved = await latestModel(server.tessera.db);
      /** Counts runs in progress at once (instrumentation around the real run). */
      class CountingUpkeep extends ModelUpkeep {
        inProgress = 0;
        most = 0;
        override async run(signal?: AbortSignal) {
          this.most = Math.max(this.most, ++this.inProgress);
          try {
            return await super.run(signal);
          } finally {
            this.inProgress--;
          }
        }
      }
      const restarted = new CountingUpkeep(server.tessera.repo, linker, { store: storeAddressOf(server.tessera.config), minRecords: MIN_RECORDS });
      const errors: unknown[] = [];
      restarted.start(1, (err) => errors.push(err));
      await new Promise((resolve) => setTimeout(resolve, 300)); // the first run is learning
      const stopped = restarted.stop();
      restarted.start(1, (err) => errors.push(err)); // before that stop has finished
      await stopped;
      // The first stop's run has ended; the second start's runs go on, one at a time, learning.
      await new Promise((resolve) => setTimeout(resolve, 500));
      const learning = restarted.inProgress;
      await restarted.stop();
      assert.deepEqual(errors, [], 'no run of the second start was ended as if stopped, nor failed');
      assert.equal(learning, 1, 'the second start is learning');
      assert.equal(restarted.most, 1, 'never two runs at once (the first start\'s timer was not revived)');
      assert.equal((await latestModel(server.tessera.db))?.version, saved?.version, 'nothing stored by the learnings that were ended');
    });
  });
}
