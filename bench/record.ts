/**
 * npm run bench:record [-- --resources 1000000 --backends sqlite,postgres --samples 300]
 *
 * The longitudinal record's read-time merge (decision 0020): loads a generated community of --resources
 * resources, then one person sent by three participants (three source records, ~2,000 resources in all,
 * linked by the MPI), starts the server in its own process and measures, over HTTP, $summary,
 * $merged-record and $everything?_view=sources of that person, and the CDS Hooks order-sign service
 * (a draft HbA1c order, with prefetch, signed by the EHR's key; the person's record is moved in time so that
 * the order repeats results inside its look-back window, and a call that returns no card fails the bench). Prints a Markdown table, with the server
 * process's CPU time per request beside the latencies (less disturbed by a shared machine's other work).
 * `--keep` leaves the PostgreSQL schema in place (its name is printed) to examine plans on the loaded store;
 * `--reuse <schema>` measures such a kept store again without loading it (PostgreSQL only).
 */
import { randomUUID } from 'node:crypto';
import type { Bundle, Patient } from '@medplum/fhirtypes';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { arg } from './args.js';
import { benchConfig, dropBenchSchema } from './config.js';
import { COMMIT as commit, MACHINE as machine } from './environment.js';
import { clientToken, httpRequest } from './http-client.js';
import { startServerProcess } from './server-process.js';
import { daysToBring, shiftDates } from './shift-dates.js';
import { fmt, percentiles } from './stats.js';
import { processBundle } from '../src/engine/bundle-processor.js';
import { dispatch } from '../src/engine/fhir-router.js';
import { BundleGroupWriter, DEFAULT_GROUP_RESOURCES } from '../src/ingest/bundle-group-writer.js';
import { defaultWorkers, PreparePool } from '../src/ingest/prepare-pool.js';
import { systemRequest } from '../src/ingest/system-request.js';
import { createClient } from '../src/security/clients.js';
import { createTessera } from '../src/server/tessera.js';
import { refreshPlannerStatistics } from '../src/store/statistics.js';
import { directoryBundle, patientBundles } from '../src/synthetic/community.js';

const TARGET = Number(arg('resources', '100000'));
const BACKENDS = arg('backends', 'sqlite').split(',') as ('sqlite' | 'postgres')[];
const SAMPLES = Number(arg('samples', '300'));
const REUSE = arg('reuse', '');
const KEEP = process.argv.includes('--keep') || !!REUSE;
const SEED = 20261205;
const HBA1C = '4548-4';
const SOURCES = ['urn:example:riverside:mrn', 'urn:example:lakeside:mrn', 'urn:example:hillcrest:mrn'];

async function benchBackend(backend: 'sqlite' | 'postgres') {
  const { config, cleanup } = benchConfig(backend);
  if (REUSE) config.schema = REUSE;
  if (KEEP && config.schema) console.error(`store kept in PostgreSQL schema ${config.schema}`);
  const tessera = await createTessera(config);
  const { loaded, personResources } = REUSE ? await storeSize(tessera) : await load(tessera);
  const client = await createClient(tessera.db, { name: 'bench', scope: 'system/*.cruds' });
  const pair = await generateKeyPair('ES384');
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'ehr', alg: 'ES384' };
  const ehr = await createClient(tessera.db, { name: 'bench EHR', scope: 'system/*.rs', jwks: { keys: [jwk] } });
  await tessera.close();

  const server = await startServerProcess(config);
  const url = server.url;
  const token = await clientToken(url, client);
  const auth = { authorization: `Bearer ${token}` };
  const found = JSON.parse((await httpRequest('GET', `${url}/fhir/Patient?identifier=${encodeURIComponent(`${SOURCES[0]}|P-0`)}`, auth)).body) as Bundle;
  const sourceId = found.entry?.[0].resource?.id as string;
  const golden = JSON.parse((await httpRequest('GET', `${url}/fhir/Patient?link=Patient/${sourceId}`, auth)).body) as Bundle;
  const personId = golden.entry?.[0]?.resource?.id ?? sourceId;

  const series = async (method: string, path: string, n: number, body?: () => Promise<{ headers: Record<string, string>; body: string }>, check?: (body: string) => void) => {
    const out: number[] = [];
    let cpuFrom = 0;
    for (let i = 0; i < n + 10; i++) {
      if (i === 10) cpuFrom = (await server.cpuMs()).total;
      const prepared = body ? await body() : undefined;
      const started = performance.now();
      const res = await httpRequest(method, `${url}${path}`, prepared?.headers ?? auth, prepared?.body);
      if (i >= 10) out.push(performance.now() - started); // the first ten warm the path up
      if (res.status !== 200) throw new Error(`${path}: HTTP ${res.status} ${res.body.slice(0, 300)}`);
      check?.(res.body);
    }
    // Server CPU per request (all its threads, from /proc): far less disturbed by other work than latency.
    return { ...percentiles(out), cpu: ((await server.cpuMs()).total - cpuFrom) / n };
  };
  const cdsCall = async () => {
    const jwt = await new SignJWT({}).setProtectedHeader({ alg: 'ES384', kid: 'ehr' }).setIssuer(ehr.clientId).setSubject(ehr.clientId).setAudience(`${url}/cds-services/duplicate-orders-sign`).setIssuedAt().setExpirationTime('5m').setJti(randomUUID()).sign(pair.privateKey);
    const request = {
      hook: 'order-sign',
      hookInstance: randomUUID(),
      context: { userId: 'Practitioner/x', patientId: 'ehr-1', draftOrders: { resourceType: 'Bundle', type: 'collection', entry: [{ resource: { resourceType: 'ServiceRequest', id: 'draft-1', status: 'draft', intent: 'order', subject: { reference: 'Patient/ehr-1' }, code: { coding: [{ system: 'http://loinc.org', code: HBA1C }] } } }] } },
      prefetch: { patient: { resourceType: 'Patient', id: 'ehr-1', identifier: [{ system: SOURCES[0], value: 'P-0' }] } },
    };
    return { headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' }, body: JSON.stringify(request) };
  };
  const merged = JSON.parse((await httpRequest('GET', `${url}/fhir/Patient/${personId}/$merged-record?_count=5000`, auth)).body) as Bundle;
  const results = {
    summary: await series('GET', `/fhir/Patient/${personId}/$summary`, 30),
    merged: await series('GET', `/fhir/Patient/${personId}/$merged-record?_count=5000`, 30),
    sources: await series('GET', `/fhir/Patient/${personId}/$everything?_view=sources&_count=5000`, 30),
    cds: await series('POST', '/cds-services/duplicate-orders-sign', SAMPLES, cdsCall, duplicateTestCard),
  };
  await server.stop();
  if (backend === 'postgres' && config.schema && !KEEP) {
    await dropBenchSchema(config.schema);
  }
  cleanup();
  return { loaded, personResources, personId, mergedEntries: merged.total, golden: personId !== sourceId, results };
}

