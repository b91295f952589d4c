import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { addParticipant, type Participant } from '../src/participants/participants.js';
import { rosterGroupId } from '../src/notify/rosters.js';
import { SIGNING_SECRET, WRITE_ONLY_VALUE } from '../src/notify/subscription-registry.js';
import { BACKENDS } from './helpers/backends.js';
import { tessera as cli } from './helpers/cli.js';
import { MllpSender } from './helpers/mllp.js';
import { eventsOf, HttpReceiver, MllpReceiver, until } from './helpers/receivers.js';
import { getToken, startTestServer, type TestServer } from './helpers/server.js';
import { subscription } from './helpers/subscriptions.js';

// Retries every 50-300 ms and never give up here (a receiver down "for a while"); MLLP AR is a refusal.
process.env.TESSERA_NOTIFY_POLL_MS = '50';
process.env.TESSERA_NOTIFY_RETRY_BASE_MS = '50';
process.env.TESSERA_NOTIFY_RETRY_MAX_MS = '300';
process.env.TESSERA_NOTIFY_MAX_ATTEMPTS = '1000';

/** Synthetic ORU^R01 in the Cerner style of test/hl7v2-mllp.test.ts: one glucose result, flagged H or N. */
const oru = (control: string, mrn: string, value: string, flag: 'H' | 'N') =>
  [
    `MSH|^~\\&|CERNER|LAKESIDE|HIE|TESSERA|20261102101500||ORU^R01|${control}|P|2.3`,
    `PID|1||${mrn}^^^LAKESIDE^MR||Nguyen^Thanh^^^^^L||19880101|M|||9 Elm St^^Lowell^MA^01851`,
    `OBR|1|PL-${control}|FL-${control}^LAB|24323-8^Comprehensive metabolic panel^LN|||20261102093000||||||||||||||20261102101000|||F`,
    `OBX|1|NM|2345-7^Glucose^LN||${value}|mg/dL^mg/dL^UCUM|70-99|${flag}|||F|||20261102093000`,
  ].join('\r');

