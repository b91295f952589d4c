/**
 * npm run bench:mpi [-- --only-febrl | --no-febrl] [--store DIR] [-- --persons 50000 --backend sqlite|postgres --matches 1000 --keep] [--in-process] [--no-rebuild] [--train [--train-pairs N]]
 *
 * The master patient index's evaluation harness: generates a seeded population of people as several
 * sources register them (src/synthetic/identity-population.ts: typos, nicknames, swapped day and month,
 * missing fields, twins, Jr/Sr, common names) with the truth of who is who, loads every record through
 * the real HTTP API (batch Bundles of Patient creates; each is linked in its write transaction), then
 * scores the enterprise identities the index built against the truth: pairwise precision, recall and F1
 * of the links, the false links by cohort, and the review queue. Also measures Patient/$match latency
 * on the loaded population and the batch rebuild's throughput. Prints Markdown and writes bench/results/mpi-<backend>.json.
 *
 * First, the labelled FEBRL data sets 1 and 2 (bench/data/febrl; `--no-febrl` skips them, `--only-febrl`
 * runs nothing else): each record POSTed one by one in file order into a fresh store through the engine's
 * write path (in process, as `tessera mpi evaluate` does), linked incrementally, then scored with
 * pairwise precision, recall, F1, pairs completeness and the review share; then loaded again with the
 * model learned from that index (unlabelled, as `tessera mpi train` learns it).
 *
 * `--in-process` loads through the same write path without HTTP (transaction Bundles of 500, as a bulk
 * feed would), for populations too large to load through the API in reasonable time (1M people);
 * `--no-rebuild` skips the rebuild step. `--train` trains a model on the loaded index as `tessera mpi
 * train` does (unlabelled), loads the same population into a fresh store with that model, and scores it
 * beside the priors.
 *
 * `--store DIR` measures only Patient/$match, on a SQLite store an earlier run kept (`--keep`), with the
 * model stored there: loading a million people takes over an hour, a $match series seconds.
 */
import { arg } from './args.js';
import type { Bundle, Patient } from '@medplum/fhirtypes';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { labelledFromCsv } from '../src/mpi/labelled-records.js';
import { evaluateSample, type SampleEvaluation } from '../src/cli/sample-evaluation.js';
import { COMMIT as commit, MACHINE as machine } from './environment.js';
import { createClient } from '../src/security/clients.js';
import { PatientLinker } from '../src/mpi/patient-linker.js';
import { rebuildIndex } from '../src/mpi/rebuild.js';
import { PRIORS } from '../src/mpi/match-model.js';
import { PRIOR_MODEL, saveModel } from '../src/mpi/model-store.js';
import { trainFromIndex, type TrainedModel } from '../src/mpi/training.js';
import { formatModelChange } from '../src/cli/model-report.js';
import { processBundle } from '../src/engine/bundle-processor.js';
import { dispatch } from '../src/engine/fhir-router.js';
import { createTessera } from '../src/server/tessera.js';
import { systemRequest } from '../src/ingest/system-request.js';
import { identityPopulation, type Cohort, type GeneratedRecord } from '../src/synthetic/identity-population.js';
import { Random } from '../src/synthetic/random.js';
import type { TesseraConfig } from '../src/server/config.js';
import { configFromEnv } from '../src/server/config.js';
import { benchConfig, dropBenchSchema } from './config.js';
import { clientToken, httpRequest } from './http-client.js';
import { startServerProcess, type ServerProcess } from './server-process.js';
import { fmt, percentiles } from './stats.js';


const PERSONS = Number(arg('persons', '20000'));
const BACKEND = arg('backend', 'sqlite') as 'sqlite' | 'postgres';
const MATCHES = Number(arg('matches', '1000'));
if (!Number.isInteger(MATCHES) || MATCHES < 1) throw new Error(`--matches must be a whole number of queries, at least 1 (got ${arg('matches', '1000')})`);
const KEEP = process.argv.includes('--keep');
const IN_PROCESS = process.argv.includes('--in-process');
const REBUILD = !process.argv.includes('--no-rebuild');
/** Train a model on the loaded index, then load the population again with it and score both. */
const TRAIN = process.argv.includes('--train');
const TRAIN_PAIRS = Number(arg('train-pairs', '200000'));
const SEED = 20261125;
const FEBRL = !process.argv.includes('--no-febrl');
const ONLY_FEBRL = process.argv.includes('--only-febrl');
/** A kept SQLite store (`--keep`) to measure Patient/$match on, instead of loading a population. */
const STORE = arg('store', '');
const FEBRL_FILES = ['febrl_dataset1.csv', 'febrl_dataset2.csv'];
/** Patients per batch Bundle and batches in flight: enough to keep the server busy, as a feed would. */
const BATCH = 100;
const IN_FLIGHT = 4;

