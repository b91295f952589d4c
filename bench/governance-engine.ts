/**
 * npx tsx bench/governance-engine.ts [--kind search|read] [--resources 5000] [--samples 2000] [--rounds 5] [--other-rules N]
 *
 * What the access policy and the audit cost inside the FHIR engine, with no HTTP, network or second
 * process around it (bench/governance.ts measures those): four engines on one SQLite store in one
 * process, called in turn in blocks of 100 requests, each block in the other order than the last:
 * - off: audit off, the unrestricted (cleared) caller;
 * - audit: the audit log on (writer thread, as `tessera serve`), the same caller;
 * - policy: audit off, the uncleared caller with purpose of use TREAT (consent and label conditions);
 * - all: both.
 * Wall time of `FhirEngine.handle` plus serialising the body, per request, after one unmeasured round.
 * In process the policy's caller facts are asked by a statement of their own; over HTTP they ride on
 * the token check's statement in every mode (privacy-facts.ts), so "policy" here includes a statement
 * that HTTP pays whatever the caller. Data: bench/governance-store.ts. `--other-rules N` then adds N
 * consent rules of other patients (deny, a third of them of one data class) straight into consent_rule,
 * after the store's planner statistics, as a community whose patients consent after its bulk load would
 * have them: what the policy's conditions cost as consents grow.
 */
import { requestFor } from '../src/engine/fhir-request.js';
import { FhirEngine } from '../src/engine/fhir-engine.js';
import type { AuthContext } from '../src/security/token-service.js';
import { createTessera, type Tessera } from '../src/server/tessera.js';
import { arg } from './args.js';
import { loadGovernanceStore } from './governance-store.js';
import { percentiles } from './stats.js';

const KIND = arg('kind', 'search') as 'search' | 'read';
const RESOURCES = Number(arg('resources', '5000'));
const SAMPLES = Number(arg('samples', '2000'));
const ROUNDS = Number(arg('rounds', '5'));
const BLOCK = 100;
const MODES = ['off', 'audit', 'policy', 'all'] as const;
type Mode = (typeof MODES)[number];

const OTHER_RULES = Number(arg('other-rules', '0'));
const { config, cleanup, clients, patients } = await loadGovernanceStore('sqlite', RESOURCES);
const plain = await createTessera({ ...config, audit: false });
for (let i = 0; i < OTHER_RULES; i += 5000) {
  const rows = Array.from({ length: Math.min(5000, OTHER_RULES - i) }, (_, k) => [`other-${i + k}`, `other-patient-${i + k}`, 'deny', (i + k) % 3 ? null : 'PSY']);
  await plain.repo.sql.insertRows('consent_rule', ['consent_id', 'patient_id', 'effect', 'kind'], rows);
}
const audited = await createTessera({ ...config, audit: true });
const contextFor = async (tessera: Tessera, client: { clientId: string; clientSecret?: string }, extra: Record<string, string>): Promise<AuthContext> => {
  const issued = await tessera.tokens.issue({ grant_type: 'client_credentials', client_id: client.clientId, client_secret: client.clientSecret as string, ...extra }, undefined, 'http://localhost');
  return tessera.tokens.verify(issued.access_token);
};
const treatment = { purpose_of_use: 'TREAT' };
const callers: Record<Mode, { engine: FhirEngine; auth: AuthContext }> = {
  off: { engine: new FhirEngine(plain.repo), auth: await contextFor(plain, clients.off, {}) },
  audit: { engine: new FhirEngine(audited.repo), auth: await contextFor(audited, clients.off, {}) },
  policy: { engine: new FhirEngine(plain.repo), auth: await contextFor(plain, clients.on, treatment) },
  all: { engine: new FhirEngine(audited.repo), auth: await contextFor(audited, clients.on, treatment) },
};
const target = (i: number) => patients[(i * 7919) % patients.length];
const urls = Array.from({ length: SAMPLES }, (_, i) => (KIND === 'search' ? `Observation?subject=Patient/${target(i)}&_count=20` : `Patient/${target(i)}`));
const times: Record<Mode, number[]> = { off: [], audit: [], policy: [], all: [] };
let requestId = 0;
// Round 0 warms every engine's code and caches; it is not measured.
for (let round = 0; round <= ROUNDS; round++) {
  for (let block = 0; block < urls.length; block += BLOCK) {
    const order = (block / BLOCK + round) % 2 ? [...MODES].reverse() : MODES;
    for (const mode of order) {
      const { engine, auth } = callers[mode];
      for (const url of urls.slice(block, block + BLOCK)) {
        const start = performance.now();
        const response = await engine.handle(requestFor('GET', url, { baseUrl: 'http://localhost/fhir', auth }), `bench-${requestId++}`);
        JSON.stringify(response.body);
        if (round > 0) times[mode].push((performance.now() - start) * 1000);
      }
    }
  }
}
await plain.close();
await audited.close();
cleanup();

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
console.log(`## Governance inside the engine: ${KIND} (SQLite, ${RESOURCES} resources${OTHER_RULES ? `, ${OTHER_RULES} other patients' consent rules` : ''}, ${ROUNDS} rounds of ${SAMPLES} per mode)\n`);
console.log('| mode | mean µs | p50 µs | p95 µs | mean over off |');
console.log('|---|---|---|---|---|');
for (const mode of MODES) {
  const p = percentiles(times[mode]);
  console.log(`| ${mode} | ${mean(times[mode]).toFixed(0)} | ${p.p50.toFixed(0)} | ${p.p95.toFixed(0)} | ${mode === 'off' ? '' : `+${(((mean(times[mode]) - mean(times.off)) / mean(times.off)) * 100).toFixed(1)} %`} |`);
}
