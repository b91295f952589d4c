import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Patient } from '@medplum/fhirtypes';
import { createTessera } from '../src/server/tessera.js';
import { latestModel, type StoredModel } from '../src/mpi/model-store.js';
import { identityPopulation } from '../src/synthetic/identity-population.js';
import { Random } from '../src/synthetic/random.js';
import { BACKENDS, testConfig } from './helpers/backends.js';
import { tessera } from './helpers/cli.js';
import { MR } from './helpers/people.js';
import { startTestServer } from './helpers/server.js';

const NATIONAL = 'urn:example:national-id';
const MEMBER = 'urn:example:insurer:member-id';

/**
 * Data: the seeded synthetic population of src/synthetic/identity-population.ts (400 people, about 800
 * records), each record given two identifier systems of different reliability, generated here: a national
 * id the person keeps for life (on 80 % of records, one digit mistyped on 1 in 50), and an insurance
 * member id reissued at every change of plan (half of a person's records carry an old one). The model
 * must learn that a national id differing is strong evidence of two people and a member id differing is
 * weak: with one `identifier` field for all systems (the model before this) the two would share weights.
 */
function withIdentifiers(patient: Patient, personId: number, random: Random): Patient {
  const identifiers = [...(patient.identifier ?? [])];
  if (random.chance(0.8)) {
    let national = String(700_000_000 + personId * 7919);
    if (random.chance(0.02)) national = national.slice(0, -1) + String((Number(national.at(-1)) + 1) % 10);
    identifiers.push({ system: NATIONAL, value: national });
  }
  const plan = random.chance(0.5) ? 0 : 1 + Math.floor(random.next() * 5);
  // A reissued number shares nothing with the old one (not one keystroke apart).
  identifiers.push({ system: MEMBER, value: `M${String(((personId + 1) * 7919 + plan * 104_729) % 99_999_989).padStart(8, '0')}` });
  return { ...patient, identifier: identifiers };
}

const weight = (model: StoredModel, system: string, level: 'exact' | 'one-edit' | 'different') => {
  const { m, u } = model.identifierSystems[system][level];
  return Math.log2(m / u);
};

