import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { addParticipant } from '../src/participants/participants.js';
import { lockOrder, lockSubscriptions, releaseLeases } from '../src/notify/delivery-ledger.js';
import { redrive } from '../src/notify/delivery-worker.js';
import { createTessera, type Tessera } from '../src/server/tessera.js';
import { BACKENDS, dropTestSchema, testConfig } from './helpers/backends.js';
import type { Encounter, Patient } from '@medplum/fhirtypes';
import { HttpReceiver, until } from './helpers/receivers.js';
import { subscription } from './helpers/subscriptions.js';

/**
 * `tessera subscriptions redrive` and delivery rounds on PostgreSQL take the subscriptions' row locks in
 * one order (delivery-ledger.ts, decision 0041), so they never wait for each other in a cycle. The
 * interleaving that made a cycle before: a round of one worker holds subscription A; a round of another,
 * for A and B, waits for A (rows locked in id order); a redrive of every subscription's dead letters
 * then updated the rows as a scan met them, B (stored after A's last update) first, and waited for A;
 * when the first round ends, the second gets A and waits for B: PostgreSQL ends one of the two
 * (deadlock detected, after its deadlock_timeout). The rounds here are the workers' own lease releases
 * (lockSubscriptions and releaseLeases in one transaction), held open by the test at the point between.
 */
describe('Redrive and delivery rounds lock subscriptions in one order (postgres)', { skip: !BACKENDS.includes('postgres') }, () => {
  const store = testConfig('postgres');
  let tessera: Tessera;
  let a = '';
  let b = '';

  before(async () => {
    tessera = await createTessera({ ...store.config, mllpPort: -1 }, { auditThread: false });
    const practice = (await addParticipant(tessera.repo, { name: 'Redrive Row Practice', mrnSystem: 'urn:example:redrive:mrn', scope: 'system/*.rs' })).participant;
    const ids: string[] = [];
    for (const path of ['/a', '/b']) ids.push((await tessera.repo.create(subscription({ topic: 'admission', endpoint: `http://127.0.0.1:9${path}`, organization: practice.organizationId }))).id as string);
    [a, b] = lockOrder(ids);
    // A dead letter for each (as after the last failed attempt), of an event already dispatched.
    for (const [i, id] of [a, b].entries()) {
      const [event] = await tessera.db.query<{ seq: number }>("INSERT INTO notify_event (at, topic, focus_type, focus_id, facts, dispatched) VALUES (?, 'admission', 'Encounter', ?, '{}', 1) RETURNING seq", [Date.now(), `enc-${i}`]);
      await tessera.db.run("INSERT INTO notify_delivery (subscription_id, event_number, event_seq, status, attempts, next_attempt, last_error) VALUES (?, 1, ?, 'dead', 12, 0, 'refused')", [id, event.seq]);
    }
    // A's row updated last, so a scan of the table meets B first (as it does any row stored after A's last change).
    await tessera.db.run('UPDATE notify_subscription SET updated_at = updated_at + 1 WHERE id = ?', [a]);
    const scanned = await tessera.db.query<{ id: string }>('SELECT id FROM notify_subscription ORDER BY ctid');
    assert.deepEqual(scanned.map((r) => r.id), [b, a], 'a scan meets B first');
  });
  after(async () => {
    await tessera?.close();
    await dropTestSchema(store.config);
    store.cleanup();
  });

  it('a redrive of every subscription between two rounds: all three commit, every dead letter back in line', async () => {
    const dialect = tessera.db.dialect;
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let holder = 0;
    // Round 1: a worker giving back its lease of A, held open with A's row locked.
    const first = tessera.repo.transaction(async (tx) => {
      await lockSubscriptions(tx.sql, dialect, [a]);
      holder = Number((await tx.sql.query<{ pid: number }>('SELECT pg_backend_pid() AS pid'))[0].pid);
      await held;
      await releaseLeases(tx.sql, [a], 'worker-1');
    });
    await until('round 1 holds A', () => holder > 0);
    let waiter = 0;
    // Backends waiting for the rounds (for A: behind the holder, or behind the first to wait for it).
    const waitingOnRounds = async () =>
      Number((await tessera.db.query<{ n: number }>('SELECT COUNT(*) AS n FROM pg_stat_activity WHERE pg_blocking_pids(pid) && ARRAY[CAST(? AS INTEGER), CAST(? AS INTEGER)]', [holder, waiter]))[0].n);
    // Round 2: another worker's round of A and B, waiting for A.
    const second = tessera.repo.transaction(async (tx) => {
      waiter = Number((await tx.sql.query<{ pid: number }>('SELECT pg_backend_pid() AS pid'))[0].pid);
      await lockSubscriptions(tx.sql, dialect, [a, b]);
      await releaseLeases(tx.sql, [a, b], 'worker-2');
    });
    await until('round 2 waits for A', async () => waiter > 0 && (await waitingOnRounds()) >= 1);
    const redriven = redrive(tessera.repo, undefined);
    await until('the redrive waits', async () => (await waitingOnRounds()) >= 2);
    release();
    const outcomes = await Promise.allSettled([first, second, redriven]);
    const failures = outcomes.flatMap((o) => (o.status === 'rejected' ? [String((o.reason as Error).message)] : []));
    assert.deepEqual(failures, [], 'no transaction was ended as a deadlock');
    assert.equal((outcomes[2] as PromiseFulfilledResult<number>).value, 2);
    const pending = await tessera.db.query<{ subscription_id: string }>("SELECT subscription_id FROM notify_delivery WHERE status = 'pending' ORDER BY subscription_id");
    assert.deepEqual(pending.map((r) => r.subscription_id), [a, b]);
  });
});

