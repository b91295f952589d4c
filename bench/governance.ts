/**
 * npx tsx bench/governance.ts [--backends sqlite,postgres] [--resources 5000] [--samples 1000] [--rounds 3] [--compare all|audit|policy]
 * (also the last section of `npm run bench`)
 *
 * What governance costs: the same store served by two `tessera serve` processes at once, governance "off"
 * and "on". Sequential series and the ingest alternate between them in blocks (pairedSequential,
 * pairedIngest); the concurrent series run on one server at a time, in alternating order from round to round.
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
import { arg } from './args.js';
import { dropBenchSchema } from './config.js';
import { clientToken } from './http-client.js';
import { loadGovernanceStore } from './governance-store.js';
import { startServerProcess, type ServerProcess } from './server-process.js';
import { fmt, median, percentiles } from './stats.js';
import { patientBundles } from '../src/synthetic/community.js';

export interface GovernanceBenchOptions {
  resources: number;
  samples: number;
  rounds: number;
  /** What "on" turns on: both (default), only the audit log (same unrestricted caller), only the restricted caller (audit off). */
  compare?: 'all' | 'audit' | 'policy';
}
const CONCURRENCY = 8;
const CONCURRENT_MS = 2000;
/** Transaction Bundles each server ingests, in alternating blocks of INGEST_BLOCK. */
const INGEST_BUNDLES = 40;
const INGEST_BLOCK = 5;
/** Requests sent to each server before a sequential series starts (not measured). */
const SEQUENTIAL_WARMUP = 200;
/** Requests per block of a sequential series; blocks alternate between the two servers. */
const SEQUENTIAL_BLOCK = 250;

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

type Mode = 'off' | 'on';

/** The servers' turns in pair of blocks `block`: each pair in the other order than the last, so the machine's drift falls on both modes alike. */
const blockOrder = (order: readonly Mode[], block: number): readonly Mode[] => (block % 2 ? [...order].reverse() : order);

/** One keep-alive connection to each server: requests go one at a time. */
const oneConnectionEach = (): Record<Mode, http.Agent> => ({ off: new http.Agent({ keepAlive: true, maxSockets: 1 }), on: new http.Agent({ keepAlive: true, maxSockets: 1 }) });

/**
 * The same requests, one at a time, to both servers in alternating blocks of SEQUENTIAL_BLOCK (each pair of
 * blocks in the other order than the last). Per mode: the p95 of all its latencies, and its server's CPU
 * (all threads) per request from the start of each block until the server is idle again: the audit
 * writer's commit of a block's events is charged to that block, and the other server's next block starts
 * on an idle machine.
 */
