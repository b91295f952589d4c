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
      s.tessera.startNotifications();
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