/** Who a loaded record really is (the generated record without its Patient, which 2M records cannot keep). */
type Truth = Pick<GeneratedRecord, 'personId' | 'cohort' | 'source'>;
const truthOf = (r: GeneratedRecord): Truth => ({ personId: r.personId, cohort: r.cohort, source: r.source });

interface Loaded {
  /** Source Patient id -> who it is. */
  truth: Map<string, Truth>;
  seconds: number;
}

/** Records the batch loaded, from its answer entries' locations. */
function recordAnswers(truth: Map<string, Truth>, records: GeneratedRecord[], answer: Bundle): void {
  answer.entry?.forEach((e, i) => {
    if (!e.response?.status.startsWith('20')) throw new Error(`entry ${i}: ${JSON.stringify(e.response)}`);
    truth.set(/Patient\/([^/]+)/.exec(e.response.location ?? '')?.[1] ?? '', truthOf(records[i]));
  });
}

/** The population through the write path in process: transaction Bundles of 500 Patients. */
async function loadInProcess(config: TesseraConfig): Promise<Loaded> {
  const tessera = await createTessera(config);
  const truth = new Map<string, Truth>();
  const started = performance.now();
  let lastReport = Date.now();
  let batch: GeneratedRecord[] = [];
  const send = async (records: GeneratedRecord[]) => {
    const bundle: Bundle = { resourceType: 'Bundle', type: 'transaction', entry: records.map((r) => ({ resource: r.patient, request: { method: 'POST', url: 'Patient' } })) };
    recordAnswers(truth, records, await processBundle(tessera.repo, systemRequest(bundle), dispatch));
  };
  for (const record of identityPopulation({ seed: SEED, persons: PERSONS })) {
    batch.push(record);
    if (batch.length === 500) {
      await send(batch);
      batch = [];
      if (Date.now() - lastReport > 30_000) {
        process.stderr.write(`  loaded ${truth.size} records (${Math.round(truth.size / ((performance.now() - started) / 1000))}/s)\n`);
        lastReport = Date.now();
      }
    }
  }
  if (batch.length) await send(batch);
  await tessera.close();
  return { truth, seconds: (performance.now() - started) / 1000 };
}

async function load(url: string, token: string): Promise<Loaded> {
  const truth = new Map<string, Truth>();
  const started = performance.now();
  const inFlight = new Set<Promise<void>>();
  let batch: GeneratedRecord[] = [];
  let lastReport = Date.now();
  const send = async (records: GeneratedRecord[]): Promise<void> => {
    const bundle: Bundle = { resourceType: 'Bundle', type: 'batch', entry: records.map((r) => ({ resource: r.patient, request: { method: 'POST', url: 'Patient' } })) };
    const res = await httpRequest('POST', `${url}/fhir`, { authorization: `Bearer ${token}` }, JSON.stringify(bundle));
    if (res.status !== 200) throw new Error(`batch: HTTP ${res.status} ${res.body.slice(0, 500)}`);
    recordAnswers(truth, records, JSON.parse(res.body) as Bundle);
  };
  for (const record of identityPopulation({ seed: SEED, persons: PERSONS })) {
    batch.push(record);
    if (batch.length === BATCH) {
      const p: Promise<void> = send(batch).finally(() => inFlight.delete(p));
      inFlight.add(p);
      batch = [];
      if (inFlight.size >= IN_FLIGHT) await Promise.race(inFlight);
      if (Date.now() - lastReport > 10_000) {
        process.stderr.write(`  loaded ${truth.size} records (${Math.round(truth.size / ((performance.now() - started) / 1000))}/s)\n`);
        lastReport = Date.now();
      }
    }
  }
  if (batch.length) await send(batch);
  await Promise.all(inFlight);
  return { truth, seconds: (performance.now() - started) / 1000 };
}

