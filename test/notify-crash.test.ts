import type { Patient } from '@medplum/fhirtypes';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { addParticipant, type Participant } from '../src/participants/participants.js';
import { createTessera, type Tessera } from '../src/server/tessera.js';
import { BACKENDS, dropTestSchema, testConfig } from './helpers/backends.js';
import { eventsOf, HttpReceiver, until } from './helpers/receivers.js';
import { subscription } from './helpers/subscriptions.js';
import { TesseraProcess } from './helpers/tessera-process.js';

/**
 * Two `tessera serve` processes on one PostgreSQL store deliver notifications while the test writes
 * admissions (synthetic inpatient Encounters written through the engine, as a FHIR client would); one is
 * SIGKILLed mid-delivery. The receivers de-duplicate by (subscription, event number), as docs/notifications.md
 * tells subscribers to.
 */
describe('Durability: two processes on one PostgreSQL, one SIGKILLed mid-delivery (postgres)', { skip: !BACKENDS.includes('postgres') }, () => {
  const store = testConfig('postgres');
  let tessera: Tessera;
  let practice: Participant;
  const receiver = new HttpReceiver('crash-secret');
  const paths = ['/a', '/b', '/c', '/d'];
  const processEnv = () => ({
    DATABASE_URL: store.config.databaseUrl as string,
    TESSERA_PG_SCHEMA: store.config.schema as string,
    TESSERA_DATA: store.config.dataDir,
    TESSERA_NOTIFY_POLL_MS: '50',
    TESSERA_NOTIFY_LEASE_MS: '3000',
    TESSERA_NOTIFY_TIMEOUT_MS: '1000',
    TESSERA_NOTIFY_RETRY_BASE_MS: '100',
    TESSERA_NOTIFY_RETRY_MAX_MS: '500',
  });
  const one = new TesseraProcess(processEnv());
  const two = new TesseraProcess(processEnv());
  let admitted = 0;

  const admit = async (n: number) => {
    for (let i = 0; i < n; i++) {
      admitted++;
      const patient = await tessera.repo.create<Patient>({ resourceType: 'Patient', identifier: [{ system: 'urn:example:crash:mrn', value: `C-${admitted}` }], name: [{ family: `Crashtest${admitted}`, given: ['Pat'] }], birthDate: '1970-01-01' });
      await tessera.repo.create({ resourceType: 'Encounter', status: 'in-progress', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' }, subject: { reference: `Patient/${patient.id}` } });
    }
  };
  /** (path, event number) pairs received, with repeats. */
  const deliveries = () => receiver.received.flatMap((r) => eventsOf(r.bundle).map((e) => `${r.path}#${e.number}`));

  before(async () => {
    tessera = await createTessera({ ...store.config, mllpPort: -1 }, { auditThread: false });
    practice = (await addParticipant(tessera.repo, { name: 'Harbour Care Management', mrnSystem: 'urn:example:harbour:mrn', scope: 'system/*.rs' })).participant;
    await receiver.start();
    for (const path of paths) {
      await tessera.repo.create(subscription({ topic: 'admission', endpoint: `${receiver.url}${path}`, secret: 'crash-secret', organization: practice.organizationId }));
    }
    await Promise.all([one.start(), two.start()]);
  });
  after(async () => {
    await one.stop();
    await two.stop();
    await receiver.close();
    await tessera?.close();
    await dropTestSchema(store.config);
    store.cleanup();
  });

  it('two processes deliver each event exactly once', async () => {
    await admit(15);
    await until('60 deliveries', () => new Set(deliveries()).size >= 60, 60_000);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(deliveries().length, 60, 'no event delivered twice');
    for (const path of paths) {
      const numbers = receiver.notifications(path).flatMap((n) => eventsOf(n.bundle).map((e) => e.number));
      assert.deepEqual(numbers, Array.from({ length: 15 }, (_, i) => i + 1), `${path}: in order`);
    }
  });

  it('SIGKILL of one process mid-delivery loses nothing: the de-duplicated counts match', async () => {
    receiver.delayMs = 150; // deliveries stay in flight, so the kill lands in the middle of some
    const before = new Set(deliveries()).size;
    await admit(15);
    await until('deliveries under way', () => new Set(deliveries()).size >= before + 10, 60_000);
    await one.kill();
    await until('every event delivered', () => new Set(deliveries()).size >= 120, 60_000);
    const distinct = new Set(deliveries());
    for (const path of paths) for (let n = 1; n <= 30; n++) assert.ok(distinct.has(`${path}#${n}`), `${path} event ${n}`);
    assert.equal(distinct.size, 120);
  });
});