/** Loads the generated community and the one person sent by three participants. */
async function load(tessera: Awaited<ReturnType<typeof createTessera>>): Promise<{ loaded: number; personResources: number }> {
  await processBundle(tessera.repo, systemRequest(directoryBundle(SEED)), dispatch);
  const pool = new PreparePool(defaultWorkers());
  await pool.started;
  const writer = new BundleGroupWriter(tessera.repo, DEFAULT_GROUP_RESOURCES, pool);
  let loaded = 0;
  for (const bundle of patientBundles({ seed: SEED, patients: Number.MAX_SAFE_INTEGER, encountersPerPatient: [2, 8] })) {
    if (loaded >= TARGET) break;
    await writer.add(bundle, (outcome) => {
      if ('error' in outcome) throw outcome.error;
    });
    loaded += bundle.entry?.length ?? 0;
  }
  await writer.flush();
  await pool.close();
  // One person, three participants' copies of the record: three source Patients the MPI links.
  // Moved in time so that its latest HbA1c lies 30 days back: the draft HbA1c order then matches results
  // inside the 90-day window (the service's clock is the real one), and the bench times the merged-view join.
  const [generated] = [...patientBundles({ seed: 777, patients: 1, encountersPerPatient: [100, 100] })];
  const person = shiftDates(generated, daysToBring(generated, HBA1C, 30));
  let personResources = 0;
  for (const [i, system] of SOURCES.entries()) {
    const copy = JSON.parse(JSON.stringify(person)) as Bundle;
    const patient = copy.entry?.[0].resource as Patient;
    patient.identifier = [{ system, value: `P-${i}` }];
    await processBundle(tessera.repo, systemRequest(copy), dispatch);
    personResources += copy.entry?.length ?? 0;
  }
  await refreshPlannerStatistics(tessera.db);
  return { loaded, personResources };
}

/** A kept store's size (--reuse): its resources, the person's not told apart. */
async function storeSize(tessera: Awaited<ReturnType<typeof createTessera>>): Promise<{ loaded: number; personResources: number }> {
  const [{ n }] = await tessera.repo.sql.query<{ n: number }>('SELECT COUNT(*) AS n FROM resource WHERE deleted = 0', []);
  return { loaded: Number(n), personResources: 0 };
}

/** The draft HbA1c order repeats results inside its window: a bench that gets no card times the wrong path. */
let cdsCard = '';
function duplicateTestCard(body: string): void {
  const cards = (JSON.parse(body) as { cards?: { summary?: string; detail?: string }[] }).cards ?? [];
  const card = cards.find((c) => c.summary?.startsWith('Possible duplicate test'));
  if (!card) throw new Error(`CDS Hooks order-sign returned no duplicate-test card: ${body.slice(0, 300)}`);
  cdsCard = card.detail ?? '';
}

console.log(`# Tessera longitudinal-record benchmark ${new Date().toISOString().slice(0, 10)}, commit ${commit}\n\nMachine: ${machine}\n`);
for (const backend of BACKENDS) {
  const r = await benchBackend(backend);
  console.log(`## ${backend}: ${r.loaded.toLocaleString('en')} community resources + one person of ${r.personResources} source resources from 3 participants (${r.golden ? 'enterprise record' : 'NOT linked: source record'}; merged view ${r.mergedEntries} entries)\n`);
  console.log('| request (HTTP, sequential) | n | p50 ms | p95 ms | p99 ms | server CPU ms / request |\n|---|---|---|---|---|---|');
  const label = { summary: 'Patient/$summary', merged: 'Patient/$merged-record', sources: 'Patient/$everything?_view=sources', cds: 'CDS Hooks order-sign (prefetch, 1 draft order)' };
  for (const [k, p] of Object.entries(r.results)) console.log(`| ${label[k as keyof typeof label]} | ${p.n} | ${fmt(p.p50)} | ${fmt(p.p95)} | ${fmt(p.p99)} | ${fmt(p.cpu)} |`);
  console.log(`CDS card (last call):\n\n${cdsCard}\n`);
}
