/**
 * npm run bench:ingest [-- --messages 2000 --backend sqlite|postgres --connections 8 --documents 340]
 *
 * HL7 v2 intake over MLLP: generated ADT^A01 and ORU^R01 messages (half each, synthetic people) sent with
 * an MLLP client not written here (@medplum/hl7's Hl7Client), original-mode ACK awaited for each; first
 * on one connection, then on N concurrent connections. The baseline of the same run is an MLLP listener
 * that acknowledges without storing anything: the transport's own ceiling on this machine.
 *
 * C-CDA intake: the 34 public sample documents (test/fixtures), each sent repeatedly as a new document
 * of a new patient (document id and MRN rewritten), one at a time through `POST /fhir/$import-ccda`.
 * Its baseline is reading the same documents (secure parse, header, sections converted) without storing.
 */
import { arg } from './args.js';
import { Hl7Message } from '@medplum/core';
import { Hl7Client } from '@medplum/hl7';
import { COMMIT as commit, MACHINE as machine } from './environment.js';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CcdaContext } from '../src/ccda/ccda-context.js';
import { readHeader, readPatient } from '../src/ccda/document-header.js';
import { mapDocument } from '../src/ccda/document-mapper.js';
import { parseSecureXml } from '../src/ccda/secure-xml.js';
import { buildAck } from '../src/hl7v2/acknowledgement.js';
import { V2Message } from '../src/hl7v2/message-reader.js';
import { MllpListener } from '../src/hl7v2/mllp-listener.js';
import { addParticipant, type Participant } from '../src/participants/participants.js';
import { createTessera } from '../src/server/tessera.js';
import { benchConfig, dropBenchSchema } from './config.js';
import { fmt, percentiles } from './stats.js';
import { message } from './hl7-messages.js';
import { clientToken } from './http-client.js';
import { replayWrites, snapshotStore, SqliteWriteRecorder } from './sqlite-write-floor.js';


const MESSAGES = Number(arg('messages', '2000'));
const BACKEND = arg('backend', 'sqlite') as 'sqlite' | 'postgres';
const CONNECTIONS = Number(arg('connections', '8'));
const DOCUMENTS = Number(arg('documents', '340'));
/** The sample documents kept with the tests (test/fixtures/ccda-*; each folder's README gives source and licence). */
const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'test', 'fixtures');
async function sendAll(port: number, texts: string[], connections: number): Promise<{ seconds: number; latencies: number[]; notAA: number }> {
  const latencies: number[] = [];
  let notAA = 0;
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      const client = new Hl7Client({ host: '127.0.0.1', port, keepAlive: true });
      try {
        for (let i = next++; i < texts.length; i = next++) {
          const t = performance.now();
          const ack = await client.sendAndWait(Hl7Message.parse(texts[i]), { timeoutMs: 60_000 });
          latencies.push(performance.now() - t);
          if (ack.getSegment('MSA')?.getField(1)?.toString() !== 'AA') notAA++;
        }
      } finally {
        await client.close();
      }
    }),
  );
  return { seconds: (performance.now() - started) / 1000, latencies, notAA };
}

/** The sample documents, each made the i-th distinct document of a distinct patient. */
function ccdaDocuments(count: number): string[] {
  const dirs = ['ccda-hl7-examples', 'ccda-converter-samples'].map((d) => join(FIXTURES, d));
  const samples = dirs.flatMap((d) => readdirSync(d).filter((f) => /\.(xml|ccda)$/.test(f)).map((f) => readFileSync(join(d, f), 'utf8')));
  const replaceFirstId = (text: string, after: string, tag: string) => {
    const start = text.indexOf('<id', text.indexOf(after));
    const end = text.indexOf('>', start) + 1;
    return start < 0 ? text : text.slice(0, start) + tag + (text[end - 2] === '/' ? '' : '</id>') + text.slice(end).replace(/^\s*<\/id>/, '');
  };
  return Array.from({ length: count }, (_, i) => {
    const withId = replaceFirstId(samples[i % samples.length], '<ClinicalDocument', `<id root="2.16.840.1.113883.19.5.99999.88" extension="bench-doc-${i}"/>`);
    return replaceFirstId(withId, '<patientRole', `<id root="2.16.840.1.113883.19.5.99999.2" extension="bench-mrn-${i}"/>`);
  });
}

