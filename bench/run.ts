/**
 * npm run bench [-- --resources 100000 --backends sqlite,postgres] [--keep]
 *
 * Loads a generated Synthea-like community through Tessera's transaction write path, compares the ingest
 * rate with raw SQLite inserts of the same rows, then measures read, search and $everything latency
 * through the real HTTP server; last, governance on and off (bench/governance.ts). Prints a Markdown
 * summary and writes bench/results/<backend>.json.
 */
import { arg } from './args.js';
import type { Bundle, Patient } from '@medplum/fhirtypes';
import { mkdirSync, writeFileSync } from 'node:fs';
import { COMMIT as commit, MACHINE as machine } from './environment.js';
import { createClient } from '../src/security/clients.js';
import { setClearance } from '../src/consent/clearance.js';
import { processBundle } from '../src/engine/bundle-processor.js';
import { BundleGroupWriter, DEFAULT_GROUP_RESOURCES } from '../src/ingest/bundle-group-writer.js';
import { defaultWorkers, PreparePool } from '../src/ingest/prepare-pool.js';
import { systemRequest } from '../src/ingest/system-request.js';
import { dispatch } from '../src/engine/fhir-router.js';
import { createTessera, type Tessera } from '../src/server/tessera.js';
import { refreshPlannerStatistics } from '../src/store/statistics.js';
import { directoryBundle, patientBundles } from '../src/synthetic/community.js';
import { Random } from '../src/synthetic/random.js';
import { benchConfig, dropBenchSchema } from './config.js';
import { rawSqliteCeiling } from './raw-sqlite.js';
import { clientToken, httpGet } from './http-client.js';
import { startServerProcess } from './server-process.js';
import { fmt, PeakMemory, percentiles } from './stats.js';
import { reportGovernance } from './governance.js';


const TARGET = Number(arg('resources', '100000'));
const BACKENDS = arg('backends', 'sqlite,postgres').split(',') as ('sqlite' | 'postgres')[];
const SAMPLES = Number(arg('samples', '1000'));
const SEED = 20261125;
/** Keep the PostgreSQL schema / SQLite directory after the run, to inspect query plans. */
const KEEP = process.argv.includes('--keep');


interface Loaded {
  resources: number;
  seconds: number;
  sampleIds: string[];
  identifiers: string[];
  days: string[];
}

/** The generated community both Tessera and the raw ceiling load, Bundle for Bundle. */
function communityBundles(): Iterable<Bundle> {
  return patientBundles({ seed: SEED, patients: Number.MAX_SAFE_INTEGER, encountersPerPatient: [2, 8] });
}

/** Loads the community the way `tessera import` does: Bundles grouped per database transaction. */
async function ingest(tessera: Tessera, pool: PreparePool): Promise<Loaded> {
  await processBundle(tessera.repo, systemRequest(directoryBundle(SEED)), dispatch);
  const rnd = new Random(99);
  const loaded: Loaded = { resources: 0, seconds: 0, sampleIds: [], identifiers: [], days: [] };
  const writer = new BundleGroupWriter(tessera.repo, DEFAULT_GROUP_RESOURCES, pool);
  let lastReport = Date.now();
  for (const bundle of communityBundles()) {
    if (loaded.resources >= TARGET) break;
    const patient = bundle.entry?.[0].resource as Patient;
    const mrn = patient.identifier?.[0];
    const sampled = rnd.chance(0.2);
    const pickIndex = rnd.int(0, (bundle.entry?.length ?? 1) - 1);
    const addStarted = performance.now();
    await writer.add(bundle, (outcome) => {
      if ('error' in outcome) throw outcome.error;
      if (sampled) {
        loaded.identifiers.push(`${mrn?.system}|${mrn?.value}`);
        const location = outcome.response.entry?.[pickIndex]?.response?.location ?? '';
        loaded.sampleIds.push(location.replace('urn:tessera/', '').replace(/\/_history\/\d+$/, ''));
        const obs = bundle.entry?.find((e) => e.resource?.resourceType === 'Observation')?.resource as { effectiveDateTime?: string } | undefined;
        if (obs?.effectiveDateTime) loaded.days.push(obs.effectiveDateTime.slice(0, 10));
      }
    });
    loaded.seconds += (performance.now() - addStarted) / 1000;
    loaded.resources += bundle.entry?.length ?? 0;
    if (Date.now() - lastReport > 10_000) {
      process.stderr.write(`  ingested ${loaded.resources} resources (${Math.round(loaded.resources / loaded.seconds)}/s)\n`);
      lastReport = Date.now();
    }
  }
  const flushStarted = performance.now();
  await writer.flush();
  loaded.seconds += (performance.now() - flushStarted) / 1000;
  return loaded;
}

