import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { addParticipant, type Participant } from '../src/participants/participants.js';
import { importRoster, rosterGroupId } from '../src/notify/rosters.js';
import { setClientDisabled } from '../src/security/clients.js';
import { BACKENDS } from './helpers/backends.js';
import { MllpSender } from './helpers/mllp.js';
import { eventsOf, HttpReceiver, MllpReceiver, notificationType, until } from './helpers/receivers.js';
import { getToken, startTestServer, type TestServer } from './helpers/server.js';
import { subscription } from './helpers/subscriptions.js';

// Fast retries for the tests; the defaults are in docs/notifications.md.
process.env.TESSERA_NOTIFY_POLL_MS = '50';
process.env.TESSERA_NOTIFY_RETRY_BASE_MS = '50';
process.env.TESSERA_NOTIFY_RETRY_MAX_MS = '200';
process.env.TESSERA_NOTIFY_MAX_ATTEMPTS = '3';

/**
 * Synthetic ADT messages in the Epic style of test/hl7v2-mllp.test.ts (no real patient): a hospital's
 * admission, discharge and emergency registration. The practice knows the same person under its own MRN.
 */
const MR = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] };
const adt = (event: string, control: string, mrn: string, klass: string, visit: string, name = 'Delacroix^Marguerite', ssn = '999-31-4477') =>
  [
    `MSH|^~\\&|EPIC|NORTHGATE|HIE|TESSERA|20261101083000||ADT^${event}^ADT_${event === 'A04' ? 'A01' : event}|${control}|P|2.5.1`,
    `EVN|${event}|20261101082900`,
    `PID|1||${mrn}^^^NORTHGATE^MR~${ssn}^^^USSSA^SS||${name}||19580917|F|||44 Quay Rd^^Salem^MA^01970^USA||^PRN^PH^^1^978^5550188`,
    `PV1|1|${klass}|4E^412^B^NORTHGATE||||1234^Carter^Ann|||MED|||||||||${visit}^^^NORTHGATE^VN|||||||||||||||||||||||||20261101082500${event === 'A03' ? '|20261104120000' : ''}`,
  ].join('\r');

