import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pruneDelivered } from '../src/notify/delivery-worker.js';
import { addParticipant, type Participant } from '../src/participants/participants.js';
import { BACKENDS } from './helpers/backends.js';
import { eventsOf, HttpReceiver, notificationType, until } from './helpers/receivers.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { subscription } from './helpers/subscriptions.js';

process.env.TESSERA_NOTIFY_POLL_MS = '50';
process.env.TESSERA_NOTIFY_RETRY_BASE_MS = '50';
process.env.TESSERA_NOTIFY_RETRY_MAX_MS = '200';
process.env.TESSERA_NOTIFY_MAX_ATTEMPTS = '1000';

/**
 * Event numbers a subscriber sees, heartbeats, and the pruning of settled deliveries. Synthetic results
 * (no real patient) written as a lab's FHIR client would: Observations and DiagnosticReports for one
 * person. The subscriber's client may read Observations only, so the policy withholds every report.
 */
for (const backend of BACKENDS) {
  describe(`Event numbers, heartbeats, pruning (${backend})`, () => {
    let s: TestServer;
    let lab: Participant;
    let patientId: string;
    const http = new HttpReceiver('numbers');
    const later = new HttpReceiver('numbers');
    const subscriptionIds: Record<string, string> = {};
    const subscribe = async (name: string, body: any) => {
      const res = await s.fhir('POST', 'Subscription', body);
      assert.equal(res.status, 201, JSON.stringify(res.body));
      subscriptionIds[name] = res.body.id;
    };
    const status = async (name: string) => {
      const res = await s.fhir('GET', `Subscription/${subscriptionIds[name]}/$status`);
      return (p: string) => res.body.parameter.find((x: any) => x.name === p);
    };
    const result = (type: 'Observation' | 'DiagnosticReport', n: number) =>
      s.fhir('POST', type, {
        resourceType: type,
        status: 'final',
        code: { coding: [{ system: 'http://loinc.org', code: type === 'Observation' ? '2345-7' : '24323-8' }] },
        subject: { reference: `Patient/${patientId}` },
        ...(type === 'Observation' ? { valueQuantity: { value: 90 + n, unit: 'mg/dL' } } : {}),
      });

    before(async () => {
      s = await startTestServer(backend);
      await s.tessera.startNotifications();
      lab = (await addParticipant(s.tessera.repo, { name: 'Glucose Watch', mrnSystem: 'urn:example:gw:mrn', scope: 'system/Observation.rs' })).participant;
      await http.start();
      await later.start();
      const patient = await s.fhir('POST', 'Patient', { resourceType: 'Patient', identifier: [{ system: 'urn:example:lab:mrn', value: 'N-1' }], name: [{ family: 'Numberly', given: ['Ada'] }], birthDate: '1966-06-06' });
      patientId = patient.body.id;
      await subscribe('results', subscription({ topic: 'new-result', endpoint: `${http.url}/results`, secret: 'numbers', organization: lab.organizationId }));
    });
    after(async () => {
      await s?.close();
      await http.close();
      await later.close();
    });

    it('withheld events get no number: the subscriber sees 1, 2, 3 with no gap where a report it may not read was', async () => {
      for (const [i, type] of (['Observation', 'DiagnosticReport', 'Observation', 'DiagnosticReport', 'Observation'] as const).entries()) {
        assert.equal((await result(type, i)).status, 201);
      }
      await until('three results', () => http.notifications('/results').flatMap((n) => eventsOf(n.bundle)).length >= 3);
      await until('nothing pending', async () => (await status('results'))('backlog').valueInteger === 0);
      const events = http.notifications('/results').flatMap((n) => eventsOf(n.bundle));
      assert.deepEqual(events.map((e) => e.number), [1, 2, 3]);
      assert.ok(events.every((e) => e.focus?.includes('/Observation/')), 'no report, in any form');
      const p = await status('results');
      assert.equal(p('events-since-subscription-start').valueString, '3');
      assert.equal(p('withheld').valueInteger, 2);
      assert.equal(p('delivered').valueInteger, 3);
      const replay = await s.fhir('GET', `Subscription/${subscriptionIds.results}/$events?eventsSinceNumber=2`);
      assert.deepEqual(eventsOf(replay.body).map((e) => e.number), [2, 3]);
    });

    it('heartbeats: a status of type heartbeat every period while there is nothing to send, signed, with the event count', async () => {
      const start = Date.now();
      await subscribe('heartbeat', subscription({ topic: 'death', endpoint: `${http.url}/heartbeat`, secret: 'numbers', heartbeat: 1, organization: lab.organizationId }));
      const beats = () => http.received.filter((r) => r.path === '/heartbeat');
      await until('two heartbeats', () => beats().length >= 2);
      assert.ok(Date.now() - start >= 1900, 'one period apart (1 s), not back to back');
      assert.ok(beats().every((b) => notificationType(b.bundle) === 'heartbeat' && b.signatureValid));
      assert.equal(beats()[0].bundle.entry[0].resource.parameter.find((x: any) => x.name === 'events-since-subscription-start').valueString, '0');
      assert.equal(eventsOf(beats()[0].bundle).length, 0);
    });

    it('pruning drops settled deliveries and their events, keeps what is still pending; numbering goes on after it', async () => {
      // A second subscriber whose endpoint is down: its deliveries of the next result stay pending.
      later.down = true;
      await subscribe('later', subscription({ topic: 'new-result', endpoint: `${later.url}/later`, secret: 'numbers', organization: lab.organizationId }));
      const pending = await result('Observation', 10);
      await until('the first subscriber has it', () => http.notifications('/results').flatMap((n) => eventsOf(n.bundle)).length >= 4);
      await until('an attempt at the down endpoint', async () => !!(await status('later'))('last-error'));
      await pruneDelivered(s.tessera.repo, Date.now() + 1);
      const rows = async (sql: string, params: string[]) => Number((await s.tessera.repo.sql.query<{ n: number }>(sql, params))[0].n);
      assert.equal(await rows("SELECT COUNT(*) AS n FROM notify_delivery WHERE subscription_id = ? AND status IN ('delivered', 'withheld')", [subscriptionIds.results]), 0);
      assert.equal(await rows("SELECT COUNT(*) AS n FROM notify_delivery WHERE subscription_id = ? AND status = 'pending'", [subscriptionIds.later]), 1);
      assert.equal(await rows('SELECT COUNT(*) AS n FROM notify_event WHERE focus_id = ?', [pending.body.id]), 1, 'kept for the pending delivery');
      assert.equal(await rows("SELECT COUNT(*) AS n FROM notify_event e WHERE NOT EXISTS (SELECT 1 FROM notify_delivery d WHERE d.event_seq = e.seq) AND e.topic = 'new-result'", []), 0, 'the others are gone');
      const replay = await s.fhir('GET', `Subscription/${subscriptionIds.results}/$events?eventsSinceNumber=1`);
      assert.equal(eventsOf(replay.body).length, 0, 'pruned events are not replayed');
      later.down = false;
      await until('the pending one delivered after pruning', () => later.notifications('/later').length === 1);
      assert.deepEqual(eventsOf(later.notifications('/later')[0].bundle).map((e) => e.number), [1]);
      await result('Observation', 11);
      await until('the next result', () => http.notifications('/results').flatMap((n) => eventsOf(n.bundle)).length >= 5);
      assert.deepEqual(http.notifications('/results').flatMap((n) => eventsOf(n.bundle)).map((e) => e.number), [1, 2, 3, 4, 5]);
    });
  });
}
