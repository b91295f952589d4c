/**
 * npm run bench:ingest [-- --messages 2000 --backend sqlite|postgres --connections 8]
 *
 * HL7 v2 intake over MLLP: generated ADT^A01 and ORU^R01 messages (half each, synthetic people) sent with
 * an MLLP client not written here (@medplum/hl7's Hl7Client), original-mode ACK awaited for each; first
 * on one connection, then on N concurrent connections. The baseline of the same run is an MLLP listener
 * that acknowledges without storing anything: the transport's own ceiling on this machine.
 */
import { arg } from './args.js';
import { Hl7Message } from '@medplum/core';
import { Hl7Client } from '@medplum/hl7';
import { cpus, totalmem } from 'node:os';
import { execSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { buildAck } from '../src/hl7v2/acknowledgement.js';
import { V2Message } from '../src/hl7v2/message-reader.js';
import { MllpListener } from '../src/hl7v2/mllp-listener.js';
import { addParticipant } from '../src/participants/participants.js';
import { createTessera } from '../src/server/tessera.js';
import { PostgresDatabase } from '../src/store/postgres.js';
import { Random } from '../src/synthetic/random.js';
import { BENCH_DATABASE_URL, benchConfig } from './config.js';
import { fmt, percentiles } from './stats.js';


const MESSAGES = Number(arg('messages', '2000'));
const BACKEND = arg('backend', 'sqlite') as 'sqlite' | 'postgres';
const CONNECTIONS = Number(arg('connections', '8'));
const FAMILIES = ['Okafor', 'Lindqvist', 'Moreau', 'Tanaka', 'Brennan', 'Haddad', 'Novak', 'Castillo'];
const GIVEN = ['Ada', 'Bram', 'Cleo', 'Dev', 'Esme', 'Farid', 'Greta', 'Hugo'];

/** The i-th generated message: even i an admission, odd i a lab result for the same person. */
function message(i: number, run: string): string {
  const rnd = new Random(i);
  const person = Math.floor(i / 2);
  const mrn = `${run}-${person}`;
  const pid = `PID|1||${mrn}^^^BENCHGEN^MR||${rnd.pick(FAMILIES)}${person}^${rnd.pick(GIVEN)}||19${rnd.int(40, 99)}0${rnd.int(1, 9)}1${rnd.int(0, 9)}|${rnd.pick(['M', 'F'])}|||${rnd.int(1, 999)} Elm St^^Springfield^MA^0${rnd.int(1000, 2799)}`;
  const control = `${run}-${i}`;
  if (i % 2 === 0) {
    return [
      `MSH|^~\\&|ADT|BENCHGEN|HIE|TESSERA|20261125120000||ADT^A01^ADT_A01|${control}|P|2.5.1`,
      'EVN|A01|20261125120000',
      pid,
      `PV1|1|I|W${rnd.int(1, 9)}^${rnd.int(100, 499)}^A||||1234^Doe^Jan|||MED||||||||V${mrn}|||||||||||||||||||||||||20261125115500`,
      `DG1|1||I10^Essential hypertension^I10|||A`,
    ].join('\r');
  }
  const obx = Array.from({ length: 5 }, (_, k) => `OBX|${k + 1}|NM|${['2345-7^Glucose', '2160-0^Creatinine', '2951-2^Sodium', '2823-3^Potassium', '718-7^Hemoglobin'][k]}^LN||${rnd.int(1, 200)}|${['mg/dL', 'mg/dL', 'mmol/L', 'mmol/L', 'g/dL'][k]}|1-200|N|||F|||20261125110000`);
  return [`MSH|^~\\&|LAB|BENCHGEN|HIE|TESSERA|20261125120500||ORU^R01^ORU_R01|${control}|P|2.5.1`, pid, `OBR|1||F-${control}|24323-8^Metabolic panel^LN|||20261125110000||||||||||||||||||F`, ...obx].join('\r');
}

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

async function main(): Promise<void> {
  // Baseline: MLLP framing, parsing and an ACK, nothing stored.
  const echo = new MllpListener(async (text) => buildAck(V2Message.parse(text), 'AA', 'x'));
  const echoPort = await echo.start({ port: 0, host: '127.0.0.1' });
  const baselineTexts = Array.from({ length: MESSAGES }, (_, i) => message(i, 'base'));
  const baseline1 = await sendAll(echoPort, baselineTexts, 1);
  const baselineN = await sendAll(echoPort, baselineTexts, CONNECTIONS);
  await echo.stop();

  const { config, cleanup } = benchConfig(BACKEND);
  const tessera = await createTessera({ ...config, mllpPort: 0 });
  await addParticipant(tessera.repo, { name: 'Bench General', mrnSystem: 'urn:example:benchgen:mrn', hl7Facility: 'BENCHGEN' });
  const port = (await tessera.startMllp()) as number;
  process.stderr.write(`[${BACKEND}] ${MESSAGES} messages on 1 connection\n`);
  const sequential = await sendAll(port, Array.from({ length: MESSAGES }, (_, i) => message(i, 'seq')), 1);
  process.stderr.write(`[${BACKEND}] ${MESSAGES} messages on ${CONNECTIONS} connections\n`);
  const concurrent = await sendAll(port, Array.from({ length: MESSAGES }, (_, i) => message(i, 'par')), CONNECTIONS);
  const [{ n: stored }] = await tessera.db.query<{ n: number }>("SELECT COUNT(*) AS n FROM message WHERE status = 'processed'");
  await tessera.close();
  if (BACKEND === 'postgres' && config.schema) {
    const pg = new PostgresDatabase({ connectionString: BENCH_DATABASE_URL });
    await pg.exec(`DROP SCHEMA IF EXISTS ${config.schema} CASCADE`);
    await pg.close();
  }
  cleanup();

  let commit = 'unknown';
  try {
    commit = execSync('git rev-parse --short HEAD', { encoding: 'utf8' }).trim();
  } catch {
    // not a checkout
  }
  const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
  const row = (label: string, r: { seconds: number; latencies: number[]; notAA: number }) => {
    const p = percentiles(r.latencies);
    return `| ${label} | ${Math.round(r.latencies.length / r.seconds)} | ${fmt(p.p50)} | ${fmt(p.p95)} | ${fmt(p.p99)} | ${r.notAA} |`;
  };
  const results = { date: new Date().toISOString(), commit, machine, backend: BACKEND, messages: MESSAGES, connections: CONNECTIONS, baseline1, baselineN, sequential, concurrent, stored: Number(stored) };
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(`bench/results/ingest-${BACKEND}.json`, JSON.stringify({ ...results, baseline1: undefined, baselineN: undefined, sequential: undefined, concurrent: undefined }, null, 2));
  console.log(`# Tessera HL7 v2 intake ${results.date.slice(0, 10)}, commit ${commit}, ${BACKEND}\n\nMachine: ${machine}\n`);
  console.log(`${MESSAGES} messages per series, half ADT^A01 (Patient, Encounter, Condition), half ORU^R01 (DiagnosticReport, 5 Observations); ${stored} applied.\n`);
  console.log('| series | messages/s | ACK p50 ms | p95 ms | p99 ms | not AA |');
  console.log('|---|---|---|---|---|---|');
  console.log(row('baseline: MLLP + parse + ACK, nothing stored, 1 connection', baseline1));
  console.log(row(`baseline, ${CONNECTIONS} connections`, baselineN));
  console.log(row('Tessera, 1 connection', sequential));
  console.log(row(`Tessera, ${CONNECTIONS} connections`, concurrent));
}

await main();
