/**
 * npx tsx bench/audit-append.ts [--backends sqlite,postgres] [--events 2000]
 *
 * The audit log's write path alone, for events of a typical search (20 Observations of one patient): what
 * a request waits for (`record`: the journal line written), and what the background flush costs per event
 * (building, hashing and committing it to the chain), in µs. The events carry what the engine's carry
 * (`unattached` empty: the 20 Observations are found through their patient's key). Less noisy than the HTTP comparison
 * (bench/governance.ts) on a shared machine. Synthetic records.
 */
import { arg } from './args.js';
import { benchConfig, dropBenchSchema } from './config.js';
import { openAuditLog } from '../src/audit/audit-store.js';
import type { AuditRecord } from '../src/audit/audit-record.js';
import { openDatabase } from '../src/store/open.js';

const BACKENDS = arg('backends', 'sqlite,postgres').split(',') as ('sqlite' | 'postgres')[];
const EVENTS = Number(arg('events', '2000'));

function searchRecord(i: number): AuditRecord {
  const observations = Array.from({ length: 20 }, (_, n) => `Observation/0190a5c4-${String(i).padStart(4, '0')}-7000-8000-${String(n).padStart(12, '0')}`);
  return {
    kind: 'rest', subtype: 'search-type', action: 'E', outcome: 0, httpStatus: 200, recorded: Date.now(), requestId: crypto.randomUUID(),
    clientId: 'bench-client', tokenId: crypto.randomUUID(), resourceType: 'Observation', query: `subject=Patient/p-${i}&_count=20`,
    subjects: { resources: observations, patients: new Map([[`p-${i}`, new Map([['Observation', 20]])]]), unattached: [] },
  };
}

for (const backend of BACKENDS) {
  const { config, cleanup } = benchConfig(backend);
  const db = await openDatabase(config);
  const log = await openAuditLog(config, db);
  await log.flush();
  let started = performance.now();
  for (let i = 0; i < EVENTS; i++) await log.record(searchRecord(i));
  const journalled = ((performance.now() - started) * 1000) / EVENTS;
  started = performance.now();
  const cpu = process.cpuUsage();
  await log.flush();
  const flushed = ((performance.now() - started) * 1000) / EVENTS;
  // CPU time as well as elapsed: on a busy machine the elapsed time says more about the others.
  const { user, system } = process.cpuUsage(cpu);
  console.log(`${backend}: record (journal write, what a request waits for) ${journalled.toFixed(1)} µs/event; background flush ${flushed.toFixed(0)} µs/event, ${((user + system) / EVENTS).toFixed(0)} µs CPU/event (${EVENTS} events, one flush)`);
  await log.close();
  await db.close();
  if (backend === 'postgres' && config.schema) {
    await dropBenchSchema(config.schema);
  }
  cleanup();
}