for (const backend of BACKENDS) {
  describe(`Encounter notifications from ADT for a rostered patient (${backend})`, () => {
    let s: TestServer;
    let sender: MllpSender;
    let practice: Participant;
    let limited: Participant;
    let practiceToken: string;
    let limitedToken: string;
    const secret = 'practice-shared-secret';
    const http = new HttpReceiver(secret);
    const mllpAa = new MllpReceiver();
    let socket: WebSocket;
    const socketMessages: any[] = [];

    before(async () => {
      s = await startTestServer(backend);
      s.tessera.config.mllpPort = 0;
      const port = (await s.tessera.startMllp()) as number;
      await s.tessera.startNotifications();
      await addParticipant(s.tessera.repo, { name: 'Northgate Hospital', mrnSystem: 'urn:example:northgate:mrn', hl7Facility: 'NORTHGATE' });
      const oak = await addParticipant(s.tessera.repo, { name: 'Oak Street Practice', mrnSystem: 'urn:example:oak:mrn', scope: 'system/*.rs' });
      practice = oak.participant;
      practiceToken = await getToken(s.url, oak.client?.clientId as string, oak.client?.clientSecret as string);
      // A participant whose client may read patients only: encounters are not for it.
      const plan = await addParticipant(s.tessera.repo, { name: 'Demographics Only Plan', mrnSystem: 'urn:example:plan:mrn', scope: 'system/Patient.rs system/Subscription.rs' });
      limited = plan.participant;
      limitedToken = await getToken(s.url, plan.client?.clientId as string, plan.client?.clientSecret as string);
      // The practice's own record of the person, under its MRN P-100 (same person as the hospital's E-500).
      const created = await s.fhir('POST', 'Patient', {
        resourceType: 'Patient',
        identifier: [{ type: MR, system: 'urn:example:oak:mrn', value: 'P-100' }, { system: 'http://hl7.org/fhir/sid/us-ssn', value: '999-31-4477' }],
        name: [{ family: 'Delacroix', given: ['Marguerite'] }],
        gender: 'female',
        birthDate: '1958-09-17',
        address: [{ line: ['44 Quay Rd'], city: 'Salem', state: 'MA', postalCode: '01970' }],
        telecom: [{ system: 'phone', value: '(978) 555-0188' }],
      });
      assert.equal(created.status, 201);
      await importRoster(s.tessera.repo, practice.id, ['P-100', 'P-999']);
      await http.start();
      await mllpAa.start();
      const roster = `Encounter?patient:in=Group/${rosterGroupId(practice.id)}`;
      for (const topic of ['admission', 'discharge', 'emergency-visit'] as const) {
        const res = await s.fhir('POST', 'Subscription', subscription({ topic, filter: roster, endpoint: `${http.url}/${topic}`, payload: 'full-resource', secret, organization: practice.organizationId }));
        assert.equal(res.status, 201, JSON.stringify(res.body));
      }
      const forLimited = await s.fhir('POST', 'Subscription', subscription({ topic: 'admission', filter: `Encounter?patient=Patient/${created.body.id}`, endpoint: `${http.url}/limited`, secret, organization: limited.organizationId }));
      assert.equal(forLimited.status, 201);
      const forward = await s.fhir('POST', 'Subscription', subscription({ topic: 'admission', filter: roster, type: 'message', endpoint: `mllp://127.0.0.1:${mllpAa.port}`, organization: practice.organizationId }));
      assert.equal(forward.status, 201, JSON.stringify(forward.body));
      const ws = await s.fhir('POST', 'Subscription', subscription({ topic: 'discharge', filter: roster, type: 'websocket', organization: practice.organizationId }));
      assert.equal(ws.status, 201, JSON.stringify(ws.body));
      // The socket gets what the practice may see: another participant's client may not bind one (it
      // cannot even see that the Subscription exists: 404, src/notify/subscription-ownership.ts).
      const stranger = await s.fhir('GET', `Subscription/${ws.body.id}/$get-ws-binding-token`, undefined, { authorization: `Bearer ${limitedToken}` });
      assert.equal(stranger.status, 404, JSON.stringify(stranger.body));
      const binding = await s.fhir('GET', `Subscription/${ws.body.id}/$get-ws-binding-token`, undefined, { authorization: `Bearer ${practiceToken}` });
      assert.equal(binding.status, 200, JSON.stringify(binding.body));
      const param = (name: string) => binding.body.parameter.find((p: any) => p.name === name);
      socket = new WebSocket(param('websocket-url').valueUrl);
      socket.on('message', (data) => socketMessages.push(JSON.parse(data.toString())));
      await new Promise((resolve) => socket.on('open', resolve));
      socket.send(`bind-with-token: ${param('token').valueString}`);
      await until('the websocket handshake', () => socketMessages.some((m) => notificationType(m) === 'handshake'));
      sender = new MllpSender(port);
    });
    after(async () => {
      socket?.close();
      await sender?.close();
      await s?.close();
      await http.close();
      await mllpAa.close();
    });

    it('A01, A03 and A04 for the rostered patient (another MRN at the hospital) notify exactly once each; another patient notifies nobody', async () => {
      for (const [event, control, klass, visit] of [['A01', 'N-1', 'I', 'V-1'], ['A03', 'N-2', 'I', 'V-1'], ['A04', 'N-3', 'E', 'V-2']]) {
        assert.equal((await sender.send(adt(event, control, 'E-500', klass, visit))).code, 'AA');
        // Someone else, at the same hospital: on nobody's roster.
        assert.equal((await sender.send(adt(event, `${control}-other`, 'E-777', klass, `${visit}-other`, 'Okafor^Bartholomew', '999-80-1212'))).code, 'AA');
      }
      await until('three notifications', () => ['admission', 'discharge', 'emergency-visit'].every((t) => http.notifications(`/${t}`).length >= 1));
      await until('the MLLP forward and the websocket notification', () => mllpAa.messages.length >= 1 && socketMessages.some((m) => notificationType(m) === 'event-notification'));
      await new Promise((r) => setTimeout(r, 800)); // anything extra would arrive by now
      for (const topic of ['admission', 'discharge', 'emergency-visit']) {
        const got = http.notifications(`/${topic}`);
        assert.equal(got.length, 1, `${topic}: one notification`);
        assert.ok(got[0].signatureValid, 'signed with the subscription secret');
        assert.deepEqual(eventsOf(got[0].bundle).map((e) => e.number), [1]);
        const focus = got[0].bundle.entry[1].resource;
        assert.equal(focus.resourceType, 'Encounter');
        assert.equal(focus.class.code, topic === 'emergency-visit' ? 'EMER' : 'IMP');
        assert.equal(focus.status, topic === 'discharge' ? 'finished' : 'in-progress');
      }
      assert.equal(http.notifications('/limited').length, 0, 'a participant whose scopes do not reach Encounter is told nothing');
      assert.equal(mllpAa.messages.length, 1, 'the admission forwarded once over MLLP');
      assert.match(mllpAa.messages[0], /ADT\^A01/);
      // The practice's engine gets the patient under the practice's own MRN (through the index), not the hospital's.
      const pid = mllpAa.messages[0].split('\r').find((seg) => seg.startsWith('PID|')) as string;
      assert.equal(pid.split('|')[3], 'P-100^^^&urn:example:oak:mrn&URI^MR');
      assert.doesNotMatch(pid, /E-500|999-31-4477|NORTHGATE/, "the hospital's identifiers are not forwarded (the community has not allowed it)");
      assert.match(pid, /Delacroix\^Marguerite/, 'the rest as the hospital sent it');
      assert.match(mllpAa.messages[0], /PV1\|1\|I\|4E\^412\^B\^NORTHGATE/);
      assert.equal(socketMessages.filter((m) => notificationType(m) === 'event-notification').length, 1, 'the discharge over the websocket');
    });

    it('an ADT for a topic nobody subscribes to (A02 transfer) leaves no outbox row; the subscribed topics do', async () => {
      assert.equal((await sender.send(adt('A02', 'N-4', 'E-500', 'I', 'V-1'))).code, 'AA');
      const count = async (topic: string) => Number((await s.tessera.repo.sql.query<{ n: number }>('SELECT COUNT(*) AS n FROM notify_event WHERE topic = ?', [topic]))[0].n);
      assert.equal(await count('transfer'), 0);
      assert.equal(await count('new-result') + (await count('death')) + (await count('identity-merge')), 0);
      assert.equal(await count('admission'), 2, "the A01s of both patients (the other's matched no roster)");
    });

    it('$status reports events, backlog and latency; $events replays them; the policy withheld the limited participant\'s', async () => {
      const subs = (await s.fhir('GET', 'Subscription?_count=50')).body.entry.map((e: any) => e.resource);
      const admission = subs.find((x: any) => x.channel.endpoint === `${http.url}/admission`);
      const status = await s.fhir('GET', `Subscription/${admission.id}/$status`);
      const p = (name: string) => status.body.parameter.find((x: any) => x.name === name);
      assert.equal(p('events-since-subscription-start').valueString, '1');
      assert.equal(p('backlog').valueInteger, 0);
      assert.equal(p('delivered').valueInteger, 1);
      assert.ok(p('latency-p95-ms').valueInteger >= 0);
      const events = await s.fhir('GET', `Subscription/${admission.id}/$events?eventsSinceNumber=1&content=full-resource`);
      assert.equal(events.body.entry.length, 2);
      assert.equal(events.body.entry[1].resource.resourceType, 'Encounter');
      // The type-level $status (operators, the portal): one status per Subscription, narrowed by id.
      const all = await s.fhir('GET', 'Subscription/$status');
      assert.equal(all.status, 200);
      assert.equal(all.body.total, subs.length);
      const one = await s.fhir('GET', `Subscription/$status?id=${admission.id}`);
      assert.equal(one.body.total, 1);
      const only = (name: string) => one.body.entry[0].resource.parameter.find((x: any) => x.name === name);
      assert.equal(only('subscription').valueReference.reference.endsWith(`Subscription/${admission.id}`), true);
      assert.equal(only('delivered').valueInteger, 1);
      assert.equal((await s.fhir('GET', 'Subscription/$status?status=off')).body.total, 0);
      const limitedSub = subs.find((x: any) => x.channel.endpoint === `${http.url}/limited`);
      const limitedStatus = await s.fhir('GET', `Subscription/${limitedSub.id}/$status`);
      assert.equal(limitedStatus.body.parameter.find((x: any) => x.name === 'withheld').valueInteger, 1);
    });

    it('each delivery is audited as a notification to the participant', async () => {
      await until('notification audit events', async () => {
        const res = await s.fhir('GET', `AuditEvent?agent=${practice.id}&_count=100`);
        return (res.body.entry ?? []).some((e: any) => e.resource.type.code === '110106');
      });
    });

    it('refuses a Subscription it could not honour, saying why', async () => {
      const unknown = await s.fhir('POST', 'Subscription', { ...subscription({ topic: 'admission', endpoint: `${http.url}/x`, organization: practice.organizationId }), criteria: 'http://example.org/topic/nothing' });
      assert.equal(unknown.status, 422);
      assert.match(JSON.stringify(unknown.body), /neither a topic/);
      const badFilter = await s.fhir('POST', 'Subscription', subscription({ topic: 'admission', filter: 'Encounter?colour=blue', endpoint: `${http.url}/x`, organization: practice.organizationId }));
      assert.equal(badFilter.status, 422);
      const noParticipant = await s.fhir('POST', 'Subscription', subscription({ topic: 'admission', endpoint: `${http.url}/x` }));
      assert.equal(noParticipant.status, 422);
      assert.match(JSON.stringify(noParticipant.body), /is for a participant/);
    });

    it("a disabled client's participant is told nothing from the next event on; enabled again, it gets the next one, numbered without a gap", async () => {
      const subs = (await s.fhir('GET', 'Subscription?_count=50')).body.entry.map((e: any) => e.resource);
      const admission = subs.find((x: any) => x.channel.endpoint === `${http.url}/admission`);
      const withheld = async () => (await s.fhir('GET', `Subscription/${admission.id}/$status`)).body.parameter.find((x: any) => x.name === 'withheld').valueInteger;
      const before = { sent: http.notifications('/admission').length, withheld: await withheld() };
      assert.ok(await setClientDisabled(s.tessera.repo.sql, practice.clientId as string, true));
      assert.equal((await sender.send(adt('A01', 'N-5', 'E-500', 'I', 'V-5'))).code, 'AA');
      await until('the admission withheld', async () => (await withheld()) === before.withheld + 1);
      assert.equal(http.notifications('/admission').length, before.sent, 'nothing sent while the client is disabled');
      assert.ok(await setClientDisabled(s.tessera.repo.sql, practice.clientId as string, false));
      assert.equal((await sender.send(adt('A01', 'N-6', 'E-500', 'I', 'V-6'))).code, 'AA');
      await until('the next admission', () => http.notifications('/admission').length === before.sent + 1);
      const [last] = http.notifications('/admission').slice(-1);
      assert.deepEqual(eventsOf(last.bundle).map((e) => e.number), [2], 'the withheld event got no number');
    });
  });
}
