import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Resource } from '@medplum/fhirtypes';
import { parseScopes } from '../src/security/scopes.js';
import type { AuthContext } from '../src/security/token-service.js';
import { BACKENDS } from './helpers/backends.js';
import { bodyOf, engineAs, privacyConsent } from './helpers/governance.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { tessera } from './helpers/cli.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Rules of the policy found in review (docs/governance.md): history cannot be filtered by consent, who
 * may record a Consent, a deny limited to purposes binds a caller who declares none, a patient's own app
 * is not withheld from by their own consent, and the roles of steward and administrator work. Data: two
 * synthetic patients with an Observation each and a Consent, written below.
 */
const ACT_REASON = 'http://terminology.hl7.org/CodeSystem/v3-ActReason';

for (const backend of BACKENDS) {
  describe(`governance rules (${backend})`, () => {
    let s: TestServer;
    const ids: Record<string, string> = {};
    const caller = (over: Partial<AuthContext>): AuthContext => ({ clientId: 'rules-client', scopes: parseScopes('system/*.rs'), ...over });
    const read = (auth: AuthContext, path: string) => engineAs(s, auth, 'GET', path).then((r) => r.status, (e) => e.status as number);

    before(async () => {
      s = await startTestServer(backend);
      const post = async (r: Resource) => (await s.fhir('POST', r.resourceType, r)).body.id as string;
      ids.org = await post({ resourceType: 'Organization', name: 'Payer Example' });
      ids.a = await post({ resourceType: 'Patient', name: [{ family: 'Quill' }] });
      ids.b = await post({ resourceType: 'Patient', name: [{ family: 'Rowe' }] });
      ids.aObs = await post({ resourceType: 'Observation', status: 'final', code: { text: 'pulse' }, subject: { reference: `Patient/${ids.a}` } });
      ids.bObs = await post({ resourceType: 'Observation', status: 'final', code: { text: 'pulse' }, subject: { reference: `Patient/${ids.b}` } });
      // Patient A denies everyone for payment purposes (PCF advanced: a purpose-limited deny).
      const consent = privacyConsent(ids.a, { type: 'deny', purpose: [{ system: ACT_REASON, code: 'HPAYMT' }] });
      assert.equal((await s.fhir('POST', 'Consent', consent)).status, 201);
      // Patient B denies everyone (basic opt-out).
      assert.equal((await s.fhir('POST', 'Consent', privacyConsent(ids.b, { type: 'deny' }))).status, 201);
    });
    after(async () => s?.close());

    it('a deny limited to a purpose binds that purpose and a caller who declares none, not other purposes', async () => {
      assert.equal(await read(caller({ purposeOfUse: 'HPAYMT' }), `Observation/${ids.aObs}`), 404);
      assert.equal(await read(caller({}), `Observation/${ids.aObs}`), 404, 'no declared purpose: it may be payment');
      assert.equal(await read(caller({ purposeOfUse: 'TREAT' }), `Observation/${ids.aObs}`), 200);
    });

    it('the basic form as a policy rule alone (OPTOUT, no provision) denies all of the patient\'s data', async () => {
      const patient = (await s.fhir('POST', 'Patient', { resourceType: 'Patient', name: [{ family: 'Optout' }] })).body.id;
      const obs = (await s.fhir('POST', 'Observation', { resourceType: 'Observation', status: 'final', code: { text: 'pulse' }, subject: { reference: `Patient/${patient}` } })).body.id;
      const reader = caller({ purposeOfUse: 'TREAT' });
      assert.equal(await read(reader, `Observation/${obs}`), 200);
      const optOut = { ...privacyConsent(patient, undefined), policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTOUT' }] } };
      delete (optOut as { provision?: unknown }).provision;
      assert.equal((await s.fhir('POST', 'Consent', optOut)).status, 201);
      assert.equal(await read(reader, `Observation/${obs}`), 404);
    });

    it('type and system history are refused to a caller whom consents or labels narrow; instance history is filtered like a read', async () => {
      const narrowed = caller({ scopes: parseScopes('system/*.rs') });
      assert.equal(await read(narrowed, 'Observation/_history'), 403);
      assert.equal(await read(narrowed, '_history'), 403);
      // Instance history is filtered like a read: B's Observation is denied, A's is not (purpose TREAT).
      assert.equal(await read(caller({ purposeOfUse: 'TREAT' }), `Observation/${ids.bObs}/_history`), 404);
      assert.equal(await read(caller({ purposeOfUse: 'TREAT' }), `Observation/${ids.aObs}/_history`), 200);
      // Even a client cleared for every label: patients' denies still narrow it, so history cannot be served.
      assert.equal((await s.fhir('GET', 'Observation/_history')).status, 403, 'the test admin client, cleared *');
      assert.equal((await s.fhir('GET', 'Organization/_history')).status, 200, 'a type no consent or label narrows');
      const history = await s.fhir('GET', 'Observation/_history', undefined, { authorization: `Bearer ${await s.tokenFor('system/Observation.rs')}` });
      assert.equal(history.status, 403, 'an uncleared backend client, through HTTP');
    });

    it("a patient's own app reads their own record despite their own deny; nobody else's", async () => {
      const own = caller({ scopes: parseScopes('patient/*.rs'), patient: ids.b, user: { id: 'patient-b', role: 'patient', fhirUser: `Patient/${ids.b}` } });
      assert.equal(await read(own, `Observation/${ids.bObs}`), 200);
      assert.equal(bodyOf(await engineAs(s, own, 'GET', 'Observation')).entry?.filter((e) => e.resource?.resourceType === 'Observation').length, 1);
      // A clinician with B as launch context is bound by B's deny.
      const clinician = caller({ scopes: parseScopes('patient/*.rs'), patient: ids.b, user: { id: 'doc', role: 'clinician' } });
      assert.equal(await read(clinician, `Observation/${ids.bObs}`), 404);
    });

    it('a Consent is recorded by the patient, a privacy officer or a backend client with Consent write scope; not by a clinician', async () => {
      const consent = privacyConsent(ids.a, { type: 'permit', actor: [{ role: { text: 'recipient' }, reference: { reference: `Organization/${ids.org}` } }] });
      const write = (auth: AuthContext) => engineAs(s, auth, 'POST', 'Consent', consent).then((r) => r.status, (e) => e.status as number);
      assert.equal(await write(caller({ scopes: parseScopes('user/Consent.cruds'), user: { id: 'doc', role: 'clinician' } })), 403);
      assert.equal(await write(caller({ scopes: parseScopes('user/Consent.cruds'), user: { id: 'po', role: 'privacy-officer' } })), 201);
      assert.equal(await write(caller({ scopes: parseScopes('patient/Consent.cruds'), patient: ids.a, user: { id: 'patient-a', role: 'patient', fhirUser: `Patient/${ids.a}` } })), 201);
      // The patient's own only: the patient scope's compartment check refuses another person's.
      const other = caller({ scopes: parseScopes('patient/Consent.cruds'), patient: ids.b, user: { id: 'patient-b', role: 'patient', fhirUser: `Patient/${ids.b}` } });
      assert.equal(await write(other), 403);
      // In a transaction too: the entry is refused and nothing is written.
      const tx = { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: consent, request: { method: 'POST', url: 'Consent' } }] };
      const clinician = caller({ scopes: parseScopes('user/Consent.cruds'), user: { id: 'doc', role: 'clinician' } });
      assert.equal(await engineAs(s, clinician, 'POST', '', tx).then((r) => r.status, (e) => e.status as number), 403);
    });

    it("steward operations are a steward's or administrator's; registering a participant with a client is an administrator's", async () => {
      const clinician = caller({ scopes: parseScopes('user/Patient.cruds'), user: { id: 'doc', role: 'clinician' } });
      assert.equal(await read(clinician, 'Patient/$mpi-review-queue'), 403);
      const steward = caller({ scopes: parseScopes('user/Patient.cruds'), user: { id: 'st', role: 'steward' } });
      assert.notEqual(await read(steward, 'Patient/$mpi-review-queue'), 403);
      // A client that may create Organizations may not mint an OAuth client wider than itself.
      const orgWriter = await s.tokenFor('system/Organization.cruds');
      const res = await fetch(`${s.url}/participants`, {
        method: 'POST',
        headers: { authorization: `Bearer ${orgWriter}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'Minted Clinic', mrnSystem: 'urn:example:minted', scope: 'system/*.cruds' }),
      });
      assert.equal(res.status, 403);
    });

    it('tessera consents add, list and revoke: an operator records a Consent, it applies from the next request, revoking lifts it', async () => {
      const env = { DATABASE_URL: s.tessera.config.databaseUrl ?? '', TESSERA_PG_SCHEMA: s.tessera.config.schema ?? '' };
      const data = ['--data', s.tessera.config.dataDir];
      const dir = mkdtempSync(join(tmpdir(), 'tessera-consent-'));
      try {
        const patient = (await s.fhir('POST', 'Patient', { resourceType: 'Patient', name: [{ family: 'Paperform' }] })).body.id;
        const obs = (await s.fhir('POST', 'Observation', { resourceType: 'Observation', status: 'final', code: { text: 'pulse' }, subject: { reference: `Patient/${patient}` } })).body.id;
        const reader = caller({ purposeOfUse: 'TREAT' });
        assert.equal(await read(reader, `Observation/${obs}`), 200);
        writeFileSync(join(dir, 'deny.json'), JSON.stringify(privacyConsent(patient, { type: 'deny' })));
        const added = await tessera(['consents', 'add', join(dir, 'deny.json'), ...data], env);
        assert.equal(added.code, 0, added.stderr);
        const id = /Consent\/([^ ]+) recorded/.exec(added.stdout)?.[1] as string;
        assert.ok(id, added.stdout);
        assert.equal(await read(reader, `Observation/${obs}`), 404, 'the deny applies from the next request');
        const listed = await tessera(['consents', 'list', '--patient', patient, ...data], env);
        assert.match(listed.stdout, new RegExp(`Consent/${id}  active  deny`));
        const revoked = await tessera(['consents', 'revoke', id, ...data], env);
        assert.equal(revoked.code, 0, revoked.stderr);
        assert.equal(await read(reader, `Observation/${obs}`), 200, 'revoked: shared again');
        // Users are cleared like clients (`tessera users clearance`).
        const { addUser } = await import('../src/users/user-directory.js');
        const org = (await s.fhir('POST', 'Organization', { resourceType: 'Organization', name: 'Counselling Service (synthetic)' })).body.id;
        const counsellor = await addUser(s.tessera.repo, { name: 'Casey Counsellor', email: 'casey.counsellor@example.org', role: 'clinician', organization: org, password: 'a long enough synthetic password' });
        const cleared = await tessera(['users', 'clearance', 'casey.counsellor@example.org', 'ETH', ...data], env);
        assert.equal(cleared.code, 0, cleared.stderr);
        const [row] = await s.tessera.db.query<{ kinds: string }>('SELECT kinds FROM access_clearance WHERE holder = ?', [`user:${counsellor.id}`]);
        assert.equal(row?.kinds, 'ETH');
        writeFileSync(join(dir, 'not-consent.json'), JSON.stringify({ resourceType: 'Patient' }));
        const wrong = await tessera(['consents', 'add', join(dir, 'not-consent.json'), ...data], env);
        assert.notEqual(wrong.code, 0);
        assert.match(wrong.stderr, /not a Consent/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