const pairs = (n: number): number => (n * (n - 1)) / 2;

/** Pairwise scores of the enterprise identities against the truth. */
function evaluate(truth: Map<string, Truth>, membership: { patient_id: string; enterprise_id: string }[]) {
  const byEnterprise = new Map<string, Truth[]>();
  for (const m of membership) {
    const record = truth.get(m.patient_id);
    if (record) byEnterprise.set(m.enterprise_id, [...(byEnterprise.get(m.enterprise_id) ?? []), record]);
  }
  const byPerson = new Map<number, number>();
  for (const record of truth.values()) byPerson.set(record.personId, (byPerson.get(record.personId) ?? 0) + 1);
  let predicted = 0;
  let truePositive = 0;
  const falseByCohort = new Map<Cohort, number>();
  for (const records of byEnterprise.values()) {
    predicted += pairs(records.length);
    const perPerson = new Map<number, Truth[]>();
    for (const r of records) perPerson.set(r.personId, [...(perPerson.get(r.personId) ?? []), r]);
    for (const same of perPerson.values()) truePositive += pairs(same.length);
    const people = [...perPerson.values()];
    for (let i = 0; i < people.length; i++) {
      for (let j = i + 1; j < people.length; j++) {
        const cohort = people[i][0].cohort === people[j][0].cohort ? people[i][0].cohort : 'ordinary';
        falseByCohort.set(cohort, (falseByCohort.get(cohort) ?? 0) + people[i].length * people[j].length);
      }
    }
  }
  const actual = [...byPerson.values()].reduce((sum, n) => sum + pairs(n), 0);
  const precision = predicted ? truePositive / predicted : 1;
  const recall = actual ? truePositive / actual : 1;
  return {
    records: truth.size,
    persons: byPerson.size,
    enterprises: byEnterprise.size,
    truePairs: actual,
    linkedPairs: predicted,
    truePositive,
    precision,
    recall,
    f1: precision + recall ? (2 * precision * recall) / (precision + recall) : 0,
    falseLinksByCohort: Object.fromEntries(falseByCohort),
  };
}

/**
 * What a steward would find in the queue: pairs that are one person (links the model missed) and pairs
 * that are two people, with the vetoes that sent them there (a pair without a veto scored in the review band).
 */
function reviewComposition(truth: Map<string, Truth>, open: { patient_a: string; patient_b: string; detail: string }[]) {
  const tally = { samePerson: 0, differentPeople: 0, samePersonWhy: {} as Record<string, number>, differentPeopleWhy: {} as Record<string, number> };
  for (const pair of open) {
    const [a, b] = [truth.get(pair.patient_a), truth.get(pair.patient_b)];
    if (!a || !b) continue;
    const same = a.personId === b.personId;
    const why = (JSON.parse(pair.detail) as { vetoes?: string[] }).vetoes?.join('; ') || 'score in the review band';
    const counts = same ? tally.samePersonWhy : tally.differentPeopleWhy;
    counts[why] = (counts[why] ?? 0) + 1;
    if (same) tally.samePerson++;
    else tally.differentPeople++;
  }
  return tally;
}

type MatchLatency = ReturnType<typeof percentiles> & {
  /** Server CPU per query, ms (all threads): less disturbed by a shared machine than latency. */
  cpuMs: number;
};

/** $match queries: a person's record as yet another source would send it (no identifier it knows). */
async function matchLatency(server: ServerProcess, token: string): Promise<MatchLatency> {
  const rnd = new Random(11);
  const queries: Patient[] = [];
  for (const record of identityPopulation({ seed: SEED + 1, persons: MATCHES * 2 })) {
    if (queries.length < MATCHES && rnd.chance(0.5)) queries.push({ ...record.patient, identifier: undefined });
  }
  const samples: number[] = [];
  // The first queries warm the path up: 50, or a fifth of a short series, so that any --matches leaves samples.
  const warmUp = Math.min(50, Math.floor(queries.length / 5));
  let cpuAtWarm = 0;
  for (const [i, patient] of queries.entries()) {
    if (i === warmUp) cpuAtWarm = (await server.cpuMs()).total;
    const body = JSON.stringify({ resourceType: 'Parameters', parameter: [{ name: 'resource', resource: patient }] });
    const started = performance.now();
    const res = await httpRequest('POST', `${server.url}/fhir/Patient/$match`, { authorization: `Bearer ${token}` }, body);
    if (res.status !== 200) throw new Error(`$match: HTTP ${res.status} ${res.body.slice(0, 300)}`);
    if (i >= warmUp) samples.push(performance.now() - started);
  }
  const cpuMs = ((await server.cpuMs()).total - cpuAtWarm) / samples.length;
  return { ...percentiles(samples), cpuMs };
}