/** Documents sent one at a time over HTTP; each answer awaited. */
async function importDocuments(url: string, token: string, documents: string[]): Promise<{ seconds: number; latencies: number[]; notProcessed: number }> {
  const latencies: number[] = [];
  let notProcessed = 0;
  const started = performance.now();
  for (const text of documents) {
    const t = performance.now();
    const res = await fetch(`${url}/fhir/$import-ccda`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/xml' }, body: text });
    const body = (await res.json()) as { parameter?: { name: string; valueCode?: string }[] };
    latencies.push(performance.now() - t);
    if (body.parameter?.find((p) => p.name === 'status')?.valueCode !== 'processed') notProcessed++;
  }
  return { seconds: (performance.now() - started) / 1000, latencies, notProcessed };
}

/** The baseline: each document read and converted to its transaction Bundle in process, nothing stored. */
function convertOnly(documents: string[], participant: Participant): { seconds: number; latencies: number[]; notProcessed: number } {
  const latencies: number[] = [];
  const started = performance.now();
  for (const text of documents) {
    const t = performance.now();
    const root = parseSecureXml(text);
    const header = readHeader(root);
    readPatient(root, participant);
    const ctx = new CcdaContext(participant, { reference: 'Patient/x' }, 'bench');
    mapDocument(ctx, header, text, root);
    ctx.tx.bundle();
    latencies.push(performance.now() - t);
  }
  return { seconds: (performance.now() - started) / 1000, latencies, notProcessed: 0 };
}

async function main(): Promise<void> {
  // Baseline: MLLP framing, parsing and an ACK, nothing stored.
  const echo = new MllpListener(async (bytes) => buildAck(V2Message.parse(bytes.toString('utf8')), 'AA', 'x'));
  const echoPort = await echo.start({ port: 0, host: '127.0.0.1' });
  const baselineTexts = Array.from({ length: MESSAGES }, (_, i) => message(i, 'base'));
  const baseline1 = await sendAll(echoPort, baselineTexts, 1);
  const baselineN = await sendAll(echoPort, baselineTexts, CONNECTIONS);
  await echo.stop();

  // Installed before the store opens, so that every statement Tessera prepares is seen.
  const { config, cleanup } = benchConfig(BACKEND);
  const recorder = BACKEND === 'sqlite' ? new SqliteWriteRecorder(join(config.dataDir, 'tessera.db')) : undefined;
  const tessera = await createTessera({ ...config, mllpPort: 0 });
  await addParticipant(tessera.repo, { name: 'Bench General', mrnSystem: 'urn:example:benchgen:mrn', hl7Facility: 'BENCHGEN' });
  const port = (await tessera.startMllp()) as number;
  process.stderr.write(`[${BACKEND}] ${MESSAGES} messages on 1 connection\n`);
  const snapshot = recorder && (await snapshotStore(join(config.dataDir, 'tessera.db')));
  recorder?.start();
  const sequential = await sendAll(port, Array.from({ length: MESSAGES }, (_, i) => message(i, 'seq')), 1);
  const recorded = recorder?.stop();
  process.stderr.write(`[${BACKEND}] ${MESSAGES} messages on ${CONNECTIONS} connections\n`);
  const concurrent = await sendAll(port, Array.from({ length: MESSAGES }, (_, i) => message(i, 'par')), CONNECTIONS);
  const [{ n: stored }] = await tessera.db.query<{ n: number }>("SELECT COUNT(*) AS n FROM message WHERE status = 'processed'");

  const documents = ccdaDocuments(DOCUMENTS);
  const { participant: clinic, client } = await addParticipant(tessera.repo, { name: 'Bench Clinic', mrnSystem: 'urn:oid:2.16.840.1.113883.19.5.99999.2', scope: 'system/*.cruds' });
  const ccdaBaseline = convertOnly(documents, clinic);
  const url = await tessera.app.listen({ port: 0, host: '127.0.0.1' });
  const token = await clientToken(url, { clientId: client?.clientId as string, clientSecret: client?.clientSecret });
  process.stderr.write(`[${BACKEND}] ${DOCUMENTS} C-CDA documents over HTTP\n`);
  const ccda = await importDocuments(url, token, documents);
  await tessera.close();
  if (BACKEND === 'postgres' && config.schema) {
    await dropBenchSchema(config.schema);
  }
  cleanup();
  // The storage floor: the rows the 1-connection series wrote, replayed alone (bench/sqlite-write-floor.ts).
  const floor1 = snapshot && recorded && (await replayWrites(snapshot.file, recorded.transactions, 1));
  const floorN = snapshot && recorded && (await replayWrites(snapshot.file, recorded.transactions, CONNECTIONS));
  snapshot?.remove();

  const row = (label: string, r: { seconds: number; latencies: number[]; notAA: number }) => {
    const p = percentiles(r.latencies);
    return `| ${label} | ${Math.round(r.latencies.length / r.seconds)} | ${fmt(p.p50)} | ${fmt(p.p95)} | ${fmt(p.p99)} | ${r.notAA} |`;
  };
  const results = { date: new Date().toISOString(), commit, machine, backend: BACKEND, messages: MESSAGES, connections: CONNECTIONS, baseline1, baselineN, sequential, concurrent, stored: Number(stored), documents: DOCUMENTS, ccdaBaseline, ccda };
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(`bench/results/ingest-${BACKEND}.json`, JSON.stringify({ ...results, baseline1: undefined, baselineN: undefined, sequential: undefined, concurrent: undefined, ccdaBaseline: undefined, ccda: undefined }, null, 2));
  console.log(`# Tessera HL7 v2 intake ${results.date.slice(0, 10)}, commit ${commit}, ${BACKEND}\n\nMachine: ${machine}\n`);
  console.log(`${MESSAGES} messages per series, half ADT^A01 (Patient, Encounter, Condition), half ORU^R01 (DiagnosticReport, 5 Observations); ${stored} applied.\n`);
  console.log('| series | messages/s | ACK p50 ms | p95 ms | p99 ms | not AA |');
  console.log('|---|---|---|---|---|---|');
  console.log(row('baseline: MLLP + parse + ACK, nothing stored, 1 connection', baseline1));
  console.log(row(`baseline, ${CONNECTIONS} connections`, baselineN));
  console.log(row('Tessera, 1 connection', sequential));
  console.log(row(`Tessera, ${CONNECTIONS} connections`, concurrent));
  if (floor1 && floorN && recorded) {
    const perMessage = recorded.transactions.reduce((n, tx) => n + tx.length, 0) / recorded.transactions.length;
    const floorRow = (label: string, r: { seconds: number; latencies: number[] }, perCommit: number) => {
      const p = percentiles(r.latencies);
      return `| ${label} | ${Math.round((r.latencies.length * perCommit) / r.seconds)} | ${fmt(p.p50)} | ${fmt(p.p95)} | ${fmt(p.p99)} | - |`;
    };
    console.log(floorRow(`storage floor: the 1-connection series' ${perMessage.toFixed(1)} row writes per message replayed alone, a commit per message`, floor1, 1));
    console.log(floorRow(`storage floor, ${CONNECTIONS} messages per commit`, floorN, CONNECTIONS));
    if (recorded.rolledBack) console.log(`\n(${recorded.rolledBack} rollbacks during the series: the floor replays their writes too)`);
  }
  const docRow = (label: string, r: { seconds: number; latencies: number[]; notProcessed: number }) => {
    const p = percentiles(r.latencies);
    return `| ${label} | ${(r.latencies.length / r.seconds).toFixed(1)} | ${fmt(p.p50)} | ${fmt(p.p95)} | ${fmt(p.p99)} | ${r.notProcessed} |`;
  };
  if (!DOCUMENTS) return; // --documents 0: the HL7 series only
  console.log(`\n${DOCUMENTS} C-CDA documents (the 34 public samples in turn, each a new document of a new patient), one at a time.\n`);
  console.log('| series | documents/s | p50 ms | p95 ms | p99 ms | not processed |');
  console.log('|---|---|---|---|---|---|');
  console.log(docRow('baseline: read and convert in process, nothing stored', ccdaBaseline));
  console.log(docRow('Tessera, POST /fhir/$import-ccda', ccda));
}

await main();
