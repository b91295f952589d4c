/**
 * npm run bench:mpi-shared [-- --records 10000]
 *
 * Create time and stored rows as thousands of different people share one birth date (issue 16 item 4):
 * src/synthetic/shared-demographic.ts records POSTed one by one through the engine's write path (in
 * process, each its own transaction, linked incrementally) into a scratch SQLite store; prints the mean
 * and p95 create time of each 1,000 records and the index's rows per record.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dispatch } from '../src/engine/fhir-router.js';
import { requestFor } from '../src/engine/fhir-request.js';
import { configFromEnv } from '../src/server/config.js';
import { createTessera } from '../src/server/tessera.js';
import { sharedBirthDatePeople } from '../src/synthetic/shared-demographic.js';
import { arg } from './args.js';
import { COMMIT as commit } from './environment.js';
import { fmt, percentiles } from './stats.js';

const RECORDS = Number(arg('records', '10000'));
const dir = mkdtempSync(join(tmpdir(), 'bench-mpi-shared-'));
const tessera = await createTessera({ ...configFromEnv({ dataDir: dir, logLevel: 'warn' }), databaseUrl: undefined, schema: undefined, mpi: true }, { auditThread: false });
try {
  const times: number[] = [];
  for (const patient of sharedBirthDatePeople(RECORDS)) {
    const started = performance.now();
    await dispatch(tessera.repo, { ...requestFor('POST', 'Patient', { baseUrl: 'urn:tessera', body: patient }), prefer: 'return=minimal' });
    times.push(performance.now() - started);
  }
  const count = async (table: string) => Number((await tessera.db.query<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table}`))[0].n);
  const describe = (label: string, xs: number[]) => {
    const p = percentiles(xs);
    return `| ${label} | ${fmt(xs.reduce((a, b) => a + b, 0) / xs.length)} | ${fmt(p.p50)} | ${fmt(p.p95)} |`;
  };
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  process.stdout.write(`${RECORDS} records sharing one birth date, commit ${commit}, load average at the end ${load}\n\n`);
  process.stdout.write('| records | mean ms | p50 ms | p95 ms |\n|---|---|---|---|\n');
  // Every thousand: whether the time levels off once each blocking key's candidates reach their cap.
  for (let start = 0; start < times.length; start += 1000) {
    process.stdout.write(`${describe(`${(start + 1).toLocaleString('en')}-${Math.min(start + 1000, times.length).toLocaleString('en')}`, times.slice(start, start + 1000))}\n`);
  }
  process.stdout.write('\n');
  const [pairs, keys, enterprises] = [await count('mpi_pair'), await count('mpi_block'), await count("mpi_enterprise WHERE status = 'active'")];
  process.stdout.write(`mpi_pair ${pairs} rows (${(pairs / RECORDS).toFixed(2)} per record), mpi_block ${keys} rows (${(keys / RECORDS).toFixed(2)} per record), ${enterprises} enterprises\n`);
} finally {
  await tessera.close();
  rmSync(dir, { recursive: true, force: true });
}