/** Untimed requests before each measured series: the HTTP path is cold after a load (JIT, caches). */
const WARM_UP = 100;

async function timed(url: string, token: string, paths: string[]): Promise<number[]> {
  const headers = { authorization: `Bearer ${token}` };
  const target = (path: string) => (path.startsWith('/') ? `${url}${path}` : `${url}/fhir/${path}`);
  for (const path of paths.slice(0, Math.min(WARM_UP, paths.length))) {
    await httpGet(target(path), headers);
  }
  const out: number[] = [];
  for (const path of paths) {
    const started = performance.now();
    const status = await httpGet(target(path), headers);
    out.push(performance.now() - started);
    if (status !== 200) throw new Error(`${path}: HTTP ${status}`);
  }
  return out;
}

function nextDay(day: string): string {
  return new Date(Date.parse(day) + 86_400_000).toISOString().slice(0, 10);
}

async function benchBackend(backend: 'sqlite' | 'postgres') {
  const memory = new PeakMemory();
  const { config, cleanup } = benchConfig(backend);
  // As `tessera import` does: workers that validate and index while the main thread writes, started
  // before the server so that their start-up (loading the R4 model, about 2 s) overlaps the server's.
  const pool = new PreparePool(defaultWorkers());
  const tessera = await createTessera(config);
  const client = await createClient(tessera.db, { name: 'bench', scope: 'system/*.cruds' });
  // Cleared for every kind of sensitive data: these series measure the repository (the generated
  // community has labelled Conditions, which an uncleared client reads as 404); governance's cost is
  // the last section's.
  await setClearance(tessera.db, `client:${client.clientId}`, ['*']);

  process.stderr.write(`[${backend}] ingesting ~${TARGET} resources\n`);
  await pool.started;
  const loaded = await ingest(tessera, pool);
  await pool.close();
  const ingestRate = loaded.resources / loaded.seconds;

  // A patient with a long record (~2,000 resources) for $everything.
  const [big] = [...patientBundles({ seed: 4242, patients: 1, encountersPerPatient: [300, 300] })];
  const bigResponse = await processBundle(tessera.repo, systemRequest(big), dispatch);
  const bigId = (bigResponse.entry?.[0].response?.location ?? '').split('/')[2];
  const analyzeStarted = performance.now();
  await refreshPlannerStatistics(tessera.db);
  const analyzeSeconds = (performance.now() - analyzeStarted) / 1000;
  await tessera.close();
  const loaderPeakRss = memory.stop();

  const server = await startServerProcess(config);
  const url = server.url;
  const token = await clientToken(url, client);

  const rnd = new Random(7);
  const pick = <T>(items: T[]) => Array.from({ length: SAMPLES }, () => rnd.pick(items));
  const results = {
    // The same round trip with no store, no token check and no FHIR: what the machine's HTTP costs.
    baseline: percentiles(await timed(url, token, pick(['/healthz']))),
    read: percentiles(await timed(url, token, pick(loaded.sampleIds))),
    tokenIdentifier: percentiles(await timed(url, token, pick(loaded.identifiers).map((i) => `Patient?identifier=${encodeURIComponent(i)}`))),
    tokenCode: percentiles(await timed(url, token, pick(['8480-6', '8462-4', '4548-4', '2345-7']).map((c) => `Observation?code=http://loinc.org|${c}&_count=20`))),
    date: percentiles(await timed(url, token, pick(loaded.days).map((d) => `Observation?date=ge${d}&date=lt${nextDay(d)}&_count=20`))),
    chained: percentiles(
      await timed(url, token, pick(loaded.identifiers).map((i) => `Observation?subject:Patient.identifier=${encodeURIComponent(i)}&_count=50`)),
    ),
    everything: percentiles(await timed(url, token, Array.from({ length: 30 }, () => `Patient/${bigId}/$everything?_count=5000`))),
  };
  const everythingSize = ((await (await fetch(`${url}/fhir/Patient/${bigId}/$everything?_count=5000`, { headers: { authorization: `Bearer ${token}` } })).json()) as { total: number }).total;
  const serverPeakRss = await server.peakRss();
  await server.stop();
  if (KEEP) {
    console.error(`kept: ${backend === 'postgres' ? `schema ${config.schema}` : config.dataDir}`);
  } else if (backend === 'postgres' && config.schema) {
    await dropBenchSchema(config.schema);
  }
  if (!KEEP) {
    cleanup();
  }
  const raw = backend === 'sqlite' ? await rawSqliteCeiling(communityBundles(), loaded.resources) : undefined;
  return { backend, resources: loaded.resources, ingestSeconds: loaded.seconds, ingestRate, analyzeSeconds, raw, results, everythingSize, loaderPeakRss, serverPeakRss };
}

