// The audit log end to end: every request through the real HTTP server leaves its BALP AuditEvent, the
// events are searchable and feed the accounting of disclosures, and `tessera audit verify` catches an
// edited, removed or reordered event, in the table and in archive files. All data is synthetic, written
// by the tests themselves (a few Patients and Observations with made-up names).
import { getPriority } from 'node:os';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { openAuditDatabase } from '../src/audit/audit-store.js';
import { AUDIT_WRITER_NICE } from '../src/audit/background-priority.js';
import { createClient } from '../src/security/clients.js';
import type { Database } from '../src/store/database.js';
import { BACKENDS, testConfig } from './helpers/backends.js';
import { tessera } from './helpers/cli.js';
import { FIXTURES } from './helpers/paths.js';
import { getToken, startTestServer, type TestServer } from './helpers/server.js';
import { MllpSender } from './helpers/mllp.js';
import { addParticipant } from '../src/participants/participants.js';

/** The AuditEvents in the log, by the X-Request-Id of the request they record. */
async function eventsByRequestId(s: TestServer): Promise<Map<string, any>> {
  const res = await s.fhir('GET', 'AuditEvent?_count=1000');
  assert.equal(res.status, 200);
  const events = new Map<string, any>();
  for (const { resource } of res.body.entry ?? []) {
    const requestId = resource.entity.find((e: any) => e.type?.code === 'XrequestId')?.what?.identifier?.value;
    events.set(requestId, resource);
  }
  return events;
}

const entityRefs = (event: any, role: string): string[] => event.entity.filter((e: any) => e.role?.code === role).map((e: any) => e.what.reference);

