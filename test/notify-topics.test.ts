import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { addParticipant, type Participant } from '../src/participants/participants.js';
import { BACKENDS } from './helpers/backends.js';
import { eventsOf, HttpReceiver, until } from './helpers/receivers.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { subscription } from './helpers/subscriptions.js';

process.env.TESSERA_NOTIFY_POLL_MS = '50';

const MR = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] };
/** Synthetic people (no real patient), written as participants' FHIR clients would. */
const person = (system: string, mrn: string, family: string, birthDate: string, extra: object = {}) => ({
  resourceType: 'Patient',
  identifier: [{ type: MR, system, value: mrn }],
  name: [{ family, given: ['Rosalind'] }],
  gender: 'female',
  birthDate,
  address: [{ line: ['3 Mill Lane'], city: 'Andover', state: 'MA', postalCode: '01810' }],
  telecom: [{ system: 'phone', value: '978-555-0142' }],
  ...extra,
});

for (const backend of BACKENDS) {
  describe(`Topics: document, death, identity merge, plain criteria; payload shapes (${backend})`, () => {
    let s: TestServer;
    let plan: Participant;
    const http = new HttpReceiver('topics');
    const subscribe = async (body: any) => {
      const res = await s.fhir('POST', 'Subscription', body);
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res.body.id as string;
    };

    before(async () => {
      s = await startTestServer(backend);
      await s.tessera.startNotifications();
      plan = (await addParticipant(s.tessera.repo, { name: 'Bayside Health Plan', mrnSystem: 'urn:example:bayside:mrn', scope: 'system/*.rs' })).participant;
      await http.start();
      const org = plan.organizationId;
      await subscribe(subscription({ topic: 'new-document', endpoint: `${http.url}/documents`, payload: 'id-only', organization: org }));
      await subscribe(subscription({ topic: 'death', endpoint: `${http.url}/deaths`, payload: 'empty', organization: org }));
      await subscribe(subscription({ topic: 'identity-merge', endpoint: `${http.url}/merges`, payload: 'full-resource', organization: org }));
      // A plain R4 Subscription: criteria are a search, not a topic.
      const plain = subscription({ topic: 'new-result', endpoint: `${http.url}/glucose`, payload: 'id-only', organization: org });
      plain.criteria = 'Observation?code=http://loinc.org|2345-7';
      await subscribe(plain);
    });
    after(async () => {
      await s?.close();
      await http.close();
    });

    it('the topics list its canonical URLs', async () => {
      const topics = await s.fhir('GET', 'SubscriptionTopic');
      assert.equal(topics.status, 200);
      assert.deepEqual(topics.body.entry.map((e: any) => e.resource.id).sort(), ['admission', 'death', 'discharge', 'emergency-visit', 'identity-merge', 'new-document', 'new-result', 'transfer']);
    });

    it('a new document (id-only: the reference, no content) and a death (empty: the event number alone)', async () => {
      const patient = (await s.fhir('POST', 'Patient', person('urn:example:a:mrn', 'A-1', 'Wexley', '1950-03-02'))).body;
      const doc = await s.fhir('POST', 'DocumentReference', { resourceType: 'DocumentReference', status: 'current', subject: { reference: `Patient/${patient.id}` }, content: [{ attachment: { contentType: 'text/plain', data: Buffer.from('discharge summary').toString('base64') } }] });
      assert.equal(doc.status, 201);
      await until('the document notification', () => http.notifications('/documents').length === 1);
      const docBundle = http.notifications('/documents')[0].bundle;
      assert.equal(docBundle.entry[1].fullUrl.endsWith(`DocumentReference/${doc.body.id}`), true);
      assert.equal(docBundle.entry[1].resource, undefined, 'id-only carries no resource');
      patient.deceasedBoolean = true;
      assert.equal((await s.fhir('PUT', `Patient/${patient.id}`, patient)).status, 200);
      await until('the death notification', () => http.notifications('/deaths').length === 1);
      const death = http.notifications('/deaths')[0].bundle;
      assert.equal(death.entry.length, 1, 'empty: the status alone');
      assert.deepEqual(eventsOf(death)[0], { number: 1, focus: undefined });
      // Updating the deceased patient again is no second death.
      patient.name[0].given = ['Rosalind', 'May'];
      await s.fhir('PUT', `Patient/${patient.id}`, patient);
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(http.notifications('/deaths').length, 1);
    });

    it('two identities merged by the index: one identity-merge notification with the surviving golden record', async () => {
      const a = (await s.fhir('POST', 'Patient', person('urn:example:b:mrn', 'B-1', 'Thorncastle', '1962-08-11'))).body;
      const b = (await s.fhir('POST', 'Patient', person('urn:example:c:mrn', 'C-1', 'Quimby', '1990-01-30', { telecom: [], address: [] }))).body;
      // The second source corrects its record: now the same person as the first, and the index joins them.
      const corrected = { ...person('urn:example:c:mrn', 'C-1', 'Thorncastle', '1962-08-11'), id: b.id };
      assert.equal((await s.fhir('PUT', `Patient/${b.id}`, corrected)).status, 200);
      await until('the merge notification', () => http.notifications('/merges').length >= 1);
      const focus = http.notifications('/merges')[0].bundle.entry[1].resource;
      assert.equal(focus.resourceType, 'Patient');
      const linked = focus.link.map((l: any) => l.other.reference);
      assert.ok(linked.includes(`Patient/${a.id}`) && linked.includes(`Patient/${b.id}`), 'the survivor links both records');
    });

    it('FHIR-written Encounters: a visit under way that moves or changes class is a transfer (and an admission when it becomes inpatient); finishing it a discharge', async () => {
      // A synthetic emergency visit as a hospital's FHIR client would keep it up to date: ED bay, then a ward bed, then inpatient, then discharged.
      const patient = (await s.fhir('POST', 'Patient', person('urn:example:e:mrn', 'E-1', 'Penhallow', '1939-05-21'))).body;
      const org = plan.organizationId;
      const only = `Encounter?patient=Patient/${patient.id}`;
      for (const topic of ['emergency-visit', 'transfer', 'admission', 'discharge'] as const) {
        await subscribe(subscription({ topic, filter: only, endpoint: `${http.url}/visit-${topic}`, payload: 'full-resource', organization: org }));
      }
      const klass = (code: string) => ({ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code });
      const at = (bed: string) => [{ location: { reference: `Location/${bed}` }, status: 'active' }];
      const encounter: any = { resourceType: 'Encounter', status: 'in-progress', class: klass('EMER'), subject: { reference: `Patient/${patient.id}` }, location: at('ed-bay-3') };
      const created = await s.fhir('POST', 'Encounter', encounter);
      assert.equal(created.status, 201);
      const write = async (change: object) => {
        const current = (await s.fhir('GET', `Encounter/${created.body.id}`)).body;
        const res = await s.fhir('PUT', `Encounter/${created.body.id}`, { ...current, ...change });
        assert.equal(res.status, 200, JSON.stringify(res.body));
      };
      await write({ period: { start: '2026-11-03T10:00:00Z' } }); // an update that moves nothing: no event
      await write({ location: [{ location: { reference: 'Location/ed-bay-3' }, status: 'completed' }, ...at('ward-4e-12')] }); // moved: transfer
      await write({ class: klass('IMP') }); // admitted from the emergency department: transfer (class) and admission
      // History being loaded: a visit of 2019, first written finished, is no discharge; one that ended an hour ago is.
      const finished = (end: string) => s.fhir('POST', 'Encounter', { resourceType: 'Encounter', status: 'finished', class: klass('AMB'), subject: { reference: `Patient/${patient.id}` }, period: { start: end, end } });
      assert.equal((await finished('2019-04-02T09:30:00Z')).status, 201);
      const recent = await finished(new Date(Date.now() - 3_600_000).toISOString());
      await write({ status: 'finished' }); // discharge
      await until('the discharges', () => http.notifications('/visit-discharge').flatMap((n) => eventsOf(n.bundle)).length >= 2);
      await new Promise((r) => setTimeout(r, 500));
      const count = (topic: string) => http.notifications(`/visit-${topic}`).flatMap((n) => eventsOf(n.bundle)).length;
      assert.equal(count('emergency-visit'), 1);
      assert.equal(count('transfer'), 2, 'the move to the ward and the change of class');
      assert.equal(count('admission'), 1);
      assert.deepEqual(http.notifications('/visit-discharge').flatMap((n) => eventsOf(n.bundle).map((e) => e.focus?.split('/').pop())), [recent.body.id, created.body.id], 'the recent visit and the one that finished; not the 2019 one');
      const transfers = http.notifications('/visit-transfer').flatMap((n) => n.bundle.entry.slice(1).map((e: any) => e.resource));
      assert.deepEqual(transfers.map((e: any) => [e.class.code, e.location.at(-1).location.reference]), [['EMER', 'Location/ward-4e-12'], ['IMP', 'Location/ward-4e-12']], 'each the version that raised it');
    });

    it('writes nothing to the outbox for a topic no active Subscription listens to', async () => {
      // No Subscription here listens to new-result (the plain criteria one watches Observation writes as resource:Observation).
      const patient = (await s.fhir('POST', 'Patient', person('urn:example:f:mrn', 'F-1', 'Trevelyan', '1971-07-07'))).body;
      const obs = await s.fhir('POST', 'Observation', { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '718-7' }] }, subject: { reference: `Patient/${patient.id}` }, valueQuantity: { value: 9.1, unit: 'g/dL' }, interpretation: [{ coding: [{ code: 'L' }] }] });
      assert.equal(obs.status, 201);
      const rows = async (topic: string) => Number((await s.tessera.repo.sql.query<{ n: number }>('SELECT COUNT(*) AS n FROM notify_event WHERE topic = ? AND focus_id = ?', [topic, obs.body.id]))[0].n);
      assert.equal(await rows('new-result'), 0);
      assert.equal(await rows('resource:Observation'), 1, 'the criteria Subscription still sees it');
      // Once a Subscription listens, the next result is written to the outbox (in this process at once).
      await subscribe(subscription({ topic: 'new-result', endpoint: `${http.url}/results`, organization: plan.organizationId }));
      const next = await s.fhir('POST', 'Observation', { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '718-7' }] }, subject: { reference: `Patient/${patient.id}` }, valueQuantity: { value: 9.0, unit: 'g/dL' } });
      assert.equal(Number((await s.tessera.repo.sql.query<{ n: number }>("SELECT COUNT(*) AS n FROM notify_event WHERE topic = 'new-result' AND focus_id = ?", [next.body.id]))[0].n), 1);
    });

    it('a plain criteria Subscription is notified of the resources its search matches, and of nothing else', async () => {
      const patient = (await s.fhir('POST', 'Patient', person('urn:example:d:mrn', 'D-1', 'Ashgrove', '1944-12-12'))).body;
      const obs = (code: string) => ({ resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code }] }, subject: { reference: `Patient/${patient.id}` }, valueQuantity: { value: 99, unit: 'mg/dL' } });
      const glucose = await s.fhir('POST', 'Observation', obs('2345-7'));
      await s.fhir('POST', 'Observation', obs('2160-0'));
      await until('the glucose notification', () => http.notifications('/glucose').length >= 1);
      await new Promise((r) => setTimeout(r, 500));
      const focuses = http.notifications('/glucose').flatMap((n) => eventsOf(n.bundle).map((e) => e.focus));
      assert.deepEqual(focuses.map((f) => f?.split('/').pop()), [glucose.body.id]);
    });
  });
}