/**
 * The same end to end: two Tessera processes' workers (here two instances on one schema) deliver rounds of
 * up to 8 subscriptions to a receiver that is down, each attempt a dead letter (one attempt allowed),
 * while redrives put every dead letter back in line again and again. No redrive is ended as a deadlock.
 * (A race, not a forced interleaving: the old redrive did not always lose it here.)
 */
describe('Redrives while two processes deliver rounds of several subscriptions (postgres)', { skip: !BACKENDS.includes('postgres') }, () => {
  const store = testConfig('postgres');
  const receiver = new HttpReceiver('unused');
  const instances: Tessera[] = [];
  const SUBSCRIPTIONS = 24;

  before(async () => {
    // Read when an instance is made: one attempt, then a dead letter; rounds at once.
    const settings: Record<string, string> = { TESSERA_NOTIFY_MAX_ATTEMPTS: '1', TESSERA_NOTIFY_POLL_MS: '10', TESSERA_NOTIFY_WAKE_DELAY_MS: '0', TESSERA_NOTIFY_RETRY_BASE_MS: '1' };
    const saved = Object.fromEntries(Object.keys(settings).map((k) => [k, process.env[k]]));
    Object.assign(process.env, settings);
    for (let i = 0; i < 2; i++) instances.push(await createTessera({ ...store.config, mllpPort: -1 }, { auditThread: false }));
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await receiver.start();
    receiver.down = true;
    const [writer] = instances;
    const practice = (await addParticipant(writer.repo, { name: 'Redrive Race Practice', mrnSystem: 'urn:example:race:mrn', scope: 'system/*.rs' })).participant;
    for (let i = 0; i < SUBSCRIPTIONS; i++) await writer.repo.create(subscription({ topic: 'admission', endpoint: `${receiver.url}/s${i}`, organization: practice.organizationId }));
    for (const tessera of instances) await tessera.startNotifications();
    for (let n = 0; n < 3; n++) {
      const patient = await writer.repo.create<Patient>({ resourceType: 'Patient', name: [{ family: `Racetest${n}` }], birthDate: '1980-02-02' });
      await writer.repo.create<Encounter>({ resourceType: 'Encounter', status: 'in-progress', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' }, subject: { reference: `Patient/${patient.id}` } });
    }
  });
  after(async () => {
    for (const tessera of instances) await tessera.close();
    await receiver.close();
    await dropTestSchema(store.config);
    store.cleanup();
  });

  it('every redrive commits', async () => {
    const [writer] = instances;
    const dead = async () => Number((await writer.db.query<{ n: number }>("SELECT COUNT(*) AS n FROM notify_delivery WHERE status = 'dead'"))[0].n);
    await until('dead letters', async () => (await dead()) > SUBSCRIPTIONS);
    const failures: string[] = [];
    let redriven = 0;
    for (const end = Date.now() + 4000; Date.now() < end; ) {
      try {
        redriven += await redrive(writer.repo, undefined);
      } catch (err) {
        failures.push((err as Error).message);
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.deepEqual(failures, []);
    assert.ok(redriven > SUBSCRIPTIONS, `${redriven} dead letters redriven`);
  });
});
