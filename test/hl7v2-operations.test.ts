import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { identifierQuery } from '../src/bundle/transaction-builder.js';
import { systemRequest } from '../src/ingest/system-request.js';
import { findByCriteria } from '../src/engine/crud.js';
import { createTessera } from '../src/server/tessera.js';
import { BACKENDS, dropTestSchema, testConfig } from './helpers/backends.js';
import { tessera } from './helpers/cli.js';
import { MllpSender } from './helpers/mllp.js';
import { CLI } from './helpers/paths.js';
import { getToken, startTestServer, type TestServer } from './helpers/server.js';

const admit = (facility: string, control: string, mrn: string, family: string) =>
  `MSH|^~\\&|ADT|${facility}|HIE|TESSERA|20261110090000||ADT^A04|${control}|P|2.5.1\rPID|1||${mrn}^^^${facility}^MR||${family}^Alex||19900101|U\rPV1|1|O|CLINIC^1||||||||||||||||V-${mrn}`;

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

for (const backend of BACKENDS) {
  describe(`message log, replay and participants: API and CLI (${backend})`, () => {
    let s: TestServer;
    let sender: MllpSender;
    let mllpPort: number;
    /** The OAuth client registered with the Harbour Clinic participant (its secret is printed once). */
    let harbourClient: { clientId: string; clientSecret: string };
    const env = () => ({ DATABASE_URL: s.tessera.config.databaseUrl ?? '', TESSERA_PG_SCHEMA: s.tessera.config.schema ?? '' });
    const data = () => ['--data', s.tessera.config.dataDir];
    const api = async (method: string, path: string, token = s.token, body?: unknown) => {
      const res = await fetch(`${s.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      return { status: res.status, body: (await res.json()) as any };
    };

    before(async () => {
      s = await startTestServer(backend);
      s.tessera.config.mllpPort = 0;
      mllpPort = (await s.tessera.startMllp()) as number;
      sender = new MllpSender(mllpPort);
    });
    after(async () => {
      await sender?.close();
      await s?.close();
    });

    it('tessera participants add/list registers a sender; a sender registered twice is refused', async () => {
      const added = await tessera(['participants', 'add', ...data(), '--name', 'Harbour Clinic', '--mrn-system', 'urn:example:harbour:mrn', '--hl7-facility', 'HARBOUR', '--scope', 'system/*.cruds'], env());
      assert.equal(added.code, 0, added.stderr);
      const created = JSON.parse(added.stdout);
      harbourClient = created.client;
      assert.equal(created.participant.name, 'Harbour Clinic');
      assert.ok(created.client.clientId && created.client.clientSecret, 'an OAuth client for its FHIR traffic');
      const org = await s.fhir('GET', `Organization/${created.participant.organizationId}`);
      assert.equal(org.body.name, 'Harbour Clinic');
      const endpoints = await s.fhir('GET', `Endpoint?organization=Organization/${created.participant.organizationId}`);
      assert.deepEqual(endpoints.body.entry.map((e: any) => e.resource.connectionType.code).sort(), ['hl7-fhir-rest', 'hl7v2-mllp']);
      const listed = await tessera(['participants', 'list', ...data()], env());
      assert.match(listed.stdout, /Harbour Clinic\s+mrn=urn:example:harbour:mrn\s+hl7=HARBOUR/);
      const again = await tessera(['participants', 'add', ...data(), '--name', 'Other', '--mrn-system', 'urn:example:other:mrn', '--hl7-facility', 'HARBOUR'], env());
      assert.notEqual(again.code, 0);
      assert.match(again.stderr, /HL7 sender HARBOUR is already registered/);
      const bad = await tessera(['participants', 'add', ...data(), '--name', 'X', '--mrn-system', 'not a uri'], env());
      assert.match(bad.stderr, /must be a URI/);
    });

    it("a participant's FHIR writes are logged, carry meta.source and a Provenance naming it; other clients' are not", async () => {
      const harbour = (await api('GET', '/participants')).body.participants.find((p: any) => p.name === 'Harbour Clinic');
      assert.ok(harbour?.clientId, 'registered by the previous test, with a client');
      const token = await getToken(s.url, harbourClient.clientId, harbourClient.clientSecret);
      const bundle = {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          { fullUrl: 'urn:uuid:p1', resource: { resourceType: 'Patient', identifier: [{ system: 'urn:example:harbour:mrn', value: 'H-77' }], name: [{ family: 'Tidewell' }] }, request: { method: 'POST', url: 'Patient' } },
          { resource: { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] }, subject: { reference: 'urn:uuid:p1' }, valueQuantity: { value: 72, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' } }, request: { method: 'POST', url: 'Observation' } },
        ],
      };
      const posted = await s.fhir('POST', '', bundle, { authorization: `Bearer ${token}` });
      assert.equal(posted.status, 200, JSON.stringify(posted.body));
      const patientRef = posted.body.entry[0].response.location.match(/Patient\/[^/]+/)[0];
      const patient = (await s.fhir('GET', patientRef)).body;
      assert.match(patient.meta.source, /^urn:tessera:message:/);
      const provenance = (await s.fhir('GET', `Provenance?target=${patientRef}`)).body.entry[0].resource;
      assert.equal(provenance.agent[0].who.reference, `Organization/${harbour.organizationId}`);
      assert.equal(provenance.target.length, 2);
      const logged = (await api('GET', `/messages?sender=${harbour.id}`)).body.messages;
      assert.equal(logged[0].format, 'fhir');
      assert.equal(logged[0].status, 'processed');
      assert.equal(logged[0].patient, patientRef);

      const bad = await s.fhir('POST', 'Observation', { resourceType: 'Observation', status: 'bogus', code: { text: 'x' } }, { authorization: `Bearer ${token}` });
      assert.equal(bad.status, 422, 'an invalid code: unprocessable');
      const failed = (await api('GET', `/messages?sender=${harbour.id}&status=failed`)).body.messages;
      assert.equal(failed.length, 1);
      assert.match(failed[0].error, /^422: .*bogus/);

      const before = (await api('GET', '/messages?_count=1000')).body.messages.length;
      assert.equal((await s.fhir('POST', 'Patient', { resourceType: 'Patient', name: [{ family: 'Operator' }] })).status, 201);
      assert.equal((await api('GET', '/messages?_count=1000')).body.messages.length, before, "the operator's own writes are not participant messages");
    });

    it('a message from a sender not yet registered waits in the error queue and is applied by replay once it is (API and CLI)', async () => {
      const first = await sender.send(admit('PIER', 'PI-1', 'P-1', 'Dunmore'));
      const second = await sender.send(admit('PIER', 'PI-2', 'P-2', 'Ashgrove'));
      assert.deepEqual([first.code, second.code], ['AR', 'AR']);
      const queue = await api('GET', '/messages?status=failed&type=ADT');
      const queued = queue.body.messages.filter((m: any) => m.controlId === 'PI-1' || m.controlId === 'PI-2');
      assert.equal(queued.length, 2);
      assert.match(queued[0].error, /Unknown sender.*PIER/);
      const detail = await api('GET', `/messages/${queued[0].id}`);
      assert.match(detail.body.raw, /^MSH\|/);

      const pier = await api('POST', '/participants', s.token, { name: 'Pier Hospital', mrnSystem: 'urn:example:pier:mrn', hl7Facility: 'PIER' });
      assert.equal(pier.status, 201);
      const replayed = await api('POST', `/messages/${queued.find((m: any) => m.controlId === 'PI-1').id}/replay`);
      assert.equal(replayed.status, 200);
      assert.equal(replayed.body.ackCode, 'AA');
      assert.equal(replayed.body.status, 'processed');
      assert.ok(replayed.body.patient?.startsWith('Patient/'));
      const cli = await tessera(['messages', 'replay', ...data(), queued.find((m: any) => m.controlId === 'PI-2').id], env());
      assert.equal(cli.code, 0, cli.stderr);
      assert.match(cli.stdout, /^AA processed/);
      const patients = await s.fhir('GET', 'Patient?identifier=urn:example:pier:mrn|');
      assert.equal(patients.body.entry.length, 2);
      const listed = await tessera(['messages', 'list', ...data(), '--type', 'ADT^A04', '--status', 'processed'], env());
      assert.match(listed.stdout, /processed\s+ADT\^A04\s+PI-1/);
      const byPatient = await api('GET', `/messages?patient=${encodeURIComponent(replayed.body.patient)}`);
      assert.equal(byPatient.body.messages.length, 1);
    });

    it('tessera send-hl7 sends files over MLLP and prints each ACK (exit 1 unless all AA); tessera messages show prints the raw message; the list pages', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'tessera-send-'));
      try {
        writeFileSync(join(dir, 'ok.hl7'), admit('PIER', 'PI-9', 'P-9', 'Kestrel').replace(/\r/g, '\n'));
        writeFileSync(join(dir, 'stranger.hl7'), admit('NOBODY', 'NB-1', 'N-1', 'Nobody'));
        const ok = await tessera(['send-hl7', '--port', String(mllpPort), join(dir, 'ok.hl7')], env());
        assert.equal(ok.code, 0, ok.stderr);
        assert.match(ok.stdout, /MSA\|AA\|PI-9/);
        const refused = await tessera(['send-hl7', '--port', String(mllpPort), join(dir, 'ok.hl7'), join(dir, 'stranger.hl7')], env());
        assert.equal(refused.code, 1);
        assert.match(refused.stdout, /MSA\|AR\|NB-1/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      const [latest] = (await api('GET', '/messages?_count=1')).body.messages;
      const shown = await tessera(['messages', 'show', ...data(), latest.id], env());
      assert.match(shown.stdout, /--- raw ---\nMSH\|\^~\\&\|ADT\|NOBODY/);
      const page1 = (await api('GET', '/messages?_count=2')).body.messages;
      const page2 = (await api('GET', `/messages?_count=2&before=${page1[1].id}`)).body.messages;
      assert.equal(page2.length, 2);
      assert.ok(page2[0].id < page1[1].id, 'the next page starts after the last id of the first');
    });

    it('the message API needs a token over every type, and refuses bad filters', async () => {
      const narrow = await s.tokenFor('system/Patient.rs');
      assert.equal((await api('GET', '/messages', narrow)).status, 403);
      assert.equal((await fetch(`${s.url}/messages`)).status, 401);
      const bad = await api('GET', '/messages?status=lost');
      assert.equal(bad.status, 400);
      assert.match(bad.body.issue[0].diagnostics, /status must be one of/);
      assert.equal((await api('GET', '/messages/nope')).status, 404);
    });
  });

  describe(`MLLP: a server killed mid-stream loses no acknowledged message (${backend})`, () => {
    const store = testConfig(backend);
    let child: ChildProcess | undefined;
    after(async () => {
      child?.kill('SIGKILL');
      await dropTestSchema(store.config);
      store.cleanup();
    });

    const start = async (mllpPort: number) => {
      const proc = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--data', store.config.dataDir], {
        env: { ...process.env, LOG_LEVEL: 'info', TESSERA_MLLP_PORT: String(mllpPort), DATABASE_URL: store.config.databaseUrl ?? '', TESSERA_PG_SCHEMA: store.config.schema ?? '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      await new Promise<void>((resolve, reject) => {
        let out = '';
        proc.stdout?.on('data', (chunk) => {
          out += chunk;
          if (out.includes('MLLP listener started')) resolve();
        });
        proc.once('exit', (code) => reject(new Error(`serve exited ${code}`)));
      });
      return proc;
    };

    it('every message acknowledged AA before the kill is stored after the restart; the rest can be re-sent', async () => {
      const setup = await createTessera(store.config);
      const { addParticipant } = await import('../src/participants/participants.js');
      await addParticipant(setup.repo, { name: 'Crash Test General', mrnSystem: 'urn:example:crash:mrn', hl7Facility: 'CRASH' });
      await setup.close();
      const mllpPort = await freePort();
      child = await start(mllpPort);
      const acked: string[] = [];
      const sender = new MllpSender(mllpPort);
      let killed = false;
      const sending = (async () => {
        for (let i = 0; i < 400 && !killed; i++) {
          try {
            const ack = await sender.send(admit('CRASH', `C-${i}`, `CR-${i}`, `Surname${i}`));
            if (ack.code === 'AA') acked.push(`CR-${i}`);
          } catch {
            break; // the connection died with the server
          }
        }
      })();
      while (acked.length < 25) await new Promise((r) => setTimeout(r, 10));
      child.kill('SIGKILL');
      killed = true;
      await sending;
      await sender.close().catch(() => undefined);

      child = await start(mllpPort);
      child.kill('SIGTERM');
      await new Promise((r) => child?.once('exit', r));
      child = undefined;
      const check = await createTessera({ ...store.config, mpi: false });
      try {
        const missing: string[] = [];
        for (const mrn of acked) {
          const found = await findByCriteria(check.repo, 'Patient', systemRequest({ resourceType: 'Bundle', type: 'batch' }), identifierQuery('urn:example:crash:mrn', mrn));
          if (found.length !== 1) missing.push(mrn);
        }
        assert.deepEqual(missing, [], `every one of the ${acked.length} acknowledged admissions is stored`);
        const [{ unfinished }] = await check.db.query<{ unfinished: number }>("SELECT COUNT(*) AS unfinished FROM message WHERE status = 'received'");
        assert.equal(Number(unfinished), 0, 'a message stored but not applied at the kill was applied on restart');
      } finally {
        await check.close();
      }
    });
  });
}