/** `tessera serve` on the store in a process of its own, and a token of the bench's client. */
async function authorisedServer(config: TesseraConfig, client: { clientId: string; clientSecret?: string }): Promise<{ server: ServerProcess; token: string }> {
  const server = await startServerProcess(config);
  return { server, token: await clientToken(server.url, client) };
}

interface Evaluation {
  loaded: Loaded;
  scores: ReturnType<typeof evaluate>;
  review: { openPairs: number; recordsInReview: number; share: number };
  queue: ReturnType<typeof reviewComposition>;
  match: MatchLatency;
  rebuild?: { records: number; seconds: number };
  /** Trained on this run's index after it was scored (`--train`). */
  trained?: TrainedModel;
}

/** One load of the population into a fresh store with `model` (the priors when absent), scored against the truth. */
async function evaluateModel(model: TrainedModel | undefined, train: boolean): Promise<Evaluation> {
  const { config, cleanup } = benchConfig(BACKEND);
  const tessera = await createTessera(config);
  const client = await createClient(tessera.db, { name: 'bench-mpi', scope: 'system/*.cruds' });
  if (model) await saveModel(tessera.db, model);
  await tessera.close();
  let inProcess: Loaded | undefined;
  if (IN_PROCESS) {
    process.stderr.write(`[${BACKEND}] loading ${PERSONS} people in process\n`);
    inProcess = await loadInProcess(config);
  }
  const { server, token } = await authorisedServer(config, client);

  if (!inProcess) process.stderr.write(`[${BACKEND}] loading ${PERSONS} people through the API${model ? ' with the trained model' : ''}\n`);
  const loaded = inProcess ?? (await load(server.url, token));
  const match = await matchLatency(server, token);
  await server.stop();

  const reader = await createTessera(config);
  // Batch mode on the loaded population: every source record through the linker again.
  if (REBUILD) process.stderr.write(`[${BACKEND}] tessera mpi rebuild\n`);
  const rebuild = REBUILD ? await rebuildIndex(reader.repo, reader.repo.observerOf(PatientLinker) as PatientLinker) : undefined;
  const membership = await reader.db.query<{ patient_id: string; enterprise_id: string }>('SELECT patient_id, enterprise_id FROM mpi_source');
  // The queue as a steward sees it: open pairs whose records are still in two enterprises.
  const openPairRows = await reader.db.query<{ patient_a: string; patient_b: string; detail: string }>(
    `SELECT p.patient_a, p.patient_b, p.detail FROM mpi_pair p JOIN mpi_source sa ON sa.patient_id = p.patient_a
       JOIN mpi_source sb ON sb.patient_id = p.patient_b AND sb.enterprise_id <> sa.enterprise_id WHERE p.status = 'open'`,
  );
  let trained: TrainedModel | undefined;
  if (train) {
    process.stderr.write(`[${BACKEND}] tessera mpi train\n`);
    trained = await trainFromIndex(reader.db, PRIORS, { maxPairs: TRAIN_PAIRS });
  }
  await reader.close();
  const scores = evaluate(loaded.truth, membership);
  const queue = reviewComposition(loaded.truth, openPairRows);
  const inReview = new Set(openPairRows.flatMap((r) => [r.patient_a, r.patient_b])).size;

  if (KEEP) {
    // The truth beside the kept store, to study the errors: patient id -> person, cohort, source.
    writeFileSync(`${config.dataDir}/truth.json`, JSON.stringify(Object.fromEntries([...loaded.truth].map(([id, r]) => [id, [r.personId, r.cohort, r.source]]))));
    console.error(`kept: ${BACKEND === 'postgres' ? `schema ${config.schema}` : config.dataDir}`);
  } else {
    if (BACKEND === 'postgres' && config.schema) {
      await dropBenchSchema(config.schema);
    }
    cleanup();
  }
  const review = { openPairs: openPairRows.length, recordsInReview: inReview, share: inReview / scores.records };
  return { loaded, scores, review, queue, match, rebuild, trained };
}

