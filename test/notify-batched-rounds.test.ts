import type { Patient } from '@medplum/fhirtypes';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DeliveryWorker } from '../src/notify/delivery-worker.js';
import { notifySettingsFromEnv } from '../src/notify/notify-settings.js';
import { addParticipant } from '../src/participants/participants.js';
import { createTessera, type Tessera } from '../src/server/tessera.js';
import { BACKENDS, dropTestSchema, testConfig } from './helpers/backends.js';
import { eventsOf, HttpReceiver, until } from './helpers/receivers.js';
import { subscription } from './helpers/subscriptions.js';

process.env.TESSERA_NOTIFY_POLL_MS = '50';

const SUBSCRIPTIONS = 12; // more than one claim's worth (8): rounds hold several, and claims follow each other
const ADMISSIONS = 6;

/**
 * A round of a delivery worker numbers, sends and records for all the subscriptions it holds together
 * (decision 0041). Two workers (with their own leases) share one store while synthetic admissions are
 * written through the engine, each matched by every subscription; one subscriber's client may not read
 * Encounters, so its events are withheld in the same rounds as the others are sent. The receiver answers
 * slowly, so that deliveries overlap.
 */
for (const backend of BACKENDS) {
  describe(`Delivery rounds for several subscriptions at once (${backend})`, () => {
    const store = testConfig(backend);
    let tessera: Tessera;
    let second: DeliveryWorker;
    const receiver = new HttpReceiver('rounds-secret');
    const paths = Array.from({ length: SUBSCRIPTIONS }, (_, i) => `/s${i}`);
    const numbers = (path: string) => receiver.notifications(path).flatMap((n) => eventsOf(n.bundle).map((e) => e.number));
    let withheldId = '';

    before(async () => {
      tessera = await createTessera({ ...store.config, mllpPort: -1 }, { auditThread: false });
      const practice = (await addParticipant(tessera.repo, { name: 'Round Practice', mrnSystem: 'urn:example:round:mrn', scope: 'system/*.rs' })).participant;
      const labOnly = (await addParticipant(tessera.repo, { name: 'Results Only', mrnSystem: 'urn:example:results:mrn', scope: 'system/Observation.rs' })).participant;
      await receiver.start();
      receiver.delayMs = 20;
      for (const path of paths) {
        await tessera.repo.create(subscription({ topic: 'admission', endpoint: `${receiver.url}${path}`, secret: 'rounds-secret', organization: practice.organizationId }));
      }
      withheldId = (await tessera.repo.create(subscription({ topic: 'admission', endpoint: `${receiver.url}/withheld`, secret: 'rounds-secret', organization: labOnly.organizationId }))).id as string;
      await tessera.startNotifications();
      second = new DeliveryWorker(tessera.repo, notifySettingsFromEnv(), () => 'http://127.0.0.1', undefined, { warn() {}, error() {} });
      await second.start();
    });
    after(async () => {
      await second?.stop();
      await tessera?.close();
      await receiver.close();
      await dropTestSchema(store.config);
      store.cleanup();
    });

    it('each subscription gets every event once, in order, one notification at a time; withheld events are settled alongside', async () => {
      for (let n = 1; n <= ADMISSIONS; n++) {
        const patient = await tessera.repo.create<Patient>({ resourceType: 'Patient', identifier: [{ system: 'urn:example:round:mrn', value: `R-${n}` }], name: [{ family: `Roundtest${n}`, given: ['Lee'] }], birthDate: '1975-05-05' });
        await tessera.repo.create({ resourceType: 'Encounter', status: 'in-progress', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' }, subject: { reference: `Patient/${patient.id}` } });
      }
      await until('every event at every subscription', () => paths.every((p) => numbers(p).length >= ADMISSIONS), 60_000);
      await new Promise((r) => setTimeout(r, 300)); // a repeat would arrive by now
      const expected = Array.from({ length: ADMISSIONS }, (_, i) => i + 1);
      for (const path of paths) {
        assert.deepEqual(numbers(path), expected, `${path}: each number once, in order`);
        assert.equal(receiver.mostInFlight.get(path), 1, `${path}: never two notifications at once`);
      }
      assert.ok(receiver.mostInFlightInAll > 1, 'several subscriptions were sent for at the same time');
      assert.ok(receiver.notifications('/withheld').length === 0, 'nothing for a subscriber who may not read Encounters');
      await until('the withheld events settled', async () => {
        const [row] = await tessera.repo.sql.query<{ n: number }>("SELECT COUNT(*) AS n FROM notify_delivery WHERE subscription_id = ? AND status = 'withheld'", [withheldId]);
        return Number(row?.n) === ADMISSIONS;
      });
      await until('every lease given back', async () => {
        const [held] = await tessera.repo.sql.query<{ n: number }>('SELECT COUNT(*) AS n FROM notify_subscription WHERE lease_owner IS NOT NULL');
        return Number(held?.n) === 0;
      });
    });
  });
}