for (const backend of BACKENDS) {
  describe(`Durable delivery: retries in order, dead letters, re-drive (${backend})`, () => {
    let s: TestServer;
    let sender: MllpSender;
    let practice: Participant;
    let practiceToken: string;
    const http = new HttpReceiver('s3cret');
    const refusing = new MllpReceiver();
    const env = () => ({ TESSERA_DATA: s.tessera.config.dataDir, DATABASE_URL: s.tessera.config.databaseUrl ?? '', TESSERA_PG_SCHEMA: s.tessera.config.schema ?? '' });

    before(async () => {
      s = await startTestServer(backend);
      s.tessera.config.mllpPort = 0;
      sender = new MllpSender((await s.tessera.startMllp()) as number);
      await s.tessera.startNotifications();
      await addParticipant(s.tessera.repo, { name: 'Lakeside Labs', mrnSystem: 'urn:example:lakeside:mrn', hl7Facility: 'LAKESIDE' });
      const added = await addParticipant(s.tessera.repo, { name: 'Elm Family Medicine', mrnSystem: 'urn:example:elm:mrn', scope: 'system/*.cruds' });
      practice = added.participant;
      practiceToken = await getToken(s.url, added.client?.clientId as string, added.client?.clientSecret as string);
      await http.start();
      await refusing.start();
      refusing.answer = 'AR';
    });
    after(async () => {
      await sender?.close();
      await s?.close();
      await http.close();
      await refusing.close();
    });

    it('rosters import from a CSV through the CLI, and the practice subscribes with its own client', async () => {
      // The lab knows the patient by its MRN L-1: the roster names that record's identifier, as a
      // practice's panel would name its own MRNs (here the lab's record is the only one of the person).
      const csv = join(s.tessera.config.dataDir, 'panel.csv');
      writeFileSync(csv, 'mrn,name\nL-1,Nguyen Thanh\nL-404,nobody we know\n');
      const done = await cli(['rosters', 'import', '--participant', practice.id, csv], env());
      assert.equal(done.code, 0, done.stderr);
      assert.match(done.stdout, /2 members/);
      const bad = await cli(['rosters', 'import', '--participant', 'no-such-participant', csv], env());
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /No participant no-such-participant/);
      // The roster names the practice's MRN system; point it at the lab's MRNs for this test's person.
      const group = (await s.fhir('GET', `Group/${rosterGroupId(practice.id)}`)).body;
      group.member = group.member.map((m: any) => ({ entity: { identifier: { system: 'urn:example:lakeside:mrn', value: m.entity.identifier.value } } }));
      assert.equal((await s.fhir('PUT', `Group/${group.id}`, group)).status, 200);
      const sub = subscription({ topic: 'new-result', filter: `Observation?patient:in=Group/${group.id}&abnormal=true`, endpoint: `${http.url}/results`, secret: 's3cret', header: ['Authorization: Bearer receiver-token-7'] });
      const res = await s.fhir('POST', 'Subscription', sub, { authorization: `Bearer ${practiceToken}` });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      // The secret and the headers (the receiver's own credentials) are write-only: neither the owner nor an
      // operator reads them back, in the answer, a read, a search or the history. Writing back what was read
      // keeps them (the notifications below are checked against s3cret and the header).
      assert.doesNotMatch(JSON.stringify(res.body), /s3cret|receiver-token-7/);
      const reads = [
        (await s.fhir('GET', `Subscription/${res.body.id}`, undefined, { authorization: `Bearer ${practiceToken}` })).body,
        (await s.fhir('GET', `Subscription/${res.body.id}`)).body,
        (await s.fhir('GET', `Subscription?_id=${res.body.id}`)).body,
        (await s.fhir('GET', `Subscription/${res.body.id}/_history`)).body,
      ];
      for (const read of reads) assert.doesNotMatch(JSON.stringify(read), /s3cret|receiver-token-7/);
      const stored = reads[0];
      assert.equal(stored.channel.extension.find((e: any) => e.url === SIGNING_SECRET).valueString, WRITE_ONLY_VALUE);
      assert.deepEqual(stored.channel.header, [WRITE_ONLY_VALUE]);
      stored.reason = 'abnormal results of our panel';
      assert.equal((await s.fhir('PUT', `Subscription/${stored.id}`, stored, { authorization: `Bearer ${practiceToken}` })).status, 200);
      // The placeholder beside new lines is ambiguous: refused with an OperationOutcome, nothing changed.
      const mixed = await s.fhir('PUT', `Subscription/${stored.id}`, { ...stored, channel: { ...stored.channel, header: [WRITE_ONLY_VALUE, 'X-Extra: 1'] } }, { authorization: `Bearer ${practiceToken}` });
      assert.equal(mixed.status, 422);
      assert.equal(mixed.body.resourceType, 'OperationOutcome');
    });

    it('a Subscription is its participant\'s own: another participant cannot read, search or count it', async () => {
      const other = await addParticipant(s.tessera.repo, { name: 'Birch Care Management', mrnSystem: 'urn:example:birch:mrn', scope: 'system/*.cruds' });
      const otherToken = await getToken(s.url, other.client?.clientId as string, other.client?.clientSecret as string);
      const mine = (await s.fhir('GET', 'Subscription', undefined, { authorization: `Bearer ${practiceToken}` })).body;
      assert.equal(mine.entry?.length, 1, 'the practice sees its Subscription');
      const id = mine.entry[0].resource.id;
      assert.equal((await s.fhir('GET', `Subscription/${id}`, undefined, { authorization: `Bearer ${otherToken}` })).status, 404);
      const theirs = await s.fhir('GET', 'Subscription?_total=accurate', undefined, { authorization: `Bearer ${otherToken}` });
      assert.equal(theirs.body.total, 0);
      assert.equal((await s.fhir('GET', `Subscription/${id}/$status`, undefined, { authorization: `Bearer ${otherToken}` })).status, 404);
      // The exchange's own tools (a client of no participant) see every participant's.
      assert.equal((await s.fhir('GET', `Subscription/${id}`)).status, 200);
    });

    it('a receiver down for a while receives every event, in order, once it is back', async () => {
      http.down = true;
      for (let i = 1; i <= 6; i++) {
        assert.equal((await sender.send(oru(`R-${i}`, 'L-1', String(150 + i), 'H'))).code, 'AA');
        assert.equal((await sender.send(oru(`R-${i}-n`, 'L-1', '85', 'N'))).code, 'AA', 'a normal result: not for this subscription');
      }
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(http.notifications('/results').length, 0);
      http.down = false;
      await until('six events', () => http.notifications('/results').flatMap((n) => eventsOf(n.bundle)).length >= 6);
      await new Promise((r) => setTimeout(r, 500));
      const numbers = http.notifications('/results').flatMap((n) => eventsOf(n.bundle).map((e) => e.number));
      assert.deepEqual(numbers, [1, 2, 3, 4, 5, 6], 'each abnormal result once, in order');
      assert.ok(http.notifications('/results').every((n) => n.signatureValid));
      assert.ok(http.notifications('/results').every((n) => n.headers.authorization === 'Bearer receiver-token-7'), 'the kept headers are sent');
      const sub = (await s.fhir('GET', 'Subscription')).body.entry[0].resource;
      const status = await s.fhir('GET', `Subscription/${sub.id}/$status`);
      assert.equal(status.body.parameter.find((p: any) => p.name === 'backlog').valueInteger, 0);
    });

    it('an MLLP subscriber answering AR: dead letter with the reason; re-driven once it accepts, delivered', async () => {
      const sub = await s.fhir('POST', 'Subscription', subscription({ topic: 'new-result', type: 'message', endpoint: `mllp://127.0.0.1:${refusing.port}`, organization: practice.organizationId, filter: 'Observation?abnormal=true' }));
      assert.equal(sub.status, 201, JSON.stringify(sub.body));
      assert.equal((await sender.send(oru('R-AR', 'L-1', '300', 'H'))).code, 'AA');
      const param = async (name: string) => (await s.fhir('GET', `Subscription/${sub.body.id}/$status`)).body.parameter.find((p: any) => p.name === name);
      await until('the dead letter', async () => (await param('dead-letters'))?.valueInteger === 1);
      assert.equal(refusing.messages.length, 0);
      refusing.answer = 'AA';
      const redriven = await cli(['subscriptions', 'redrive', sub.body.id], env());
      assert.equal(redriven.code, 0, redriven.stderr);
      assert.match(redriven.stdout, /1 dead letters put back/);
      await until('the re-driven delivery', () => refusing.messages.length === 1);
      assert.match(refusing.messages[0], /OBX\|1\|NM\|2345-7/);
      assert.equal((await param('dead-letters')).valueInteger, 0);
    });

    it('an MLLP subscriber answering AE: retried with the reason in $status, delivered once it answers AA', async () => {
      const engine = new MllpReceiver();
      await engine.start();
      engine.answer = 'AE';
      try {
        const sub = await s.fhir('POST', 'Subscription', subscription({ topic: 'new-result', type: 'message', endpoint: `mllp://127.0.0.1:${engine.port}`, organization: practice.organizationId, filter: 'Observation?abnormal=true' }));
        assert.equal((await sender.send(oru('R-AE', 'L-1', '301', 'H'))).code, 'AA');
        const status = async () => (await s.fhir('GET', `Subscription/${sub.body.id}/$status`)).body.parameter;
        await until('an AE recorded', async () => /AE/.test((await status()).find((p: any) => p.name === 'last-error')?.valueString ?? ''));
        assert.equal((await status()).find((p: any) => p.name === 'backlog').valueInteger, 1);
        engine.answer = 'AA';
        await until('delivery after AE', () => engine.messages.length === 1);
      } finally {
        await engine.close();
      }
    });
  });
}
