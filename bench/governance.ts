/**
 * npx tsx bench/governance.ts [--backends sqlite,postgres] [--resources 5000] [--samples 1000] [--rounds 3] [--compare all|audit|policy]
 * (also the last section of `npm run bench`)
 *
 * What governance costs: the same store served by `tessera serve` with governance "off" and "on", in
 * alternating rounds (off/on, then on/off, ...) so that drift of the machine falls on both.
 * - off: TESSERA_AUDIT=off and a caller the access policy has nothing to narrow for (a `system/*.cruds`
 *   client cleared for every kind of sensitive data: no row conditions). The policy itself cannot be
 *   turned off; this is its cheapest path.
 * - on: the audit log on and a caller the policy narrows row by row: a participant's client with
 *   `system/*.cruds`, purpose of use TREAT, no clearance, so every search and read carries the consent and
 *   security-label conditions; one patient in five has a Consent denying another organization.
 * Measures read and search latency (sequential, as bench/run.ts does; and with 8 concurrent clients) and
 * the ingest rate of transaction Bundles POSTed over HTTP. Data: the deterministic synthetic community
 * (src/synthetic).
 */
import http from 'node:http';
import { pathToFileURL } from 'node:url';
import type { Bundle } from '@medplum/fhirtypes';
import { arg } from './args.js';
import { setClearance } from '../src/consent/clearance.js';
import { privacyConsent } from '../src/consent/privacy-consent.js';
import { ORGANIZATIONS } from '../src/synthetic/community.js';
import { benchConfig, dropBenchSchema } from './config.js';
import { startServerProcess } from './server-process.js';
import { fmt, median, percentiles } from './stats.js';
import { createClient } from '../src/security/clients.js';
import { createTessera } from '../src/server/tessera.js';
import { processBundle } from '../src/engine/bundle-processor.js';
import { dispatch } from '../src/engine/fhir-router.js';
import { systemRequest } from '../src/ingest/system-request.js';
import { directoryBundle, patientBundles } from '../src/synthetic/community.js';
import { refreshPlannerStatistics } from '../src/store/statistics.js';

export interface GovernanceBenchOptions {
  resources: number;
  samples: number;
  rounds: number;
  /** What "on" turns on: both (default), only the audit log (same unrestricted caller), only the restricted caller (audit off). */
  compare?: 'all' | 'audit' | 'policy';
}
const CONCURRENCY = 8;
const CONCURRENT_MS = 2000;
const INGEST_BUNDLES = 20;
/** Requests sent before a sequential series' clock starts (counted in its CPU per request). */
const SEQUENTIAL_WARMUP = 50;

function request(agent: http.Agent, method: string, url: string, token: string, body?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/fhir+json' } : {}) };
    const req = http.request(url, { method, agent, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function sequential(url: string, token: string, paths: string[]): Promise<number[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  for (const p of paths.slice(0, SEQUENTIAL_WARMUP)) await request(agent, 'GET', `${url}/fhir/${p}`, token);
  const out: number[] = [];
  for (const p of paths) {
    const started = performance.now();
    const status = await request(agent, 'GET', `${url}/fhir/${p}`, token);
    out.push(performance.now() - started);
    if (status !== 200) throw new Error(`${p}: HTTP ${status}`);
  }
  agent.destroy();
  return out;
}

async function concurrent(url: string, token: string, paths: string[]): Promise<{ latencies: number[]; perSecond: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const latencies: number[] = [];
  const end = performance.now() + CONCURRENT_MS;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, n) => {
      for (let i = n; performance.now() < end; i += CONCURRENCY) {
        const started = performance.now();
        await request(agent, 'GET', `${url}/fhir/${paths[i % paths.length]}`, token);
        latencies.push(performance.now() - started);
      }
    }),
  );
  agent.destroy();
  return { latencies, perSecond: latencies.length / (CONCURRENT_MS / 1000) };
}

async function ingest(url: string, token: string, seed: number): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  let resources = 0;
  const started = performance.now();
  for (const bundle of patientBundles({ seed, patients: INGEST_BUNDLES, encountersPerPatient: [2, 8] })) {
    const status = await request(agent, 'POST', `${url}/fhir`, token, JSON.stringify(bundle));
    if (status !== 200) throw new Error(`transaction: HTTP ${status}`);
    resources += bundle.entry?.length ?? 0;
  }
  agent.destroy();
  return resources / ((performance.now() - started) / 1000);
}

type Measures = Record<'readP95' | 'searchP95' | 'readCpu' | 'searchCpu' | 'concurrentReadP95' | 'concurrentSearchP95' | 'readsPerSecond' | 'ingestRate', number>;

