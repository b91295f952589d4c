import type { Patient } from '@medplum/fhirtypes';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { addParticipant } from '../src/participants/participants.js';
import { createTessera, type Tessera } from '../src/server/tessera.js';
import { BACKENDS, dropTestSchema, testConfig } from './helpers/backends.js';
import { eventsOf, HttpReceiver, until } from './helpers/receivers.js';
import { subscription } from './helpers/subscriptions.js';
import { TesseraProcess } from './helpers/tessera-process.js';

/**
 * Delivery workers wake on the commit of outbox events, not at their next poll: here they poll once an
 * hour, so every notification that arrives within the test was started by a commit (the first round at
 * start has nothing to deliver: the Subscriptions are written after it). Synthetic admissions written
 * through the engine, as a FHIR client would.
 */
const HOUR_MS = '3600000';

async function admit(tessera: Tessera, n: number): Promise<void> {
  const patient = await tessera.repo.create<Patient>({ resourceType: 'Patient', identifier: [{ system: 'urn:example:wake:mrn', value: `W-${n}` }], name: [{ family: `Waketest${n}`, given: ['Sam'] }], birthDate: '1980-02-02' });
  await tessera.repo.create({ resourceType: 'Encounter', status: 'in-progress', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' }, subject: { reference: `Patient/${patient.id}` } });
}

const numbers = (receiver: HttpReceiver, path: string) => receiver.notifications(path).flatMap((n) => eventsOf(n.bundle).map((e) => e.number));

/**
 * A practice subscribes (through `writer`) to admissions at `receiver`'s `path`; three admissions are then
 * written one at a time, the next only after the last arrived: each needs a wake of its own.
 */
async function deliversEachAdmission(writer: Tessera, receiver: HttpReceiver, path: string, practiceName: string, what: string): Promise<void> {
  const practice = (await addParticipant(writer.repo, { name: practiceName, mrnSystem: `urn:example:${path.slice(1)}:mrn`, scope: 'system/*.rs' })).participant;
  await writer.repo.create(subscription({ topic: 'admission', endpoint: `${receiver.url}${path}`, secret: 'wake-secret', organization: practice.organizationId }));
  for (let n = 1; n <= 3; n++) {
    await admit(writer, n);
    await until(`admission ${n} ${what}`, () => numbers(receiver, path).length >= n);
  }
  assert.deepEqual(numbers(receiver, path), [1, 2, 3]);
}

for (const backend of BACKENDS) {
  describe(`Wake on commit: a worker polling once an hour delivers each admission as it commits (${backend})`, () => {
    const store = testConfig(backend);
    let tessera: Tessera;
    const receiver = new HttpReceiver('wake-secret');

    before(async () => {
      const poll = process.env.TESSERA_NOTIFY_POLL_MS;
      process.env.TESSERA_NOTIFY_POLL_MS = HOUR_MS;
      tessera = await createTessera({ ...store.config, mllpPort: -1 }, { auditThread: false });
      if (poll === undefined) delete process.env.TESSERA_NOTIFY_POLL_MS;
      else process.env.TESSERA_NOTIFY_POLL_MS = poll;
      await receiver.start();
      await tessera.startNotifications();
    });
    after(async () => {
      await tessera?.close();
      await receiver.close();
      await dropTestSchema(store.config);
      store.cleanup();
    });

    it('each admission is delivered without a poll', async () => {
      await deliversEachAdmission(tessera, receiver, '/local', 'Wake Street Practice', 'delivered');
    });
  });
}

describe('Wake on commit across processes: a commit in one process wakes the workers of another (postgres)', { skip: !BACKENDS.includes('postgres') }, () => {
  const store = testConfig('postgres');
  let writer: Tessera;
  const receiver = new HttpReceiver('wake-secret');
  const worker = new TesseraProcess({
    DATABASE_URL: store.config.databaseUrl as string,
    TESSERA_PG_SCHEMA: store.config.schema as string,
    TESSERA_DATA: store.config.dataDir,
    TESSERA_NOTIFY_POLL_MS: HOUR_MS,
  });

  before(async () => {
    // This process writes and delivers nothing (its workers are not started); `tessera serve` delivers.
    writer = await createTessera({ ...store.config, mllpPort: -1 }, { auditThread: false });
    await receiver.start();
    await worker.start();
  });
  after(async () => {
    await worker.stop();
    await receiver.close();
    await writer?.close();
    await dropTestSchema(store.config);
    store.cleanup();
  });

  it('the serving process delivers each admission the writer commits', async () => {
    await deliversEachAdmission(writer, receiver, '/remote', 'Remote Wake Practice', 'delivered by the other process');
  });
});
