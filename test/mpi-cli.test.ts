import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { personFeatures } from '../src/mpi/features.js';
import { fullNameKey, NameFrequencies } from '../src/mpi/name-frequency.js';
import { createTessera } from '../src/server/tessera.js';
import { DEFAULT_THRESHOLDS } from '../src/mpi/match-model.js';
import { currentMatchModel, latestModel } from '../src/mpi/model-store.js';
import { identityPopulation } from '../src/synthetic/identity-population.js';
import { BACKENDS, dropTestSchema, testConfig } from './helpers/backends.js';
import { tessera } from './helpers/cli.js';
import { modelInForce } from '../src/cli/model-report.js';
import { privacyConsent } from './helpers/governance.js';
import { personRecords } from '../src/engine/request-policy.js';
import type { Patient } from '@medplum/fhirtypes';


/** `tessera mpi rebuild` and `tessera mpi train` on a store loaded by `tessera import`. */
for (const backend of BACKENDS) {
  describe(`tessera mpi (${backend})`, () => {
    const store = testConfig(backend);
    const env = { DATABASE_URL: store.config.databaseUrl ?? '', TESSERA_PG_SCHEMA: store.config.schema ?? '' };
    const data = ['--data', store.config.dataDir];
    const inputs = mkdtempSync(join(tmpdir(), 'tessera-mpi-cli-'));
    const records = [...identityPopulation({ seed: 7, persons: 300 })];
    after(async () => {
      await dropTestSchema(store.config);
      store.cleanup();
      rmSync(inputs, { recursive: true, force: true });
    });

    const indexState = async () => {
      const t = await createTessera({ ...store.config, mpi: false });
      try {
        const [{ sources }] = await t.db.query<{ sources: number }>('SELECT COUNT(*) AS sources FROM mpi_source');
        const [{ enterprises }] = await t.db.query<{ enterprises: number }>("SELECT COUNT(*) AS enterprises FROM mpi_enterprise WHERE status = 'active'");
        const [{ models }] = await t.db.query<{ models: number }>('SELECT COUNT(*) AS models FROM mpi_model');
        return { sources: Number(sources), enterprises: Number(enterprises), models: Number(models) };
      } finally {
        await t.close();
      }
    };

    /** Consents (deny one organisation) on one record of each of the first `n` people with several records: consent id to record id. */
    const writeConsents = async (n: number): Promise<Map<string, string>> => {
      const t = await createTessera({ ...store.config, mpi: false });
      try {
        const stored = await t.db.query<{ id: string; content: string }>("SELECT id, content FROM resource WHERE type = 'Patient' AND deleted = 0");
        const byMrn = new Map(stored.map((r) => [(JSON.parse(r.content) as Patient).identifier?.[0]?.value, r.id]));
        const perPerson = new Map<number, number>();
        records.forEach((r) => perPerson.set(r.personId, (perPerson.get(r.personId) ?? 0) + 1));
        const chosen = records.filter((r, i) => perPerson.get(r.personId)! > 1 && records.findIndex((o) => o.personId === r.personId) === i && r.cohort === 'ordinary').slice(0, n);
        const out = new Map<string, string>();
        for (const r of chosen) {
          const patient = byMrn.get(r.patient.identifier?.[0]?.value) as string;
          assert.ok(patient);
          const consent = await t.repo.create(privacyConsent(patient, { type: 'permit', provision: [{ type: 'deny', actor: [{ role: { text: 'recipient' }, reference: { reference: 'Organization/somewhere' } }] }] }));
          out.set(consent.id as string, patient);
        }
        return out;
      } finally {
        await t.close();
      }
    };
    /** How many consents' rows differ from their person's records, and how many cover more than the record named. */
    const consentState = async (consents: Map<string, string>) => {
      const t = await createTessera({ ...store.config, mpi: false });
      try {
        let mismatched = 0;
        let widened = 0;
        for (const [consent, patient] of consents) {
          const rows = (await t.db.query<{ patient_id: string }>('SELECT DISTINCT patient_id FROM consent_rule WHERE consent_id = ?', [consent])).map((r) => r.patient_id).sort();
          const person = (await personRecords(t.repo, patient)).sort();
          if (rows.join() !== person.join()) mismatched++;
          if (rows.length > 1) widened++;
        }
        return { mismatched, widened };
      } finally {
        await t.close();
      }
    };
    /** Rows as a store kept them before consents followed the index: the record named only. */
    const staleConsents = async (consents: Map<string, string>) => {
      const t = await createTessera({ ...store.config, mpi: false });
      try {
        for (const [consent, patient] of consents) await t.db.run('DELETE FROM consent_rule WHERE consent_id = ? AND patient_id <> ?', [consent, patient]);
      } finally {
        await t.close();
      }
    };

    it('rebuild links the Patients a store took in while the index was off, consents following; a second run keeps every link and repairs consent rows', async () => {
      writeFileSync(join(inputs, 'people.ndjson'), `${records.map((r) => JSON.stringify(r.patient)).join('\n')}\n`);
      const imported = await tessera(['import', ...data, join(inputs, 'people.ndjson')], { ...env, TESSERA_MPI: '0' });
      assert.equal(imported.code, 0, imported.stdout + imported.stderr);
      assert.deepEqual(await indexState(), { sources: 0, enterprises: 0, models: 0 });
      // Consents written while the index was off cover the record they name only, until the rebuild links it.
      const consents = await writeConsents(20);
      assert.deepEqual(await consentState(consents), { mismatched: 0, widened: 0 });

      const rebuilt = await tessera(['mpi', 'rebuild', ...data], env);
      assert.equal(rebuilt.code, 0, rebuilt.stderr);
      assert.match(rebuilt.stdout, /Model kept: the index holds 0 source records; the model is learned from 1,000 on/, 'loaded with the index off, the index holds nothing to learn from yet: the model in force stays');
      const people = new Set(records.map((r) => r.personId)).size;
      const first = await indexState();
      assert.equal(first.sources, records.length);
      assert.ok(first.enterprises < records.length && first.enterprises >= people * 0.95, `${first.enterprises} enterprises for ${people} people`);
      assert.match(rebuilt.stdout, new RegExp(`Re-linked ${records.length} source records in [\\d.]+ s \\(\\d+ records/s\\); ${first.enterprises} enterprise identities`));
      const linked = await consentState(consents);
      assert.equal(linked.mismatched, 0, 'every consent covers its person as linked');
      assert.ok(linked.widened >= 15, `${linked.widened} of 20 consents reach the person's other records`);
      assert.match(rebuilt.stdout, /; 20 consents re-expanded over their person/);
      // Rows expanded before consents followed identity changes: the next rebuild repairs them.
      await staleConsents(consents);
      assert.equal((await consentState(consents)).mismatched, linked.widened);

      const again = await tessera(['mpi', 'rebuild', ...data], env);
      assert.equal(again.code, 0);
      const second = await indexState();
      assert.equal(second.sources, first.sources);
      assert.ok(second.enterprises <= first.enterprises, 'linked records keep their enterprise; a record alone may join one');
      assert.equal((await consentState(consents)).mismatched, 0, 'the rebuild expanded every consent again');
    });

    it('rebuild fills the name keys of records written before migration 5; until then the name-frequency weight stays off', async () => {
      // The name key of the population's first record, counted as the linker counts it.
      const key = fullNameKey(personFeatures(records[0].patient));
      const keyState = async (clear: boolean) => {
        const t = await createTessera({ ...store.config, mpi: false });
        try {
          if (clear) await t.db.run('UPDATE mpi_source SET name_key = NULL');
          const [{ unkeyed, people }] = await t.db.query<{ unkeyed: number; people: number }>('SELECT COUNT(*) - COUNT(name_key) AS unkeyed, COUNT(DISTINCT enterprise_id) AS people FROM mpi_source');
          return { unkeyed: Number(unkeyed), people: Number(people), counted: await new NameFrequencies().count(t.db, key, '') };
        } finally {
          await t.close();
        }
      };
      const cleared = await keyState(true);
      assert.equal(cleared.unkeyed, records.length);
      assert.equal(cleared.counted, undefined, 'no weight while the keys are missing');
      const rebuilt = await tessera(['mpi', 'rebuild', ...data], env);
      assert.equal(rebuilt.code, 0, rebuilt.stderr);
      const filled = await keyState(false);
      assert.equal(filled.unkeyed, 0);
      // Counted by people (enterprise identities), not records: one person's copies are one bearer (issue 16).
      assert.ok(filled.counted && filled.counted.records === filled.people && filled.counted.others >= 1, JSON.stringify(filled.counted));
    });

    it('train: u from random pairs, m by EM on candidate pairs; --dry-run stores nothing; a stored model is used from the next start; bad input is refused', async () => {
      const dry = await tessera(['mpi', 'train', ...data, '--pairs', '5000', '--dry-run'], env);
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdout, /^field +level +before: m +u +weight +after: m +u +weight$/m);
      const row = /^birthDate +exact +([\d.]+) +([\d.e+-]+) +(-?[\d.]+) +([\d.]+) +([\d.e+-]+) +(-?[\d.]+)$/m.exec(dry.stdout);
      assert.ok(row, dry.stdout);
      // Measured on random pairs, u of an exact birth date is far below the priors' 0.002, so its weight rises.
      assert.ok(Number(row[5]) < 0.001 && Number(row[6]) > Number(row[3]), row[0]);
      assert.match(dry.stdout, /u from \d+ random pairs; m from \d+ candidate pairs, \d+ EM iterations; estimated match share among candidates [\d.]+%/);
      assert.match(dry.stdout, /thresholds \(score\): before auto-link 20\.0, review 14\.0; after auto-link -?[\d.]+, review -?[\d.]+/);
      assert.match(dry.stdout, /Dry run: nothing stored/);
      assert.equal((await indexState()).models, 0);

      const stored = await tessera(['mpi', 'train', ...data, '--pairs', '5000'], env);
      assert.equal(stored.code, 0, stored.stderr);
      assert.match(stored.stdout, /Stored as the new model/);
      assert.equal((await indexState()).models, 1);
      const t = await createTessera(store.config);
      try {
        const used = await currentMatchModel(t.db);
        const stored = await latestModel(t.db);
        assert.ok(stored && stored.thresholds.autoLink !== DEFAULT_THRESHOLDS.autoLink);
        assert.deepEqual(used.thresholds, stored.thresholds);
        assert.deepEqual(used.probabilities, stored.probabilities);
      } finally {
        await t.close();
      }

      const bad = await tessera(['mpi', 'train', ...data, '--pairs', 'lots'], env);
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /--pairs must be a whole number of at least 100, not "lots"/);
    });

    it('rebuild learns the model from the index first once it holds 1,000 records, and relinks with it; --no-train keeps the model in force', async () => {
      const more = [...identityPopulation({ seed: 8, persons: 300 })].map((r, i) => ({ ...r.patient, identifier: [{ ...r.patient.identifier![0], value: `more-${i}` }] }));
      writeFileSync(join(inputs, 'more.ndjson'), `${more.map((p) => JSON.stringify(p)).join('\n')}\n`);
      const imported = await tessera(['import', ...data, join(inputs, 'more.ndjson')], env);
      assert.equal(imported.code, 0, imported.stdout + imported.stderr);
      const before = await indexState();
      assert.ok(before.sources >= 1_000, `${before.sources} source records`);

      const kept = await tessera(['mpi', 'rebuild', ...data, '--no-train'], env);
      assert.equal(kept.code, 0, kept.stderr);
      assert.doesNotMatch(kept.stdout, /Learning the match model/);
      assert.equal((await indexState()).models, before.models);

      const rebuilt = await tessera(['mpi', 'rebuild', ...data], env);
      assert.equal(rebuilt.code, 0, rebuilt.stderr);
      assert.match(rebuilt.stdout, /^birthDate +exact +[\d.]+ /m, 'the learned model is printed level by level');
      assert.match(rebuilt.stdout, /Stored as the new model; relinking with it/);
      assert.match(rebuilt.stdout, new RegExp(`Re-linked ${before.sources} source records`));
      const after = await indexState();
      assert.equal(after.models, before.models + 1);
      const t = await createTessera({ ...store.config, mpi: false });
      try {
        const learned = await latestModel(t.db);
        assert.ok(learned && learned.thresholds.autoLink !== DEFAULT_THRESHOLDS.autoLink, 'thresholds from the posterior, not the priors\'');
        // What `tessera serve` says at its start: the learned model, and where hand priors still stand in.
        assert.match(modelInForce(learned), new RegExp(`model ${learned.version}, learned .* candidate pairs; hand-set priors for what the data was too small to learn: .*email`));
        assert.match(modelInForce(undefined), /hand-set priors \(no model learned from this index yet/);
      } finally {
        await t.close();
      }
    });
  });
}