async function benchBackend(backend: 'sqlite' | 'postgres', { resources: RESOURCES, samples: SAMPLES, rounds: ROUNDS, compare = 'all' }: GovernanceBenchOptions): Promise<Record<'off' | 'on', Measures[]>> {
  const { config, cleanup } = benchConfig(backend);
  const tessera = await createTessera({ ...config, audit: false });
  const clients = {
    off: await createClient(tessera.db, { name: 'governance-bench-unrestricted', scope: 'system/*.cruds' }),
    on: await createClient(tessera.db, { name: 'governance-bench-treatment', scope: 'system/*.cruds' }),
  };
  await setClearance(tessera.db, `client:${clients.off.clientId}`, ['*']);
  await processBundle(tessera.repo, systemRequest(directoryBundle(1)), dispatch);
  const patients: string[] = [];
  let loaded = 0;
  for (const bundle of patientBundles({ seed: 11, patients: Number.MAX_SAFE_INTEGER, encountersPerPatient: [2, 8] })) {
    if (loaded >= RESOURCES) break;
    const response = (await processBundle(tessera.repo, systemRequest(bundle as Bundle), dispatch)) as Bundle;
    const patient = /Patient\/([^/]+)/.exec(response.entry?.[0].response?.location ?? '')?.[1] as string;
    patients.push(patient);
    loaded += bundle.entry?.length ?? 0;
    if (patients.length % 5 === 0) {
      // One patient in five denies an organization: consent rows the policy's condition has to consult.
      const denied = `Organization/${ORGANIZATIONS[patients.length % ORGANIZATIONS.length].id}`;
      const consent = privacyConsent(patient, { type: 'deny', actor: [{ role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP' }] }, reference: { reference: denied } }] });
      await processBundle(tessera.repo, systemRequest({ resourceType: 'Bundle', type: 'transaction', entry: [{ resource: consent, request: { method: 'POST', url: 'Consent' } }] }), dispatch);
    }
  }
  await refreshPlannerStatistics(tessera.db);
  await tessera.close();
  const pick = (n: number, f: (id: string) => string) => Array.from({ length: n }, (_, i) => f(patients[(i * 7919) % patients.length]));
  const reads = pick(SAMPLES, (id) => `Patient/${id}`);
  const searches = pick(SAMPLES, (id) => `Observation?subject=Patient/${id}&_count=20`);
  const results: Record<'off' | 'on', Measures[]> = { off: [], on: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of round % 2 ? (['on', 'off'] as const) : (['off', 'on'] as const)) {
      process.env.TESSERA_AUDIT = compare === 'policy' ? 'off' : mode;
      const server = await startServerProcess(config);
      const client = clients[compare === 'audit' ? 'off' : mode];
      const form: Record<string, string> = { grant_type: 'client_credentials', client_id: client.clientId, client_secret: client.clientSecret as string };
      if (mode === 'on') form.purpose_of_use = 'TREAT';
      const tokenRes = await fetch(`${server.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form) });
      const token = ((await tokenRes.json()) as { access_token: string }).access_token;
      const concurrentReads = await concurrent(server.url, token, reads);
      const concurrentSearches = await concurrent(server.url, token, searches);
      // The server's CPU per request (all its threads: the audit writer's too) over each sequential series.
      // Each series starts on an idle server: the audit events of the one before (the concurrent series
      // journal thousands, which the writer thread at nice 19 commits after them) are not charged to it.
      const cpuPerRequest = async (paths: string[]) => {
        await server.settled();
        const before = await server.cpuMs();
        const latencies = await sequential(server.url, token, paths);
        const after = await server.cpuMs();
        return { p95: percentiles(latencies).p95, cpuUs: ((after.total - before.total) * 1000) / (paths.length + SEQUENTIAL_WARMUP) };
      };
      const readSeries = await cpuPerRequest(reads);
      const searchSeries = await cpuPerRequest(searches);
      results[mode].push({
        readP95: readSeries.p95,
        searchP95: searchSeries.p95,
        readCpu: readSeries.cpuUs,
        searchCpu: searchSeries.cpuUs,
        concurrentReadP95: percentiles(concurrentReads.latencies).p95,
        concurrentSearchP95: percentiles(concurrentSearches.latencies).p95,
        readsPerSecond: concurrentReads.perSecond,
        ingestRate: await server.settled().then(() => ingest(server.url, token, 1000 + round * 2 + (mode === 'on' ? 1 : 0))),
      });
      await server.stop();
      process.stderr.write(`[${backend}] round ${round + 1} audit ${mode} done\n`);
    }
  }
  if (backend === 'postgres' && config.schema) {
    await dropBenchSchema(config.schema);
  }
  cleanup();
  return results;
}


const LABELS: Record<keyof Measures, [string, 'lower' | 'higher']> = {
  readP95: ['read by id p95 ms (sequential)', 'lower'],
  searchP95: ['search Observation?subject p95 ms (sequential)', 'lower'],
  readCpu: ['server CPU µs per read (sequential, all threads)', 'lower'],
  searchCpu: ['server CPU µs per search (sequential, all threads)', 'lower'],
  concurrentReadP95: [`read p95 ms (${CONCURRENCY} clients)`, 'lower'],
  concurrentSearchP95: [`search p95 ms (${CONCURRENCY} clients)`, 'lower'],
  readsPerSecond: [`reads/s (${CONCURRENCY} clients)`, 'higher'],
  ingestRate: ['HTTP transaction ingest, resources/s', 'higher'],
};
/** Prints, per backend, each measure with governance off and on and the overhead; returns the worst overhead. */
export async function reportGovernance(backends: readonly ('sqlite' | 'postgres')[], options: GovernanceBenchOptions): Promise<number> {
  let worst = 0;
  for (const backend of backends) {
    const r = await benchBackend(backend, options);
    console.log(`\n## Governance on and off, ${backend}: ${options.resources} resources, ${options.rounds} alternating rounds (median), ${options.samples} samples\n`);
    console.log('| measure | governance off | governance on | overhead |\n|---|---|---|---|');
    for (const [key, [label, better]] of Object.entries(LABELS) as [keyof Measures, [string, string]][]) {
      const off = median(r.off.map((m) => m[key]));
      const on = median(r.on.map((m) => m[key]));
      const overhead = better === 'lower' ? on / off - 1 : off / on - 1;
      worst = Math.max(worst, overhead);
      console.log(`| ${label} | ${fmt(off)} | ${fmt(on)} | ${(overhead * 100).toFixed(1)} % |`);
    }
  }
  return worst;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const backends = arg('backends', 'sqlite').split(',') as ('sqlite' | 'postgres')[];
  await reportGovernance(backends, { resources: Number(arg('resources', '5000')), samples: Number(arg('samples', '1000')), rounds: Number(arg('rounds', '3')), compare: arg('compare', 'all') as GovernanceBenchOptions['compare'] });
}