async function pairedSequential(servers: Record<Mode, { server: ServerProcess; token: string }>, order: readonly (Mode)[], paths: string[]): Promise<Record<Mode, { p95: number; cpuUs: number; mainCpuUs: number }>> {
  const agents = oneConnectionEach();
  const send = async (mode: Mode, path: string) => {
    const started = performance.now();
    const status = await request(agents[mode], 'GET', `${servers[mode].server.url}/fhir/${path}`, servers[mode].token);
    if (status !== 200) throw new Error(`${path}: HTTP ${status}`);
    return performance.now() - started;
  };
  for (const mode of order) {
    for (const p of paths.slice(0, SEQUENTIAL_WARMUP)) await send(mode, p);
    await servers[mode].server.settled();
  }
  const latencies = { off: [] as number[], on: [] as number[] };
  const cpuMs = { off: 0, on: 0 };
  const mainCpuMs = { off: 0, on: 0 };
  for (let start = 0, block = 0; start < paths.length; start += SEQUENTIAL_BLOCK, block++) {
    for (const mode of blockOrder(order, block)) {
      const { server } = servers[mode];
      const before = await server.cpuMs();
      for (const p of paths.slice(start, start + SEQUENTIAL_BLOCK)) latencies[mode].push(await send(mode, p));
      await server.settled();
      const after = await server.cpuMs();
      cpuMs[mode] += after.total - before.total;
      mainCpuMs[mode] += after.main - before.main;
    }
  }
  agents.off.destroy();
  agents.on.destroy();
  const per = (mode: Mode) => ({ p95: percentiles(latencies[mode]).p95, cpuUs: (cpuMs[mode] * 1000) / paths.length, mainCpuUs: (mainCpuMs[mode] * 1000) / paths.length });
  return { off: per('off'), on: per('on') };
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

/**
 * HTTP transaction ingest, paired like the sequential series: 2 x INGEST_BUNDLES Bundles of one seed,
 * taken in blocks of INGEST_BLOCK alternately by the two servers (each pair of blocks in the other order
 * than the last), so both modes ingest bundles of the same make-up in the same minutes. Per mode:
 * resources per second of posting time; each server settles after its block, so the audit writer's
 * commits of one block do not fall into the other server's.
 */
async function pairedIngest(servers: Record<Mode, { server: ServerProcess; token: string }>, order: readonly (Mode)[], seed: number): Promise<Record<Mode, number>> {
  const agents = oneConnectionEach();
  const bundles = [...patientBundles({ seed, patients: 2 * INGEST_BUNDLES, encountersPerPatient: [2, 8] })];
  const resources = { off: 0, on: 0 };
  const ms = { off: 0, on: 0 };
  for (let start = 0, block = 0; start < bundles.length; block++) {
    for (const mode of blockOrder(order, block)) {
      const { server, token } = servers[mode];
      const started = performance.now();
      for (const bundle of bundles.slice(start, start + INGEST_BLOCK)) {
        const status = await request(agents[mode], 'POST', `${server.url}/fhir`, token, JSON.stringify(bundle));
        if (status !== 200) throw new Error(`transaction: HTTP ${status}`);
        resources[mode] += bundle.entry?.length ?? 0;
      }
      ms[mode] += performance.now() - started;
      start += INGEST_BLOCK;
      await server.settled();
    }
  }
  agents.off.destroy();
  agents.on.destroy();
  return { off: resources.off / (ms.off / 1000), on: resources.on / (ms.on / 1000) };
}

type Measures = Record<'readP95' | 'searchP95' | 'readCpu' | 'searchCpu' | 'readMainCpu' | 'searchMainCpu' | 'concurrentReadP95' | 'concurrentSearchP95' | 'readsPerSecond' | 'ingestRate', number>;

async function benchBackend(backend: 'sqlite' | 'postgres', { resources: RESOURCES, samples: SAMPLES, rounds: ROUNDS, compare = 'all' }: GovernanceBenchOptions): Promise<Record<Mode, Measures[]>> {
  const { config, cleanup, clients, patients } = await loadGovernanceStore(backend, RESOURCES);
  const pick = (n: number, f: (id: string) => string) => Array.from({ length: n }, (_, i) => f(patients[(i * 7919) % patients.length]));
  const reads = pick(SAMPLES, (id) => `Patient/${id}`);
  const searches = pick(SAMPLES, (id) => `Observation?subject=Patient/${id}&_count=20`);
  const results: Record<Mode, Measures[]> = { off: [], on: [] };
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 ? (['on', 'off'] as const) : (['off', 'on'] as const);
    // Both servers run at once, on the same store: the sequential series alternate between them block by
    // block, so that the machine's drift (seen here: the same series twice as slow one minute as the next)
    // falls on both modes alike.
    const servers = {} as Record<Mode, { server: ServerProcess; token: string }>;
    for (const mode of order) {
      process.env.TESSERA_AUDIT = compare === 'policy' ? 'off' : mode;
      const server = await startServerProcess(config);
      servers[mode] = { server, token: await clientToken(server.url, clients[compare === 'audit' ? 'off' : mode], mode === 'on' ? { purpose_of_use: 'TREAT' } : {}) };
    }
    // The concurrent series first: thousands of requests, after which each server's code is optimised as
    // in a server that has run a while (a sequential series right after the start measured more CPU per
    // request than the same series after them).
    const concurrentSeries = {} as Record<Mode, { reads: { latencies: number[]; perSecond: number }; searches: { latencies: number[] } }>;
    for (const mode of order) {
      const { server, token } = servers[mode];
      await server.settled();
      concurrentSeries[mode] = { reads: await concurrent(server.url, token, reads), searches: await concurrent(server.url, token, searches) };
      await server.settled();
    }
    const readSeries = await pairedSequential(servers, order, reads);
    const searchSeries = await pairedSequential(servers, order, searches);
    const ingestRates = await pairedIngest(servers, order, 1000 + round);
    for (const mode of order) {
      results[mode].push({
        readP95: readSeries[mode].p95,
        searchP95: searchSeries[mode].p95,
        readCpu: readSeries[mode].cpuUs,
        searchCpu: searchSeries[mode].cpuUs,
        readMainCpu: readSeries[mode].mainCpuUs,
        searchMainCpu: searchSeries[mode].mainCpuUs,
        concurrentReadP95: percentiles(concurrentSeries[mode].reads.latencies).p95,
        concurrentSearchP95: percentiles(concurrentSeries[mode].searches.latencies).p95,
        readsPerSecond: concurrentSeries[mode].reads.perSecond,
        ingestRate: ingestRates[mode],
      });
    }
    for (const mode of order) await servers[mode].server.stop();
    process.stderr.write(`[${backend}] round ${round + 1} done\n`);
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
  // The main thread's share is the request's own path; the rest is background (the audit writer, GC helpers).
  readMainCpu: ['server CPU µs per read (sequential, main thread)', 'lower'],
  searchMainCpu: ['server CPU µs per search (sequential, main thread)', 'lower'],
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