function report(label: string, e: Evaluation): void {
  const { scores, review, queue, rebuild, match, loaded } = e;
  console.log(`\n## ${label}\n`);
  const how = IN_PROCESS ? 'in process (transaction Bundles of 500, no HTTP)' : `through the API (batch Bundles of ${BATCH}, ${IN_FLIGHT} in flight)`;
  console.log(`- loaded ${how}: ${Math.round(scores.records / loaded.seconds)} records/s (${loaded.seconds.toFixed(1)} s)`);
  console.log(`- enterprise identities: ${scores.enterprises.toLocaleString('en')}; true pairs ${scores.truePairs}, linked pairs ${scores.linkedPairs}, correct ${scores.truePositive}`);
  console.log(`- **precision ${scores.precision.toFixed(5)}, recall ${scores.recall.toFixed(4)}, F1 ${scores.f1.toFixed(4)}**`);
  console.log(`- false links (pairs) by cohort: ${JSON.stringify(scores.falseLinksByCohort)}`);
  console.log(`- review queue: ${review.openPairs} open pairs, ${review.recordsInReview} records in them (${(review.share * 100).toFixed(2)}% of records)`);
  console.log(`- in the queue: ${queue.samePerson} pairs are one person, ${queue.differentPeople} two people; why, one person: ${JSON.stringify(queue.samePersonWhy)}; two people: ${JSON.stringify(queue.differentPeopleWhy)}`);
  if (rebuild) {
    console.log(`- batch rebuild (\`tessera mpi rebuild\`, in process): ${Math.round(rebuild.records / rebuild.seconds)} records/s (${rebuild.seconds.toFixed(1)} s); the scores above are after it`);
  }
  printMatch(match);
}

function printMatch(match: MatchLatency): void {
  console.log(`- Patient/$match (HTTP, sequential, n=${match.n}): p50 ${fmt(match.p50)} ms, p95 ${fmt(match.p95)} ms, p99 ${fmt(match.p99)} ms; server CPU ${fmt(match.cpuMs)} ms per query`);
}

/** `--store`: Patient/$match on a kept SQLite store, as loaded (no rebuild, the model stored there). */
async function matchOnStore(dataDir: string): Promise<void> {
  const config = configFromEnv({ dataDir, databaseUrl: '', logLevel: 'warn', port: 0 });
  const tessera = await createTessera(config);
  const client = await createClient(tessera.db, { name: 'bench-mpi-match', scope: 'system/*.cruds' });
  const [{ n, people }] = await tessera.db.query<{ n: number; people: number }>('SELECT COUNT(*) AS n, COUNT(DISTINCT enterprise_id) AS people FROM mpi_source');
  await tessera.close();
  const { server, token } = await authorisedServer(config, client);
  const match = await matchLatency(server, token);
  await server.stop();
  console.log(`## Patient/$match on ${dataDir} (${Number(n).toLocaleString('en')} source records in ${Number(people).toLocaleString('en')} enterprise identities)\n`);
  printMatch(match);
}

/**
 * A labelled FEBRL set through `tessera mpi evaluate --train`'s path, into fresh stores of the bench
 * backend: with the hand-set priors; live (the priors, with the model upkeep of `tessera serve` run every
 * UPKEEP_EVERY records: learning as the index grows); then with the model learned from the first index.
 */
async function evaluateFebrl(file: string): Promise<{ priors: SampleEvaluation; live: SampleEvaluation; learned: SampleEvaluation }> {
  const sample = labelledFromCsv(readFileSync(`bench/data/febrl/${file}`, 'utf8'));
  const inFreshStore = async (options: Parameters<typeof evaluateSample>[2]) => {
    const { config, cleanup } = benchConfig(BACKEND);
    try {
      return await evaluateSample(config, sample.records, { ...options, explainUpTo: 0 });
    } finally {
      if (BACKEND === 'postgres' && config.schema) {
        await dropBenchSchema(config.schema);
      }
      cleanup();
    }
  };
  const priors = await inFreshStore({ train: { maxPairs: TRAIN_PAIRS } });
  const live = await inFreshStore({ upkeepEvery: UPKEEP_EVERY });
  const learned = await inFreshStore({ model: priors.trained });
  return { priors, live, learned };
}