mkdirSync('bench/results', { recursive: true });
console.log(`# Tessera benchmark ${new Date().toISOString().slice(0, 10)}, commit ${commit}\n\nMachine: ${machine}\n`);
for (const backend of BACKENDS) {
  const r = await benchBackend(backend);
  writeFileSync(`bench/results/${backend}.json`, JSON.stringify({ date: new Date().toISOString(), commit, machine, ...r }, null, 2));
  console.log(`## ${backend}: ${r.resources.toLocaleString('en')} resources\n`);
  console.log(`- ingest through the transaction path: ${Math.round(r.ingestRate)} resources/s (${r.ingestSeconds.toFixed(1)} s), then planner statistics (ANALYZE; VACUUM ANALYZE on PostgreSQL) in ${r.analyzeSeconds.toFixed(1)} s`);
  if (r.raw) {
    const rawRate = r.raw.resources / r.raw.seconds;
    console.log(`- raw SQLite inserts of the same rows (${r.raw.resources} resources): ${Math.round(rawRate)} resources/s; Tessera reaches ${((r.ingestRate / rawRate) * 100).toFixed(1)}% of it`);
  }
  console.log(`- peak RSS: loader ${Math.round(r.loaderPeakRss / 2 ** 20)} MiB, server ${Math.round(r.serverPeakRss / 2 ** 20)} MiB\n`);
  console.log('| query (HTTP, sequential) | n | p50 ms | p95 ms | p99 ms |\n|---|---|---|---|---|');
  const label: Record<string, string> = {
    baseline: 'baseline: GET /healthz (no store, no auth)',
    read: 'read by id',
    tokenIdentifier: 'token: Patient?identifier (1 match)',
    tokenCode: 'token: Observation?code, first page of 20',
    date: 'date: Observation?date one day, first 20',
    chained: 'chained: Observation?subject:Patient.identifier',
    everything: `Patient/$everything (${r.everythingSize} resources)`,
  };
  for (const [key, p] of Object.entries(r.results)) {
    console.log(`| ${label[key]} | ${p.n} | ${fmt(p.p50)} | ${fmt(p.p95)} | ${fmt(p.p99)} |`);
  }
  console.log('');
}

// What governance (the access policy narrowing row by row, and the audit log) costs, measured in the same
// run on a smaller store of its own (issue: overhead at most 10 %).
await reportGovernance(BACKENDS, { resources: 5000, samples: 1000, rounds: 3 });
