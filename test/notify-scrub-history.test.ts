import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { addParticipant } from '../src/participants/participants.js';
import { scrubWriteOnlyValues } from '../src/notify/scrub-write-only-history.js';
import { withWriteOnlyHidden } from '../src/notify/write-only-in-requests.js';
import { SIGNING_SECRET, WRITE_ONLY_VALUE } from '../src/notify/subscription-registry.js';
import type { Database } from '../src/store/database.js';
import { openDatabase } from '../src/store/open.js';
import { SCRUB_WRITE_ONLY_VERSION } from '../src/store/schema.js';
import { BACKENDS, testConfig } from './helpers/backends.js';
import { HttpReceiver, until } from './helpers/receivers.js';
import { getToken, startTestServer, type TestServer } from './helpers/server.js';
import { subscription } from './helpers/subscriptions.js';

/**
 * Subscription versions stored before channel headers became write-only (decision 0037), or by the bulk
 * path before it took the ordinary one, carry the headers and the signing secret in their JSON. The
 * migration the server runs on start (decision 0043) hides them in every version, current and history,
 * while the delivery worker still sends them: here a receiver started in the test gets the header and a
 * signature under the secret after the upgrade.
 */
process.env.TESSERA_NOTIFY_POLL_MS = '50';

const SECRET = 'old-s3cret';
const V1_HEADER = 'Authorization: Bearer v1-token';
const CURRENT_HEADER = 'Authorization: Bearer current-token';
const LOGGED_HEADER = 'Authorization: Bearer logged-token';
const WRITE_ONLY_TEXT = /v1-token|current-token|old-s3cret|logged-token/;

/** A stored version (placeholders in it) as an older release stored it: the header lines and the secret themselves. */
function oldShaped(content: string, header: string): string {
  const sub = JSON.parse(content);
  sub.channel.header = [header];
  sub.channel.extension = sub.channel.extension.map((e: any) => (e.url === SIGNING_SECRET ? { ...e, valueString: SECRET } : e));
  return JSON.stringify(sub);
}

/** Every stored Subscription version's JSON, read with SQL (not through the API). */
async function storedVersions(db: Database): Promise<string[]> {
  const rows = await db.query<{ content: string | null }>("SELECT content FROM resource WHERE type = 'Subscription' UNION ALL SELECT content FROM resource_history WHERE type = 'Subscription'");
  return rows.map((r) => r.content ?? '');
}

/** Puts the subscription's two versions back the way an older release stored them. */
async function storeOldShaped(db: Database, id: string): Promise<void> {
  const [v1] = await db.query<{ content: string }>("SELECT content FROM resource_history WHERE type = 'Subscription' AND id = ? AND version_id = 1", [id]);
  const [v2] = await db.query<{ content: string }>("SELECT content FROM resource WHERE type = 'Subscription' AND id = ? AND version_id = 2", [id]);
  await db.run("UPDATE resource_history SET content = ? WHERE type = 'Subscription' AND id = ? AND version_id = 1", [oldShaped(v1.content, V1_HEADER), id]);
  await db.run("UPDATE resource SET content = ? WHERE type = 'Subscription' AND id = ? AND version_id = 2", [oldShaped(v2.content, CURRENT_HEADER), id]);
}

/** The message log's copies of participants' FHIR requests, read with SQL. */
const loggedRequests = async (db: Database) => (await db.query<{ id: string; raw: string }>("SELECT id, raw FROM message WHERE format = 'fhir' ORDER BY id")).map((r) => r.raw);

const registered = async (db: Database, id: string) => (await db.query<{ headers: string | null; secret: string | null }>('SELECT headers, secret FROM notify_subscription WHERE id = ?', [id]))[0];

