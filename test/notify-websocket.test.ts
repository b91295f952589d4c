import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { addParticipant, type Participant } from '../src/participants/participants.js';
import { createTessera, type Tessera } from '../src/server/tessera.js';
import { BACKENDS, dropTestSchema, testConfig } from './helpers/backends.js';
import { eventsOf, notificationType, until } from './helpers/receivers.js';
import { getToken } from './helpers/server.js';
import { subscription } from './helpers/subscriptions.js';
import { TesseraProcess } from './helpers/tessera-process.js';

/**
 * Two `tessera serve` processes on one PostgreSQL store: a hospital writes its (synthetic) patients and
 * inpatient Encounters through process one's FHIR API; a practice asks process one for a websocket
 * binding token and connects to process two. Also: a Subscription written by a third process (this
 * test's own Tessera) is seen by process one's outbox at once.
 */
describe('Websocket bindings across processes; outbox topics across processes (postgres)', { skip: !BACKENDS.includes('postgres') }, () => {
  const store = testConfig('postgres');
  let tessera: Tessera;
  let hospital: { token: string; participant: Participant };
  let practice: { token: string; participant: Participant };
  const env = () => ({ DATABASE_URL: store.config.databaseUrl as string, TESSERA_PG_SCHEMA: store.config.schema as string, TESSERA_DATA: store.config.dataDir, TESSERA_NOTIFY_POLL_MS: '50' });
  const one = new TesseraProcess(env());
  const two = new TesseraProcess(env());
  let subscriptionId = '';
  let admitted = 0;
  const messages: any[] = [];
  let socket: WebSocket | undefined;

  const fhir = async (base: string, token: string, method: string, path: string, body?: object) => {
    const res = await fetch(`${base}/fhir/${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' }, body: body ? JSON.stringify(body) : undefined });
    return { status: res.status, body: (await res.json()) as any };
  };
  /** The hospital admits one more patient through process one; returns the Encounter id. */
  const admit = async () => {
    admitted++;
    const patient = await fhir(one.url, hospital.token, 'POST', 'Patient', { resourceType: 'Patient', identifier: [{ system: 'urn:example:ws:mrn', value: `W-${admitted}` }], name: [{ family: `Sockets${admitted}`, given: ['Wren'] }], birthDate: '1981-02-03' });
    assert.equal(patient.status, 201, JSON.stringify(patient.body));
    const encounter = await fhir(one.url, hospital.token, 'POST', 'Encounter', { resourceType: 'Encounter', status: 'in-progress', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' }, subject: { reference: `Patient/${patient.body.id}` } });
    assert.equal(encounter.status, 201, JSON.stringify(encounter.body));
    return encounter.body.id as string;
  };
  const outboxRows = async (focusId: string) => Number((await tessera.repo.sql.query<{ n: number }>("SELECT COUNT(*) AS n FROM notify_event WHERE topic = 'admission' AND focus_id = ?", [focusId]))[0].n);
  const bind = (url: string, token: string) =>
    new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.on('message', (data) => messages.push(JSON.parse(data.toString())));
      ws.on('open', () => {
        ws.send(`bind-with-token: ${token}`);
        resolve(ws);
      });
      ws.on('error', reject);
    });

  before(async () => {
    tessera = await createTessera({ ...store.config, mllpPort: -1 }, { auditThread: false });
    const h = await addParticipant(tessera.repo, { name: 'Westbrook Hospital', mrnSystem: 'urn:example:ws:mrn', scope: 'system/*.cruds' });
    const p = await addParticipant(tessera.repo, { name: 'Ridge Practice', mrnSystem: 'urn:example:ridge:mrn', scope: 'system/*.rs' });
    await Promise.all([one.start(), two.start()]);
    hospital = { participant: h.participant, token: await getToken(one.url, h.client?.clientId as string, h.client?.clientSecret as string) };
    practice = { participant: p.participant, token: await getToken(one.url, p.client?.clientId as string, p.client?.clientSecret as string) };
  });
  after(async () => {
    socket?.close();
    await one.stop();
    await two.stop();
    await tessera?.close();
    await dropTestSchema(store.config);
    store.cleanup();
  });

  it("a Subscription another process commits is seen by process one's next write (no outbox row before it, one after)", async () => {
    const before = await admit();
    assert.equal(await outboxRows(before), 0, 'nobody listened to admissions yet');
    const sub = await tessera.repo.create(subscription({ topic: 'admission', type: 'websocket', payload: 'id-only', organization: practice.participant.organizationId }));
    subscriptionId = sub.id as string;
    const after = await admit();
    assert.equal(await outboxRows(after), 1);
  });

  it('with no socket bound anywhere the event waits: no attempt is spent on it', async () => {
    await new Promise((r) => setTimeout(r, 700));
    const rows = await tessera.repo.sql.query<{ status: string; attempts: number }>('SELECT status, attempts FROM notify_delivery WHERE subscription_id = ?', [subscriptionId]);
    assert.deepEqual(rows.map((r) => [r.status, Number(r.attempts)]), [['pending', 0]]);
  });

  it('a token from process one binds a socket on process two, which delivers the waiting event and the next ones', async () => {
    const binding = await fhir(one.url, practice.token, 'GET', `Subscription/${subscriptionId}/$get-ws-binding-token`);
    assert.equal(binding.status, 200, JSON.stringify(binding.body));
    const param = (name: string) => binding.body.parameter.find((x: any) => x.name === name);
    const token = param('token').valueString;
    const onTwo = param('websocket-url').valueUrl.replace(one.url.replace(/^http/, 'ws'), two.url.replace(/^http/, 'ws'));
    assert.notEqual(onTwo, param('websocket-url').valueUrl);
    socket = await bind(onTwo, token);
    await until('the handshake from process two', () => messages.some((m) => notificationType(m) === 'handshake'));
    await until('the waiting event', () => messages.some((m) => notificationType(m) === 'event-notification'));
    await admit();
    await until('the next event', () => messages.filter((m) => notificationType(m) === 'event-notification').length >= 2);
    const numbers = messages.filter((m) => notificationType(m) === 'event-notification').flatMap((m) => eventsOf(m).map((e) => e.number));
    assert.deepEqual(numbers, [1, 2]);
    // Spent: the same token binds nothing, on either process.
    const again: any[] = [];
    const reuse = new WebSocket(param('websocket-url').valueUrl);
    reuse.on('message', (data) => again.push(JSON.parse(data.toString())));
    await new Promise((resolve) => reuse.on('open', resolve));
    reuse.send(`bind-with-token: ${token}`);
    await until('the refusal', () => again.length > 0);
    assert.match(again[0].error, /unknown or expired/);
    reuse.close();
  });
});