for (const backend of BACKENDS) {
  describe(`audit log (${backend})`, () => {
    let s: TestServer;
    let auditDb: Database;
    let patientId: string;
    let otherPatientId: string;
    let observationId: string;
    const cliEnv = () => ({ DATABASE_URL: s.tessera.config.databaseUrl ?? '', TESSERA_PG_SCHEMA: s.tessera.config.schema ?? '' });
    const cliStore = () => ['--data', s.tessera.config.dataDir];
    const archives = mkdtempSync(join(tmpdir(), 'tessera-audit-archive-'));

    before(async () => {
      s = await startTestServer(backend);
      auditDb = await openAuditDatabase(s.tessera.config);
      patientId = (await s.fhir('POST', 'Patient', { resourceType: 'Patient', name: [{ family: 'Auditdemo', given: ['Ada'] }] })).body.id;
      otherPatientId = (await s.fhir('POST', 'Patient', { resourceType: 'Patient', name: [{ family: 'Otherdemo' }] })).body.id;
      observationId = (
        await s.fhir('POST', 'Observation', { resourceType: 'Observation', status: 'final', code: { text: 'heart rate' }, subject: { reference: `Patient/${patientId}` } })
      ).body.id;
    });
    // Events reach the audit tables from the journal within 250 ms; tests that read the tables directly or
    // run `tessera audit` in another process start from a settled log.
    beforeEach(async () => s.tessera.audit?.flush());

    it('commits on a writer thread of lower scheduling priority than the threads answering requests (Linux)', { skip: process.platform !== 'linux' }, () => {
      // /proc/self/task/{tid}/stat: field 19 is the thread's nice value (after the parenthesised name).
      const niceOf = (tid: string) => Number(readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[16]);
      const nices = readdirSync('/proc/self/task').map(niceOf);
      // The process's own nice (0 normally; a test run may itself be started under `nice`).
      assert.equal(niceOf(String(process.pid)), getPriority(), 'the main thread keeps its priority');
      assert.ok(nices.includes(AUDIT_WRITER_NICE), `a thread at nice ${AUDIT_WRITER_NICE} (found ${[...new Set(nices)].join(', ')})`);
    });
    after(async () => {
      await auditDb?.close();
      await s?.close();
      rmSync(archives, { recursive: true, force: true });
    });

    it('each access has its AuditEvent: who, what, why, outcome, matched by X-Request-Id', async () => {
      const read = await s.fhir('GET', `Patient/${patientId}`);
      const search = await s.fhir('GET', `Observation?subject=Patient/${patientId}`);
      const everything = await s.fhir('GET', `Patient/${patientId}/$everything`);
      const created = await s.fhir('POST', 'Observation', { resourceType: 'Observation', status: 'final', code: { text: 'weight' }, subject: { reference: `Patient/${otherPatientId}` } });
      const narrow = await s.tokenFor('system/Organization.rs');
      const refused = await s.fhir('GET', `Patient/${patientId}`, undefined, { authorization: `Bearer ${narrow}` });
      const anonymous = await fetch(`${s.base}/Patient/${patientId}`);
      const badToken = await fetch(`${s.url}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=client_credentials&client_id=nobody&client_secret=wrong',
      });
      const participants = await fetch(`${s.url}/participants`, { headers: { authorization: `Bearer ${s.token}` } });
      const health = await fetch(`${s.url}/healthz`);
      assert.deepEqual(
        [read.status, search.status, everything.status, created.status, refused.status, anonymous.status, badToken.status, participants.status, health.status],
        [200, 200, 200, 201, 403, 401, 401, 200, 200],
      );
      const events = await eventsByRequestId(s);
      const event = (res: { headers: Headers }) => {
        const id = res.headers.get('x-request-id');
        assert.ok(id, 'X-Request-Id header');
        assert.ok(events.has(id), `an AuditEvent for request ${id}`);
        return events.get(id);
      };

      const r = event(read);
      assert.equal(r.type.code, 'rest');
      assert.deepEqual(r.subtype.map((c: any) => c.code), ['read']);
      assert.equal(r.action, 'R');
      assert.equal(r.outcome, '0');
      assert.deepEqual(entityRefs(r, '1'), [`Patient/${patientId}`]);
      const client = r.agent.find((a: any) => a.type.coding?.[0].code === '110153');
      assert.match(client.who.identifier.value, /.+/);
      assert.equal(client.requestor, true);

      const q = event(search);
      assert.equal(q.subtype[0].code, 'search-type');
      assert.equal(q.action, 'E');
      assert.deepEqual(entityRefs(q, '1'), [`Patient/${patientId}`], 'the patient of the returned Observation');
      assert.deepEqual(entityRefs(q, '4'), [`Observation/${observationId}`]);
      const query = q.entity.find((e: any) => e.role?.code === '24');
      assert.equal(Buffer.from(query.query, 'base64').toString('utf8'), `subject=Patient/${patientId}`);

      const e = event(everything);
      assert.equal(e.subtype[0].code, '$everything');
      assert.ok(entityRefs(e, '4').includes(`Observation/${observationId}`));
      assert.deepEqual(e.entity.find((x: any) => x.role?.code === '1').detail[0].valueString.split(',').sort(), ['Observation=1', 'Patient=1']);

      const c = event(created);
      assert.equal(c.action, 'C');
      assert.deepEqual(entityRefs(c, '1'), [`Patient/${otherPatientId}`]);
      assert.deepEqual(entityRefs(c, '4'), [`Observation/${created.body.id}`]);

      const f = event(refused);
      assert.equal(f.outcome, '4');
      assert.equal(f.outcomeDesc, 'HTTP 403');
      assert.deepEqual(entityRefs(f, '1'), [`Patient/${patientId}`], 'a refused attempt still names the patient');

      const a = event(anonymous);
      assert.equal(a.outcome, '4');
      assert.equal(a.agent.find((x: any) => x.type.coding?.[0].code === '110153').who.identifier.value, 'unidentified');

      const t = event(badToken);
      assert.equal(t.type.code, '110114');
      assert.equal(t.outcome, '4');
      assert.equal(t.agent[0].who.identifier.value, 'nobody');
      // Routes outside the FHIR API are recorded by the HTTP layer's catch-all; probes are not.
      const p = event(participants);
      assert.equal(p.subtype[0].code, 'GET /participants');
      assert.equal(p.action, 'R');
      assert.ok(p.agent.some((x: any) => x.who?.identifier?.value === client.who.identifier.value));
      assert.ok(health.headers.get('x-request-id'));
      assert.equal(events.has(health.headers.get('x-request-id') as string), false);
      // A token issued: the admin token of the test server was one.
      assert.ok([...events.values()].some((x) => x.type.code === '110114' && x.outcome === '0' && x.agent[0].policy?.length === 1));
    });

    it('an HL7 v2 message over MLLP has its AuditEvent (Import, the participant, the patient and what was written) before its ACK', async () => {
      s.tessera.config.mllpPort = 0;
      const port = (await s.tessera.startMllp()) as number;
      const { participant } = await addParticipant(s.tessera.repo, { name: 'Audit Demo Hospital', mrnSystem: 'urn:example:auditdemo:mrn', hl7Facility: 'AUDITDEMO' });
      const sender = new MllpSender(port);
      try {
        const ack = await sender.send(
          [
            'MSH|^~\\&|LAB|AUDITDEMO|HIE|TESSERA|20261101083000||ADT^A01^ADT_A01|AD-1|P|2.5.1',
            'EVN|A01|20261101082900',
            'PID|1||AD100^^^AUDITDEMO^MR||Mllpdemo^Iris||19800101|F',
            'PV1|1|I|4E^412^B^AUDITDEMO',
          ].join('\r'),
        );
        assert.equal(ack.code, 'AA');
      } finally {
        await sender.close();
      }
      const res = await s.fhir('GET', `AuditEvent?agent=${participant.id}`);
      assert.equal(res.body.entry.length, 1);
      const event = res.body.entry[0].resource;
      assert.equal(event.type.code, '110107');
      assert.equal(event.subtype[0].code, 'hl7v2 mllp');
      assert.equal(event.action, 'C');
      assert.equal(event.outcome, '0');
      const [patient] = entityRefs(event, '1');
      assert.match(patient, /^Patient\//);
      assert.ok(entityRefs(event, '4').some((r: string) => r.startsWith('Encounter/')));
      assert.equal((await s.fhir('GET', patient)).body.name[0].family, 'Mllpdemo');

      // Reading the raw message from the message log discloses that patient: its event names them.
      const get = (path: string) => fetch(`${s.url}${path}`, { headers: { authorization: `Bearer ${s.token}` } });
      const [message] = ((await (await get(`/messages?sender=${participant.id}`)).json()) as { messages: { id: string }[] }).messages;
      const shown = await get(`/messages/${message.id}`);
      assert.match(((await shown.json()) as { raw: string }).raw, /Mllpdemo/);
      const requestId = shown.headers.get('x-request-id') as string;
      await s.tessera.audit?.flush();
      const byPatient = (await s.fhir('GET', `AuditEvent?patient=${patient}&_count=100`)).body.entry.map((e: any) => e.resource);
      const view = byPatient.find((e: any) => e.entity.some((x: any) => x.what?.identifier?.value === requestId));
      assert.ok(view, 'the message view is found by the patient');
      assert.equal(view.subtype[0].code, 'GET /messages/:id');
      assert.ok(entityRefs(view, '4').some((r: string) => r.startsWith('Encounter/')));
    });

    it('a C-CDA document imported over HTTP has its Import event naming the participant, the patient and what was written', async () => {
      // A public HL7 example document (test/fixtures/ccda-hl7-examples, CC0).
      const xml = readFileSync(join(FIXTURES, 'ccda-hl7-examples', 'Diagnostic_Imaging_Report_Diagnostic_Imaging_Report.xml'), 'utf8');
      const { participant } = await addParticipant(s.tessera.repo, { name: 'Audit Demo Imaging', mrnSystem: 'urn:example:auditimaging:mrn' });
      const res = await fetch(`${s.url}/fhir/$import-ccda?participant=${participant.id}`, { method: 'POST', headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/xml' }, body: xml });
      assert.equal(res.status, 200, await res.clone().text());
      const events = await s.fhir('GET', `AuditEvent?agent=${participant.id}`);
      const event = events.body.entry.find((e: any) => e.resource.type.code === '110107')?.resource;
      assert.ok(event, 'an Import event');
      assert.equal(event.subtype[0].code, 'ccda http');
      assert.equal(entityRefs(event, '1').length, 1, 'the patient');
      assert.ok(entityRefs(event, '4').some((r: string) => r.startsWith('DocumentReference/')));
    });

    it('a search names a patient\'s resources under the patient\'s key only, and AuditEvent?entity= still finds it, also after the resource moved to another patient', async () => {
      // Three Observations of one synthetic patient, searched by a client of its own.
      const owner = (await s.fhir('POST', 'Patient', { resourceType: 'Patient', name: [{ family: 'Keyholder' }] })).body.id as string;
      const observations: string[] = [];
      for (const text of ['pulse', 'weight', 'height']) {
        observations.push((await s.fhir('POST', 'Observation', { resourceType: 'Observation', status: 'final', code: { text }, subject: { reference: `Patient/${owner}` } })).body.id);
      }
      const searcher = await createClient(s.tessera.db, { name: 'audit-entity-searcher', scope: 'system/Observation.rs' });
      const token = await getToken(s.url, searcher.clientId, searcher.clientSecret as string);
      const searched = await s.fhir('GET', `Observation?subject=Patient/${owner}`, undefined, { authorization: `Bearer ${token}` });
      assert.equal(searched.body.entry.length, 3);
      await s.tessera.audit?.flush();
      const [event] = (await s.fhir('GET', `AuditEvent?agent=${searcher.clientId}&patient=${owner}`)).body.entry;
      const keys = await auditDb.query<{ kind: string; ref: string }>('SELECT kind, ref FROM audit_ref WHERE seq = ?', [Number(event.resource.id)]);
      assert.deepEqual(keys.filter((k) => k.kind !== 'a').map((k) => `${k.kind} ${k.ref}`).sort(), [`p Patient/${owner}`], 'one key for the patient, none per Observation');
      // The patient is an entity of the event too: entity= finds it through the patient's key.
      const byPatientEntity = await s.fhir('GET', `AuditEvent?entity=Patient/${owner}&agent=${searcher.clientId}`);
      assert.deepEqual(byPatientEntity.body.entry.map((e: any) => e.resource.id), [event.resource.id], 'entity=Patient/');
      for (const id of observations) {
        const found = await s.fhir('GET', `AuditEvent?entity=Observation/${id}&agent=${searcher.clientId}`);
        assert.deepEqual(found.body.entry.map((e: any) => e.resource.id), [event.resource.id], `Observation/${id}`);
      }
      // The first Observation is corrected to belong to another patient: the event from before still counts.
      const moved = (await s.fhir('GET', `Observation/${observations[0]}`)).body;
      assert.equal((await s.fhir('PUT', `Observation/${observations[0]}`, { ...moved, subject: { reference: `Patient/${otherPatientId}` } })).status, 200);
      const after = await s.fhir('GET', `AuditEvent?entity=Observation/${observations[0]}&agent=${searcher.clientId}`);
      assert.deepEqual(after.body.entry.map((e: any) => e.resource.id), [event.resource.id]);
      // An Observation the client never saw is not found in its events.
      const unseen = (await s.fhir('POST', 'Observation', { resourceType: 'Observation', status: 'final', code: { text: 'unseen' }, subject: { reference: `Patient/${owner}` } })).body.id;
      assert.equal((await s.fhir('GET', `AuditEvent?entity=Observation/${unseen}&agent=${searcher.clientId}`)).body.entry.length, 0);
    });

    it('AuditEvent search by patient, agent, entity and date; read by id; the scope is needed', async () => {
      const reader = await createClient(s.tessera.db, { name: 'audit-reader-client', scope: 'system/Patient.rs system/Observation.rs' });
      const readerToken = await getToken(s.url, reader.clientId, reader.clientSecret as string);
      // Strictly after the token request's event (recorded in the same millisecond as its answer, at times).
      await new Promise((resolve) => setTimeout(resolve, 5));
      const since = new Date().toISOString();
      await s.fhir('GET', `Patient/${otherPatientId}`, undefined, { authorization: `Bearer ${readerToken}` });
      await s.fhir('GET', `Observation/${observationId}`, undefined, { authorization: `Bearer ${readerToken}` });

      const byAgent = await s.fhir('GET', `AuditEvent?agent=${reader.clientId}`);
      // The token request and the two reads.
      assert.equal(byAgent.body.entry.length, 3);
      const byAgentAndPatient = await s.fhir('GET', `AuditEvent?agent=${reader.clientId}&patient=${otherPatientId}`);
      assert.equal(byAgentAndPatient.body.entry.length, 1);
      assert.equal(byAgentAndPatient.body.entry[0].resource.subtype[0].code, 'read');
      const byEntity = await s.fhir('GET', `AuditEvent?entity=Observation/${observationId}&agent=${reader.clientId}`);
      assert.equal(byEntity.body.entry.length, 1);
      const byDate = await s.fhir('GET', `AuditEvent?date=ge${encodeURIComponent(since)}&agent=${reader.clientId}`);
      assert.equal(byDate.body.entry.length, 2, 'the two reads are recorded after `since`');
      const none = await s.fhir('GET', `AuditEvent?date=lt2000-01-01`);
      assert.equal(none.body.entry.length, 0);
      const paged = await s.fhir('GET', `AuditEvent?agent=${reader.clientId}&_count=2`);
      assert.equal(paged.body.entry.length, 2);
      assert.ok(paged.body.link.some((l: any) => l.relation === 'next'));

      const id = byEntity.body.entry[0].resource.id;
      const one = await s.fhir('GET', `AuditEvent/${id}`);
      assert.equal(one.status, 200);
      assert.equal(one.body.id, id);
      assert.equal((await s.fhir('GET', 'AuditEvent/999999999')).status, 404);
      assert.equal((await s.fhir('GET', 'AuditEvent', undefined, { authorization: `Bearer ${readerToken}` })).status, 403);
      assert.equal((await s.fhir('GET', 'AuditEvent?subtype=read')).status, 400);
      // The scope alone is not enough: the audit log names every patient and what was seen of them, so a
      // backend client must also be cleared for every kind of sensitive data (privacy officers' work).
      const uncleared = await s.tokenFor('system/AuditEvent.rs system/Patient.rs');
      assert.equal((await s.fhir('GET', 'AuditEvent', undefined, { authorization: `Bearer ${uncleared}` })).status, 403);
      assert.equal((await s.fhir('GET', `AuditEvent/${id}`, undefined, { authorization: `Bearer ${uncleared}` })).status, 403);
    });

    it('AuditEvent cannot be written through the API, directly or in a transaction', async () => {
      const event = { resourceType: 'AuditEvent', type: { code: 'rest' }, recorded: new Date().toISOString(), agent: [{ requestor: true }], source: { observer: { display: 'x' } } };
      assert.equal((await s.fhir('POST', 'AuditEvent', event)).status, 405);
      assert.equal((await s.fhir('PUT', 'AuditEvent/1', { ...event, id: '1' })).status, 405);
      assert.equal((await s.fhir('DELETE', 'AuditEvent/1')).status, 405);
      const tx = await s.fhir('POST', '', { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: event, request: { method: 'POST', url: 'AuditEvent' } }] });
      assert.ok(tx.status >= 400, `transaction refused (${tx.status})`);
      const [{ n }] = await s.tessera.db.query<{ n: number | string }>("SELECT COUNT(*) AS n FROM resource WHERE type = 'AuditEvent'");
      assert.equal(Number(n), 0);
    });

    it('Patient/$disclosures: who, client, organization, what and when for this patient only', async () => {
      const viewer = await createClient(s.tessera.db, { name: 'disclosure-viewer', scope: 'system/Patient.rs system/Observation.rs' });
      const token = await getToken(s.url, viewer.clientId, viewer.clientSecret as string);
      await s.fhir('GET', `Observation?subject=Patient/${patientId}`, undefined, { authorization: `Bearer ${token}` });
      await s.fhir('GET', `Patient/${otherPatientId}`, undefined, { authorization: `Bearer ${token}` });
      const res = await s.fhir('GET', `Patient/${patientId}/$disclosures`);
      assert.equal(res.status, 200);
      assert.equal(res.body.resourceType, 'Parameters');
      const mine = res.body.parameter.filter((p: any) => p.part.some((x: any) => x.name === 'client' && x.valueString === viewer.clientId));
      assert.equal(mine.length, 1, 'the search for this patient, not the read of the other');
      const part = (name: string) => mine[0].part.find((x: any) => x.name === name);
      assert.equal(part('what').valueString, 'Observation=1');
      assert.equal(part('who').valueString, viewer.clientId);
      assert.equal(part('interaction').valueCode, 'search-type');
      assert.ok(Date.parse(part('when').valueDateTime) > Date.now() - 60_000);
      const narrow = await s.tokenFor('system/Organization.rs');
      assert.equal((await s.fhir('GET', `Patient/${patientId}/$disclosures`, undefined, { authorization: `Bearer ${narrow}` })).status, 403);
      // Reading the record does not entitle a caller to see who else read it.
      assert.equal((await s.fhir('GET', `Patient/${patientId}/$disclosures`, undefined, { authorization: `Bearer ${token}` })).status, 403);
      assert.equal((await s.fhir('GET', 'Patient/no-such-patient/$disclosures')).status, 404);
    });

    it('Patient/$disclosures pages by disclosures: events that are not disclosures do not shorten a page', async () => {
      // Three reads of the patient, each followed by two calls of $disclosures (audited, but not disclosures).
      const reader = await createClient(s.tessera.db, { name: 'disclosure-pager', scope: 'system/Patient.rs' });
      const token = await getToken(s.url, reader.clientId, reader.clientSecret as string);
      for (let i = 0; i < 3; i++) {
        assert.equal((await s.fhir('GET', `Patient/${patientId}`, undefined, { authorization: `Bearer ${token}` })).status, 200);
        for (let j = 0; j < 2; j++) assert.equal((await s.fhir('GET', `Patient/${patientId}/$disclosures?_count=1`)).status, 200);
      }
      const pages: string[][] = [];
      for (let offset = 0; offset < 3; offset++) {
        const res = await s.fhir('GET', `Patient/${patientId}/$disclosures?_count=1&_offset=${offset}`);
        assert.equal(res.status, 200);
        const found = res.body.parameter.filter((p: any) => p.name === 'disclosure');
        assert.equal(found.length, 1, `page ${offset} holds one disclosure`);
        assert.equal(res.body.parameter.some((p: any) => p.name === 'next'), true, 'more disclosures follow');
        pages.push(found[0].part.filter((x: any) => x.name === 'client').map((x: any) => x.valueString));
      }
      assert.deepEqual(pages, [[reader.clientId], [reader.clientId], [reader.clientId]], 'the three reads, newest first');
    });

    it("an operator's CLI actions are audited: who (the OS account), the command and its target", async () => {
      const target = await createClient(s.tessera.db, { name: 'clearance-target', scope: 'system/Patient.rs' });
      const result = await tessera(['clients', 'clearance', target.clientId, 'HIV', ...cliStore()], cliEnv());
      assert.equal(result.code, 0, result.stderr);
      const res = await s.fhir('GET', `AuditEvent?entity=${encodeURIComponent(`client:${target.clientId}`)}`);
      assert.equal(res.status, 200);
      assert.equal(res.body.entry?.length, 1, 'one event for the clearance change');
      const event = res.body.entry[0].resource;
      assert.equal(event.subtype[0].code, 'clients clearance');
      assert.equal(event.type.code, '110100');
      assert.match(event.agent[0].who.identifier.value, /^os:/);
      assert.equal(event.agent[0].role[0].text, 'operator');
    });

    it('tessera audit verify passes on a clean log', async () => {
      const result = await tessera(['audit', 'verify', ...cliStore()], cliEnv());
      assert.equal(result.code, 0, result.stdout + result.stderr);
      assert.match(result.stdout, /Audit log intact: \d+ events/);
    });

    /** A settled event in the middle of the log to tamper with (the server is idle during these tests). */
    async function middleEvent(): Promise<{ seq: number; content: string }> {
      const rows = await auditDb.query<{ seq: number | string; content: string }>('SELECT seq, content FROM audit_event ORDER BY seq LIMIT 5');
      return { seq: Number(rows[3].seq), content: rows[3].content };
    }

    it('tessera audit verify fails after an event is edited', async () => {
      const { seq, content } = await middleEvent();
      await auditDb.run('UPDATE audit_event SET content = ? WHERE seq = ?', [JSON.stringify({ ...JSON.parse(content), outcome: 4, action: 'R' }), seq]);
      try {
        const result = await tessera(['audit', 'verify', ...cliStore()], cliEnv());
        assert.equal(result.code, 1);
        assert.match(result.stdout, new RegExp(`BROKEN at event ${seq} \\(edited\\)`));
      } finally {
        await auditDb.run('UPDATE audit_event SET content = ? WHERE seq = ?', [content, seq]);
      }
      assert.equal((await tessera(['audit', 'verify', ...cliStore()], cliEnv())).code, 0);
    });

    it('tessera audit verify fails after an event is deleted', async () => {
      const { seq } = await middleEvent();
      const [row] = await auditDb.query<Record<string, string | number>>('SELECT seq, recorded_at, content, prev_hash, hash FROM audit_event WHERE seq = ?', [seq]);
      await auditDb.run('DELETE FROM audit_event WHERE seq = ?', [seq]);
      try {
        const result = await tessera(['audit', 'verify', ...cliStore()], cliEnv());
        assert.equal(result.code, 1);
        assert.match(result.stdout, new RegExp(`BROKEN at event ${seq + 1} \\(removed\\): event\\(s\\) ${seq} missing`));
      } finally {
        await auditDb.run('INSERT INTO audit_event (seq, recorded_at, content, prev_hash, hash) VALUES (?, ?, ?, ?, ?)', [row.seq, row.recorded_at, row.content, row.prev_hash, row.hash]);
      }
      assert.equal((await tessera(['audit', 'verify', ...cliStore()], cliEnv())).code, 0);
    });

    it('tessera audit verify fails after two events are swapped', async () => {
      const { seq } = await middleEvent();
      const swap = async () => {
        await auditDb.transaction(async (tx) => {
          await tx.run('UPDATE audit_event SET seq = -1 WHERE seq = ?', [seq]);
          await tx.run('UPDATE audit_event SET seq = ? WHERE seq = ?', [seq, seq + 1]);
          await tx.run('UPDATE audit_event SET seq = ? WHERE seq = -1', [seq + 1]);
        });
      };
      await swap();
      try {
        const result = await tessera(['audit', 'verify', ...cliStore()], cliEnv());
        assert.equal(result.code, 1);
        assert.match(result.stdout, new RegExp(`BROKEN at event ${seq} \\(reordered\\): event ${seq + 1} is stored at position ${seq}`));
      } finally {
        await swap();
      }
      assert.equal((await tessera(['audit', 'verify', ...cliStore()], cliEnv())).code, 0);
    });

    it('tessera audit verify --head detects the newest events cut off, which the chain alone cannot', async () => {
      const clean = await tessera(['audit', 'verify', ...cliStore()], cliEnv());
      const head = /head (\d+:[0-9a-f]{64})/.exec(clean.stdout)?.[1] as string;
      assert.ok(head, clean.stdout);
      const seq = Number(head.split(':')[0]);
      const [row] = await auditDb.query<Record<string, string | number>>('SELECT seq, recorded_at, content, prev_hash, hash FROM audit_event WHERE seq = ?', [seq]);
      await auditDb.run('DELETE FROM audit_event WHERE seq = ?', [seq]);
      try {
        assert.equal((await tessera(['audit', 'verify', ...cliStore()], cliEnv())).code, 0, 'a shorter chain is still a valid chain');
        const result = await tessera(['audit', 'verify', ...cliStore(), '--head', head], cliEnv());
        assert.equal(result.code, 1);
        assert.match(result.stdout, new RegExp(`BROKEN at event ${seq} \\(removed\\)`));
      } finally {
        await auditDb.run('INSERT INTO audit_event (seq, recorded_at, content, prev_hash, hash) VALUES (?, ?, ?, ?, ?)', [row.seq, row.recorded_at, row.content, row.prev_hash, row.hash]);
      }
      assert.equal((await tessera(['audit', 'verify', ...cliStore(), '--head', head], cliEnv())).code, 0);
    });

    it('archive moves old events to files; verify passes across the boundary and fails after an archive file is edited', async () => {
      const [{ n: before }] = await auditDb.query<{ n: number | string }>('SELECT COUNT(*) AS n FROM audit_event');
      await new Promise((resolve) => setTimeout(resolve, 5));
      const cutoff = new Date().toISOString();
      await new Promise((resolve) => setTimeout(resolve, 5));
      // Recorded after the cutoff: stays in the table, and AuditEvent search still finds it.
      const afterCutoff = await s.fhir('GET', `Patient/${patientId}`);
      const archived = await tessera(['audit', 'archive', ...cliStore(), '--before', cutoff, '--to', archives], cliEnv());
      assert.equal(archived.code, 0, archived.stderr);
      assert.match(archived.stdout, new RegExp(`Archived ${Number(before)} events to 1 file`));
      const rows = await auditDb.query<{ seq: number | string }>('SELECT seq FROM audit_event ORDER BY seq');
      const [{ refs }] = await auditDb.query<{ refs: number | string }>('SELECT COUNT(*) AS refs FROM audit_ref WHERE seq <= ?', [Number(before)]);
      assert.equal(Number(refs), 0, 'their search keys are gone too');
      assert.ok(rows.length >= 1 && Number(rows[0].seq) === Number(before) + 1);
      const events = await eventsByRequestId(s);
      assert.ok(events.has(afterCutoff.headers.get('x-request-id') as string));

      const withArchives = await tessera(['audit', 'verify', ...cliStore(), '--archives', archives], cliEnv());
      assert.equal(withArchives.code, 0, withArchives.stdout);
      assert.match(withArchives.stdout, new RegExp(`, ${Number(before)} archived`));
      assert.equal((await tessera(['audit', 'verify', ...cliStore()], cliEnv())).code, 0);

      // A row numbered below the anchor (as a writer appending from a head read before the archive would
      // leave): the walk from the anchor never reads it, verify must still report it.
      const [first] = await auditDb.query<{ seq: number | string; recorded_at: number | string; content: string; prev_hash: string; hash: string }>('SELECT * FROM audit_event ORDER BY seq LIMIT 1');
      await auditDb.run('INSERT INTO audit_event (seq, recorded_at, content, prev_hash, hash) VALUES (?, ?, ?, ?, ?)', [2, first.recorded_at, first.content, first.prev_hash, first.hash]);
      try {
        const forked = await tessera(['audit', 'verify', ...cliStore()], cliEnv());
        assert.equal(forked.code, 1, forked.stdout);
        assert.match(forked.stdout, /BROKEN at event 2 \(inserted\)/);
      } finally {
        await auditDb.run('DELETE FROM audit_event WHERE seq = 2');
      }

      const [file] = readdirSync(archives).filter((f) => f.endsWith('.ndjson'));
      const path = join(archives, file);
      const original = readFileSync(path, 'utf8');
      const lines = original.split('\n');
      // The third archived event now says the request failed (an archive line holds the stored content as a JSON string).
      const line = JSON.parse(lines[2]) as { content: string };
      lines[2] = JSON.stringify({ ...line, content: JSON.stringify({ ...JSON.parse(line.content), outcome: 8 }) });
      assert.notEqual(lines.join('\n'), original, 'the archive line was changed');
      writeFileSync(path, lines.join('\n'));
      const broken = await tessera(['audit', 'verify', ...cliStore(), '--archives', archives], cliEnv());
      assert.equal(broken.code, 1);
      assert.match(broken.stdout, /BROKEN at event 3 \(edited\)/);
      writeFileSync(path, original);
    });
  });
}
