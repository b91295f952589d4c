/**
 * npm run bench:lab-feeds [-- --messages 200 --backend sqlite|postgres]
 *
 * Issue 17's laboratory feeds, one sender on one MLLP connection (@medplum/hl7's Hl7Client, original-mode
 * ACK awaited for each message), each series after 20 warm-up messages:
 * 1. newborn-screening-style ORU^R01, one order number across 13 OBRs (26 results), LOINC-coded;
 * 2. the same messages with every test and panel code in the lab's own `L` system, from a laboratory
 *    with no code map (each code goes on its worklist);
 * 3. the same from a laboratory whose ConceptMap maps all 27 codes to LOINC (each write gets the coding).
 * Series 2 and 3 against 1 is what the local-code step costs a message on the intake. Then, in process,
 * the step alone: `LocalCodes.prepare` (src/codes/local-codes.ts) over the stored results of each series,
 * a message's resources per call, as the write path calls it: microseconds per resource. Last, the
 * unmapped laboratory's codes are mapped and the queued backfill (decision 0024) timed.
 */
import { arg } from './args.js';
import { Hl7Message } from '@medplum/core';
import { Hl7Client } from '@medplum/hl7';
import type { Resource } from '@medplum/fhirtypes';
import { readFileSync } from 'node:fs';
import { COMMIT as commit, MACHINE as machine } from './environment.js';
import { LocalCodes } from '../src/codes/local-codes.js';
import { emptyConceptMap, withMappings } from '../src/codes/participant-concept-map.js';
import { addParticipant } from '../src/participants/participants.js';
import { createTessera } from '../src/server/tessera.js';
import { benchConfig, dropBenchSchema } from './config.js';
import { newbornScreeningLocalCodes, newbornScreeningMessage } from './hl7-messages.js';
import { fmt, percentiles } from './stats.js';

const MESSAGES = Number(arg('messages', '200'));
const BACKEND = arg('backend', 'sqlite') as 'sqlite' | 'postgres';
const WARM_UP = 20;

async function sendAll(port: number, texts: string[]): Promise<{ seconds: number; latencies: number[]; notAA: number }> {
  const client = new Hl7Client({ host: '127.0.0.1', port, keepAlive: true });
  const latencies: number[] = [];
  let notAA = 0;
  const started = performance.now();
  try {
    for (const text of texts) {
      const t = performance.now();
      const ack = await client.sendAndWait(Hl7Message.parse(text), { timeoutMs: 60_000 });
      latencies.push(performance.now() - t);
      if (ack.getSegment('MSA')?.getField(1)?.toString() !== 'AA') notAA++;
    }
  } finally {
    await client.close();
  }
  return { seconds: (performance.now() - started) / 1000, latencies, notAA };
}

const loadAverage = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