for (const backend of BACKENDS) {
  describe(`MPI learns each identifier system's weights and its thresholds from the data (${backend})`, () => {
    const store = testConfig(backend);
    const env = { DATABASE_URL: store.config.databaseUrl ?? '', TESSERA_PG_SCHEMA: store.config.schema ?? '' };
    const data = ['--data', store.config.dataDir];
    const inputs = mkdtempSync(join(tmpdir(), 'tessera-mpi-identifiers-'));
    const random = new Random(1616);
    const records = [...identityPopulation({ seed: 16, persons: 400 })].map((r) => withIdentifiers(r.patient, r.personId, random));
    let server: Awaited<ReturnType<typeof startTestServer>> | undefined;
    after(async () => {
      // The server's close drops the test schema and deletes the store; without one, do it here.
      if (server) await server.close();
      else store.cleanup();
      rmSync(inputs, { recursive: true, force: true });
    });

    const stored = async () => {
      const t = await createTessera({ ...store.config, mpi: false });
      try {
        return await latestModel(t.db);
      } finally {
        await t.close();
      }
    };

    it('tessera mpi train learns m and u per identifier system, derives the thresholds from the posterior for the target precision, and stores them', async () => {
      writeFileSync(join(inputs, 'people.ndjson'), `${records.map((p) => JSON.stringify(p)).join('\n')}\n`);
      const imported = await tessera(['import', ...data, join(inputs, 'people.ndjson')], { ...env, TESSERA_MPI: '1' });
      assert.equal(imported.code, 0, imported.stdout + imported.stderr);

      const trained = await tessera(['mpi', 'train', ...data, '--pairs', '20000'], env);
      assert.equal(trained.code, 0, trained.stderr);
      assert.match(trained.stdout, new RegExp(`^identifier system ${NATIONAL}$`, 'm'));
      assert.match(trained.stdout, new RegExp(`^identifier system ${MEMBER}$`, 'm'));
      assert.match(trained.stdout, /thresholds from the posterior match probability: links expected 0\.999 one person; links and review hold 0\.995 of the expected matches/);
      // No phone-less or e-mail-less population here is too small for those: what the data lacks is said.
      assert.match(trained.stdout, /not learned \(too few pairs; .*hand priors on a first training\): .*email: 0 candidate pairs/);
      const model = await stored();
      assert.ok(model);
      assert.deepEqual(Object.keys(model.identifierSystems).sort(), [MEMBER, NATIONAL].sort());
      // A national id differing says two people; a member id differing says little (it is reissued).
      assert.ok(weight(model, NATIONAL, 'different') < weight(model, MEMBER, 'different') - 2, `${weight(model, NATIONAL, 'different')} vs ${weight(model, MEMBER, 'different')}`);
      assert.ok(weight(model, MEMBER, 'different') > -2, `member id different: ${weight(model, MEMBER, 'different')}`);
      assert.ok(weight(model, NATIONAL, 'exact') > 10, `national id exact: ${weight(model, NATIONAL, 'exact')}`);
      assert.equal(model.targets?.precision, 0.999);
      assert.ok(model.thresholds.review <= model.thresholds.autoLink);

      // A stricter precision target asks a higher score for a link.
      const strict = await tessera(['mpi', 'train', ...data, '--pairs', '20000', '--target-precision', '0.999999', '--dry-run'], env);
      assert.equal(strict.code, 0, strict.stderr);
      const autoLink = Number(/after auto-link (-?[\d.]+)/.exec(strict.stdout)?.[1]);
      assert.ok(autoLink > model.thresholds.autoLink, `${autoLink} against ${model.thresholds.autoLink}`);
      const bad = await tessera(['mpi', 'train', ...data, '--target-precision', '2'], env);
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /--target-precision must be a number between 0\.5 and 1 \(exclusive\), not "2"/);
    });

    it('the server links with the stored model: each identifier system weighed by its own learned weight', async () => {
      const model = await stored();
      assert.ok(model);
      store.config.mpi = true;
      server = await startTestServer(backend, store);
      // A person the population does not hold, registered twice: one national id, two member ids.
      const registration = (source: string, member: string): Patient => ({
        resourceType: 'Patient',
        identifier: [
          { type: MR, system: `urn:example:${source}:mrn`, value: `${source}-1` },
          { system: NATIONAL, value: '912345678' },
          { system: MEMBER, value: member },
        ],
        name: [{ family: 'Quennell', given: ['Ottoline'] }],
        birthDate: '1961-04-17',
        gender: 'female',
        telecom: [{ system: 'phone', value: '(555) 201-7788' }],
        address: [{ line: ['7 Larkspur Row'], city: 'Ashby', postalCode: '40114' }],
      });
      const first = await server.fhir('POST', 'Patient', registration('clinic-a', 'M-OLD'));
      assert.equal(first.status, 201);
      const second = await server.fhir('POST', 'Patient', registration('clinic-b', 'M-NEW'));
      assert.equal(second.status, 201);
      const events = await server.fhir('GET', `Patient/$mpi-events?action=auto-linked&_count=1000`);
      assert.equal(events.status, 200);
      const linked = (events.body.parameter as { part: { name: string; valueReference?: { reference: string }; valueString?: string }[] }[])
        .map((e) => ({ patient: e.part.find((p) => p.name === 'patient')?.valueReference?.reference, detail: e.part.find((p) => p.name === 'detail')?.valueString }))
        .find((e) => e.patient === `Patient/${second.body.id}`);
      assert.ok(linked?.detail, 'the second registration linked to the first');
      const contributions = (JSON.parse(linked.detail) as { contributions: { field: string; level: string; weight: number; system?: string }[] }).contributions;
      const of = (system: string) => contributions.find((c) => c.field === 'identifier' && c.system === system);
      assert.equal(of(NATIONAL)?.level, 'exact');
      assert.ok(Math.abs((of(NATIONAL)?.weight ?? NaN) - weight(model, NATIONAL, 'exact')) < 1e-9, JSON.stringify(of(NATIONAL)));
      assert.equal(of(MEMBER)?.level, 'different');
      assert.ok(Math.abs((of(MEMBER)?.weight ?? NaN) - weight(model, MEMBER, 'different')) < 1e-9, JSON.stringify(of(MEMBER)));
    });
  });
}

describe('tessera mpi evaluate --train: a model learned from the sample itself, reported beside the priors', () => {
  it('FEBRL data set 1 (bench/data/febrl, BSD-3-Clause): the learned model links with the targets of issue 16', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'evaluate-train-'));
    try {
      const out = await tessera(['mpi', 'evaluate', '--truth', 'bench/data/febrl/febrl_dataset1.csv', '--train', '--pairs', '50000', '--report', join(dir, 'report.md')], { TESSERA_DATA: '', DATABASE_URL: '' });
      assert.equal(out.code, 0, out.stderr);
      assert.match(out.stdout, /Loading 1000 records one by one \(hand-set priors\)/);
      assert.match(out.stdout, /Loading 1000 records one by one \(the model learned from it\)/);
      // FEBRL's id number column is one identifier system, learned on its own; FEBRL has no phones (hand prior kept, said so).
      assert.match(out.stdout, /^identifier system urn:tessera:sample-id:soc_sec_id$/m);
      assert.match(out.stdout, /not learned \(too few pairs.*phone: 0 candidate pairs/);
      const runs = [...out.stdout.matchAll(/precision ([\d.]+), recall ([\d.]+), F1 ([\d.]+)/g)].map((m) => ({ precision: Number(m[1]), recall: Number(m[2]), f1: Number(m[3]) }));
      assert.equal(runs.length, 2, out.stdout);
      const [priors, learned] = runs;
      assert.ok(learned.precision >= 0.999 && learned.f1 >= 0.97, JSON.stringify(learned));
      assert.ok(learned.recall >= priors.recall, `learned ${learned.recall} against priors ${priors.recall}`);
      const report = readFileSync(join(dir, 'report.md'), 'utf8');
      assert.match(report, /# Matching quality on febrl_dataset1\.csv \(hand-set priors\)/);
      assert.match(report, /# Matching quality on febrl_dataset1\.csv \(model learned from the sample\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