for (const backend of BACKENDS) {
  describe(`Write-only channel values in Subscriptions stored before they were write-only (${backend})`, () => {
    const store = testConfig(backend);
    const receiver = new HttpReceiver(SECRET);
    let s: TestServer | undefined;
    let id = '';
    let plainVersions: string[] = [];
    let first: TestServer | undefined;
    after(async () => {
      if (!s) await first?.tessera.close(); // a failure before the restart
      await s?.close();
      await receiver.close();
    });

    it('are hidden in every version by the migration run on start, and still sent', async () => {
      await receiver.start();
      first = await startTestServer(backend, store);
      const added = await addParticipant(first.tessera.repo, { name: 'Scrub Street Practice', mrnSystem: 'urn:example:scrub:mrn', scope: 'system/*.cruds' });
      const practice = added.participant;
      // Written by the practice's own client: the message log keeps the request, without the values.
      const practiceToken = await getToken(first.url, added.client?.clientId as string, added.client?.clientSecret as string);
      const logged = await first.fhir('POST', 'Subscription', subscription({ topic: 'discharge', endpoint: `${receiver.url}/logged`, secret: SECRET, header: [LOGGED_HEADER] }), { authorization: `Bearer ${practiceToken}` });
      assert.equal(logged.status, 201, JSON.stringify(logged.body));
      const [request] = await loggedRequests(first.tessera.db);
      assert.match(request, /Subscription/);
      assert.doesNotMatch(request, WRITE_ONLY_TEXT);
      const created = await first.fhir('POST', 'Subscription', subscription({ topic: 'admission', endpoint: `${receiver.url}/admissions`, secret: SECRET, header: [V1_HEADER], organization: practice.organizationId }));
      assert.equal(created.status, 201, JSON.stringify(created.body));
      id = created.body.id;
      const updated = await first.fhir('PUT', `Subscription/${id}`, { ...created.body, channel: { ...created.body.channel, header: [CURRENT_HEADER] } });
      assert.equal(updated.status, 200, JSON.stringify(updated.body));
      // New header lines alone are a new version (its JSON shows the same placeholder), and the worker's values change.
      assert.equal(updated.body.meta.versionId, '2');
      assert.deepEqual(await registered(first.tessera.db, id), { headers: JSON.stringify([CURRENT_HEADER]), secret: SECRET });
      // Nothing write-only in it: its versions are left byte for byte.
      const plain = await first.fhir('POST', 'Subscription', subscription({ topic: 'discharge', endpoint: `${receiver.url}/discharges`, organization: practice.organizationId }));
      assert.equal(plain.status, 201);
      await first.tessera.close();

      // Back to a store of an older release: the values in the versions' JSON (notify_subscription held
      // them then as now), and the migration not yet run.
      const old = await openDatabase(store.config);
      await storeOldShaped(old, id);
      assert.equal((await storedVersions(old)).filter((c) => WRITE_ONLY_TEXT.test(c)).length, 2);
      // The logged request as the log kept it before it hid them.
      const raw = JSON.parse((await loggedRequests(old))[0]);
      raw.body = oldShaped(JSON.stringify(raw.body), LOGGED_HEADER);
      await old.run("UPDATE message SET raw = ? WHERE format = 'fhir'", [JSON.stringify({ ...raw, body: JSON.parse(raw.body) })]);
      assert.match((await loggedRequests(old))[0], /logged-token/);
      assert.deepEqual(await registered(old, id), { headers: JSON.stringify([CURRENT_HEADER]), secret: SECRET });
      plainVersions = (await storedVersions(old)).filter((c) => c.includes(plain.body.id));
      assert.ok(SCRUB_WRITE_ONLY_VERSION > 0);
      await old.run('DELETE FROM schema_migrations WHERE version = ?', [SCRUB_WRITE_ONLY_VERSION]);
      await old.close();

      s = await startTestServer(backend, store);
      const reads = [
        await s.fhir('GET', `Subscription/${id}`),
        await s.fhir('GET', `Subscription/${id}/_history/1`),
        await s.fhir('GET', `Subscription/${id}/_history/2`),
        await s.fhir('GET', `Subscription/${id}/_history`),
        await s.fhir('GET', `Subscription?_id=${id}`),
      ];
      for (const read of reads) {
        assert.equal(read.status, 200);
        assert.doesNotMatch(JSON.stringify(read.body), WRITE_ONLY_TEXT);
      }
      for (const version of reads.slice(0, 3).map((r) => r.body)) {
        assert.deepEqual(version.channel.header, [WRITE_ONLY_VALUE]);
        assert.equal(version.channel.extension.find((e: any) => e.url === SIGNING_SECRET).valueString, WRITE_ONLY_VALUE);
      }
      assert.deepEqual(reads[3].body.entry.map((e: any) => e.resource.meta.versionId), ['2', '1'], 'both versions are still there');
      const db = s.tessera.db;
      const versions = await storedVersions(db);
      assert.equal(versions.length, 4, 'two versions of one, one of each other');
      assert.doesNotMatch((await loggedRequests(db))[0], WRITE_ONLY_TEXT, 'the logged request holds neither');
      assert.equal(versions.filter((c) => WRITE_ONLY_TEXT.test(c)).length, 0, 'no stored version holds a header or the secret');
      assert.deepEqual(versions.filter((c) => c.includes(plain.body.id)), plainVersions, 'a Subscription with nothing write-only is not rewritten');
      assert.deepEqual(await registered(db, id), { headers: JSON.stringify([CURRENT_HEADER]), secret: SECRET }, 'the current values stay where the worker reads them');

      // An admission: the receiver gets it with the current header, signed with the secret.
      await s.tessera.startNotifications();
      const patient = await s.fhir('POST', 'Patient', { resourceType: 'Patient', name: [{ family: 'Scrubtest', given: ['Ann'] }], birthDate: '1970-01-01' });
      await s.fhir('POST', 'Encounter', { resourceType: 'Encounter', status: 'in-progress', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' }, subject: { reference: `Patient/${patient.body.id}` } });
      await until('the admission is delivered', () => receiver.notifications('/admissions').length > 0);
      const [sent] = receiver.notifications('/admissions');
      assert.equal(sent.headers.authorization, 'Bearer current-token');
      assert.ok(sent.signatureValid);
    });

    it('in batches, again and again: a second run changes nothing; a registry row without the value gets it', async () => {
      assert.ok(s, 'the first test started the server');
      const db = s.tessera.db;
      await storeOldShaped(db, id);
      await db.run('UPDATE notify_subscription SET headers = NULL WHERE id = ?', [id]);
      assert.equal(await scrubWriteOnlyValues(db, 1), 2, 'one version per transaction');
      assert.equal((await storedVersions(db)).filter((c) => WRITE_ONLY_TEXT.test(c)).length, 0);
      assert.deepEqual(await registered(db, id), { headers: JSON.stringify([CURRENT_HEADER]), secret: SECRET });
      const before = await storedVersions(db);
      assert.equal(await scrubWriteOnlyValues(db, 1), 0);
      assert.deepEqual(await storedVersions(db), before);
    });
  });
}

describe('The message log keeps a participant\'s write without write-only values', () => {
  const sub = subscription({ topic: 'admission', endpoint: 'https://receiver.example/hook', secret: SECRET, header: [LOGGED_HEADER] });

  it('in a Bundle\'s Subscriptions, a JSON Patch of one, and leaves other requests as they are', () => {
    const bundle = { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: sub, request: { method: 'POST', url: 'Subscription' } }, { request: { method: 'DELETE', url: 'Subscription/x' } }] };
    const hidden = withWriteOnlyHidden({ method: 'POST', path: '', body: bundle }) as any;
    assert.doesNotMatch(JSON.stringify(hidden), WRITE_ONLY_TEXT);
    assert.deepEqual(hidden.entry[0].resource.channel.header, [WRITE_ONLY_VALUE]);
    assert.deepEqual(hidden.entry[1], bundle.entry[1]);
    const patch = [
      { op: 'replace', path: '/channel/header', value: [LOGGED_HEADER] },
      { op: 'replace', path: '/reason', value: 'kept' },
    ];
    assert.deepEqual(withWriteOnlyHidden({ method: 'PATCH', path: 'Subscription/1', body: patch }), [{ ...patch[0], value: WRITE_ONLY_VALUE }, patch[1]]);
    const patient = { resourceType: 'Patient', name: [{ family: 'Kept' }] };
    assert.equal(withWriteOnlyHidden({ method: 'POST', path: 'Patient', body: patient }), patient);
    // A channel of the wrong shape (refused later as invalid) is not kept at all.
    assert.doesNotMatch(JSON.stringify(withWriteOnlyHidden({ method: 'POST', path: 'Subscription', body: { ...sub, channel: { ...sub.channel, extension: 'x' } } })), WRITE_ONLY_TEXT);
  });
});
