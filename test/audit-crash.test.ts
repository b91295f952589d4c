// SIGKILL under load loses no AuditEvent of an answered request: `tessera serve` runs as a child process
// over a fresh store, concurrent reads and searches run for about 1.5 s, the process is killed mid-load,
// and every X-Request-Id that came back with an answer must have its event in the chain once the log is
// opened again (recovering the killed process's journal). Test data is
// synthetic (one made-up Patient and its Observations, written by the test).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { openAuditLog } from '../src/audit/audit-store.js';
import { storedAuditEvent } from '../src/audit/stored-event.js';
import { verifyAuditLog } from '../src/audit/audit-verify.js';
import { createClient } from '../src/security/clients.js';
import { openDatabase } from '../src/store/open.js';
import { BACKENDS, dropTestSchema, testConfig } from './helpers/backends.js';
import { CLI } from './helpers/paths.js';
import { getToken } from './helpers/server.js';

const LOAD_MS = 1500;
const CONCURRENCY = 8;

function listening(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      stderr += chunk;
      const m = /listening on (http:\/\/[^\s/]+:\d+)\/fhir/.exec(stderr);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`tessera serve exited with ${code}: ${stderr}`)));
  });
}

for (const backend of BACKENDS) {
  describe(`audit log survives SIGKILL (${backend})`, () => {
    const { config, cleanup } = testConfig(backend);
    after(async () => {
      await dropTestSchema(config);
      cleanup();
    });

    it('every answered request has its AuditEvent after the server is killed under load, and the chain is intact', async () => {
      const db = await openDatabase(config);
      const client = await createClient(db, { name: 'crash-load', scope: 'system/*.cruds' });
      await db.close();
      const args = [CLI, 'serve', '--port', '0', '--data', config.dataDir, ...(config.databaseUrl ? ['--database-url', config.databaseUrl] : [])];
      const child = spawn(process.execPath, args, {
        env: { ...process.env, LOG_LEVEL: 'warn', TESSERA_PG_SCHEMA: config.schema ?? '', TESSERA_MLLP_PORT: 'off', TESSERA_AUDIT: 'on' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      try {
        const url = await listening(child);
        const token = await getToken(url, client.clientId, client.clientSecret as string);
        const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' };
        const post = async (body: object) => (await (await fetch(`${url}/fhir/${(body as { resourceType: string }).resourceType}`, { method: 'POST', headers, body: JSON.stringify(body) })).json()) as { id: string };
        const patient = await post({ resourceType: 'Patient', name: [{ family: 'Crashdemo' }] });
        for (let i = 0; i < 5; i++) {
          await post({ resourceType: 'Observation', status: 'final', code: { text: `reading ${i}` }, subject: { reference: `Patient/${patient.id}` } });
        }
        const paths = [`Patient/${patient.id}`, `Observation?subject=Patient/${patient.id}`, `Observation?code=reading`, `Patient/${patient.id}/$everything`];
        const answered: string[] = [];
        let killed = false;
        const worker = async (n: number) => {
          for (let i = 0; !killed && i < 100_000; i++) {
            try {
              const res = await fetch(`${url}/fhir/${paths[(i + n) % paths.length]}`, { headers });
              await res.arrayBuffer(); // answered: the whole response arrived
              answered.push(res.headers.get('x-request-id') as string);
            } catch {
              return; // the server is gone
            }
          }
        };
        const load = Array.from({ length: CONCURRENCY }, (_, n) => worker(n));
        // Killed mid-load: after LOAD_MS and once enough requests were answered (a busy machine answers
        // fewer in the same time; the test is about losing none, not about how many).
        const started = Date.now();
        while (Date.now() - started < LOAD_MS || (answered.length <= 100 && Date.now() - started < 30_000)) await new Promise((resolve) => setTimeout(resolve, 50));
        child.kill('SIGKILL');
        killed = true;
        await Promise.all(load);
        await exited;
        assert.ok(answered.length > 50, `enough load (${answered.length} answered)`);

        // The next start on this data directory appends what the killed process journalled but had not
        // committed (openAuditLog is what `tessera serve` opens the log with).
        const store = await openDatabase(config);
        const log = await openAuditLog(config, store);
        const audit = log.db;
        try {
          const rows = await audit.query<{ content: string }>('SELECT content FROM audit_event');
          const recorded = new Set<string>();
          for (const row of rows) {
            const event = storedAuditEvent(row.content);
            recorded.add(event.entity?.find((e) => e.type?.code === 'XrequestId')?.what?.identifier?.value as string);
          }
          const lost = answered.filter((id) => !recorded.has(id));
          assert.deepEqual(lost, [], `${lost.length} of ${answered.length} answered requests have no AuditEvent`);
          const report = await verifyAuditLog(audit);
          assert.equal(report.problem, undefined);
        } finally {
          await log.close();
          await store.close();
        }
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await exited;
      }
    });
  });
}