/** Records between runs of the model upkeep in the live load: a server's minute at 4 records a second. */
const UPKEEP_EVERY = 250;

async function febrlSection(): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  console.log('\n## FEBRL labelled data sets (records one by one, file order, incremental linking)\n');
  console.log(`Hand-set priors; live: the priors with the model upkeep of \`tessera serve\` every ${UPKEEP_EVERY} records (learning from 1,000 records on, and at each doubling; the review queue's records matched again); then the model learned from the first index (\`tessera mpi train\`: unlabelled, thresholds from the posterior for precision 0.999) with the set loaded again.\n`);
  console.log('| data set | model | records | true pairs | precision | recall | F1 | pairs completeness | review % of records | records/s |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const file of FEBRL_FILES) {
    process.stderr.write(`[${BACKEND}] FEBRL ${file}\n`);
    const runs = await evaluateFebrl(file);
    out[file] = Object.fromEntries(
      Object.entries(runs).map(([name, { quality: q, seconds }]) => [name, { precision: q.precision, recall: q.recall, f1: q.f1, pairsCompleteness: q.pairsCompleteness, reviewShare: q.reviewShare, records: q.records, truePairs: q.truePairs, seconds }]),
    );
    for (const [name, { quality: q, seconds }] of Object.entries(runs)) {
      console.log(`| ${file} | ${name} | ${q.records} | ${q.truePairs} | ${q.precision.toFixed(4)} | ${q.recall.toFixed(4)} | ${q.f1.toFixed(4)} | ${q.pairsCompleteness.toFixed(4)} | ${(q.reviewShare * 100).toFixed(2)} | ${Math.round(q.records / seconds)} |`);
    }
    const trained = runs.priors.trained as TrainedModel;
    process.stderr.write(`${formatModelChange(PRIOR_MODEL, trained)}\nmatch share among candidates ${(trained.matchShare * 100).toFixed(2)}%\n`);
  }
  return out;
}

async function main(): Promise<void> {
  console.log(`# Tessera MPI evaluation ${new Date().toISOString().slice(0, 10)}, commit ${commit}, ${BACKEND}\n\nMachine: ${machine}\n`);
  if (STORE) return matchOnStore(STORE);
  const febrl = FEBRL || ONLY_FEBRL ? await febrlSection() : undefined;
  mkdirSync('bench/results', { recursive: true });
  if (ONLY_FEBRL) {
    writeFileSync(`bench/results/mpi-febrl-${BACKEND}.json`, JSON.stringify({ date: new Date().toISOString(), commit, machine, backend: BACKEND, febrl }, null, 2));
    return;
  }
  const priors = await evaluateModel(undefined, TRAIN);
  const trained = priors.trained && (await evaluateModel(priors.trained, false));

  const summary = (e: Evaluation) => ({ loadSeconds: e.loaded.seconds, scores: e.scores, review: e.review, queue: e.queue, match: e.match, rebuild: e.rebuild });
  writeFileSync(
    `bench/results/mpi-${BACKEND}.json`,
    JSON.stringify({ date: new Date().toISOString(), commit, machine, backend: BACKEND, persons: PERSONS, febrl, ...summary(priors), trainedModel: priors.trained, withTrainedModel: trained && summary(trained) }, null, 2),
  );
  console.log(`\n## Generated population\n`);
  console.log(`- population: ${priors.scores.persons.toLocaleString('en')} people, ${priors.scores.records.toLocaleString('en')} source records (seed ${SEED})`);
  report('Hand-set priors', priors);
  if (priors.trained && trained) {
    console.log(`\n## Model trained on that index (\`tessera mpi train\`: u from ${priors.trained.randomPairs} random pairs, m by EM on ${priors.trained.pairs} candidate pairs)\n`);
    console.log('```');
    console.log(formatModelChange(PRIOR_MODEL, priors.trained));
    console.log(`estimated match share among candidate pairs ${(priors.trained.matchShare * 100).toFixed(2)}%`);
    console.log('```');
    report('The same population loaded again with the trained model', trained);
  }
}

await main();