async function main(): Promise<void> {
  const { config, cleanup } = benchConfig(BACKEND);
  const tessera = await createTessera({ ...config, mllpPort: 0 });
  const lab = (name: string, facility: string) => addParticipant(tessera.repo, { name, mrnSystem: `urn:example:${facility.toLowerCase()}:mrn`, hl7Facility: facility });
  await lab('State Newborn Screening Lab', 'NBSLOINC');
  await lab('Unmapped Newborn Screening Lab', 'NBSLOCAL');
  const { participant: mappedLab } = await lab('Mapped Newborn Screening Lab', 'NBSMAPPED');
  const map = withMappings(
    emptyConceptMap(mappedLab),
    newbornScreeningLocalCodes().map((c) => ({ sourceSystem: 'urn:tessera:hl7v2:coding-system:L', sourceCode: c.local, targetSystem: 'http://loinc.org', targetCode: c.loinc })),
  );
  await tessera.repo.update(map);
  const port = (await tessera.startMllp()) as number;

  const series = [
    { label: 'LOINC-coded (no local codes)', facility: 'NBSLOINC', codes: 'loinc' as const },
    { label: "lab's own codes, no map (worklist)", facility: 'NBSLOCAL', codes: 'local' as const },
    { label: "lab's own codes, all mapped to LOINC", facility: 'NBSMAPPED', codes: 'local' as const },
  ];
  const loads: string[] = [loadAverage()];
  const results = [];
  for (const s of series) {
    process.stderr.write(`[${BACKEND}] ${s.label}: ${MESSAGES} messages\n`);
    await sendAll(port, Array.from({ length: WARM_UP }, (_, i) => newbornScreeningMessage(i, `w${s.facility}`, s.facility, s.codes)));
    results.push({ ...s, ...(await sendAll(port, Array.from({ length: MESSAGES }, (_, i) => newbornScreeningMessage(i, s.facility, s.facility, s.codes)))) });
    loads.push(loadAverage());
  }
  const [{ n: reports }] = await tessera.db.query<{ n: number }>("SELECT COUNT(*) AS n FROM resource WHERE type = 'DiagnosticReport' AND deleted = 0");

  // The local-code step alone, over each series' stored resources, a message's worth per call.
  const step = new LocalCodes();
  const stepResults = [];
  for (const s of series) {
    const sent = await tessera.db.query<{ id: string }>('SELECT m.id FROM message m JOIN participant p ON p.id = m.participant_id WHERE p.hl7_facility = ?', [s.facility]);
    const sources = new Set(sent.map((m) => `urn:tessera:message:${m.id}`));
    const stored = await tessera.db.query<{ content: string }>("SELECT content FROM resource WHERE deleted = 0 AND type IN ('Observation', 'DiagnosticReport', 'ServiceRequest') ORDER BY rk");
    const mine = stored.map((r) => JSON.parse(r.content) as Resource).filter((r) => sources.has(r.meta?.source ?? ''));
    const perCall = 40;
    const started = performance.now();
    await tessera.repo.transaction(async (tx) => {
      for (let i = 0; i < mine.length; i += perCall) await step.prepare(tx, mine.slice(i, i + perCall));
    });
    stepResults.push({ label: s.label, resources: mine.length, micros: ((performance.now() - started) * 1000) / Math.max(mine.length, 1) });
  }
  // A mapping made later: the unmapped lab's 27 codes mapped at once; the queued backfill (decision 0024)
  // scans every stored resource of the mapped types and rewrites that lab's.
  const unmappedLab = (await tessera.db.query<{ id: string; name: string }>("SELECT id, name FROM participant WHERE hl7_facility = 'NBSLOCAL'"))[0];
  const [{ n: scanned }] = await tessera.db.query<{ n: number }>("SELECT COUNT(*) AS n FROM resource WHERE deleted = 0 AND type IN ('Observation', 'DiagnosticReport', 'ServiceRequest', 'AllergyIntolerance', 'Condition', 'Procedure', 'Immunization', 'Medication', 'MedicationStatement', 'MedicationRequest', 'MedicationAdministration', 'MedicationDispense')");
  const laterMap = withMappings(
    emptyConceptMap({ ...mappedLab, id: unmappedLab.id, name: unmappedLab.name }),
    newbornScreeningLocalCodes().map((c) => ({ sourceSystem: 'urn:tessera:hl7v2:coding-system:L', sourceCode: c.local, targetSystem: 'http://loinc.org', targetCode: c.loinc })),
  );
  const mapStarted = performance.now();
  await tessera.repo.update(laterMap);
  const mapWrite = performance.now() - mapStarted;
  const backfillStarted = performance.now();
  const rewritten = await tessera.codeBackfill.drain();
  const backfillSeconds = (performance.now() - backfillStarted) / 1000;
  loads.push(loadAverage());
  await tessera.close();
  if (BACKEND === 'postgres' && config.schema) await dropBenchSchema(config.schema);
  cleanup();

  console.log(`# Tessera laboratory feeds ${new Date().toISOString().slice(0, 10)}, commit ${commit}, ${BACKEND}\n\nMachine: ${machine}; load average (1/5/15 min) before and after each series: ${loads.join(' -> ')}\n`);
  console.log(`${MESSAGES} messages per series after ${WARM_UP} warm-up, one sender, one MLLP connection; each message: 13 OBRs under one order number, 26 OBX (a new baby and order each); ${reports} DiagnosticReports stored in all.\n`);
  console.log('| series | messages/s | ms per message | ACK p50 ms | p95 ms | p99 ms | not AA |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of results) {
    const p = percentiles(r.latencies);
    console.log(`| ${r.label} | ${(r.latencies.length / r.seconds).toFixed(1)} | ${fmt((r.seconds * 1000) / r.latencies.length)} | ${fmt(p.p50)} | ${fmt(p.p95)} | ${fmt(p.p99)} | ${r.notAA} |`);
  }
  console.log('\n| local-code step alone (LocalCodes.prepare, in process, 40 resources a call) | resources | µs per resource |');
  console.log('|---|---|---|');
  for (const r of stepResults) console.log(`| ${r.label} | ${r.resources} | ${r.micros.toFixed(1)} |`);
  console.log(`\nMapping the unmapped lab's 27 codes later: ConceptMap write ${fmt(mapWrite)} ms; backfill ${backfillSeconds.toFixed(1)} s for ${Number(scanned)} stored resources of the mapped types scanned and ${rewritten} rewritten (${Math.round(Number(scanned) / backfillSeconds)} scanned/s, ${Math.round(rewritten / backfillSeconds)} rewritten/s).`);
}

await main();
