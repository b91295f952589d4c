import assert from 'node:assert/strict';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createClient } from '../src/security/clients.js';
import { BACKENDS } from './helpers/backends.js';
import { startTestServer, type TestServer } from './helpers/server.js';

async function tokenRequest(url: string, form: Record<string, string>, headers: Record<string, string> = {}) {
  const res = await fetch(`${url}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form).toString(),
  });
  return { status: res.status, body: (await res.json()) as any };
}

const basic = (id: string, secret: string) => ({ authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` });

for (const backend of BACKENDS) {
  describe(`authentication and scopes (${backend})`, () => {
    let s: TestServer;
    let patientId: string;
    before(async () => {
      s = await startTestServer(backend);
      patientId = (await s.fhir('POST', 'Patient', { resourceType: 'Patient', name: [{ family: 'Private' }] })).body.id;
    });
    after(async () => s?.close());

    it('advertises the token endpoint in /.well-known/smart-configuration', async () => {
      const res = await fetch(`${s.url}/.well-known/smart-configuration`);
      const config = (await res.json()) as any;
      assert.equal(config.token_endpoint, `${s.url}/oauth/token`);
      assert.ok(config.token_endpoint_auth_methods_supported.includes('private_key_jwt'));
      assert.ok(config.grant_types_supported.includes('client_credentials'));
    });

    it('no PHI without a token: 401 for a missing, malformed or forged token', async () => {
      for (const authorization of [undefined, 'Bearer nonsense', 'Basic abc']) {
        const res = await fetch(`${s.base}/Patient/${patientId}`, { headers: authorization ? { authorization } : {} });
        assert.equal(res.status, 401);
        const body = (await res.json()) as any;
        assert.equal(body.resourceType, 'OperationOutcome');
        assert.doesNotMatch(JSON.stringify(body), /Private/);
      }
      const forged = await new SignJWT({ scope: 'system/*.cruds' })
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuer('tessera')
        .setAudience('tessera')
        .setSubject('x')
        .setExpirationTime('1h')
        .sign(new TextEncoder().encode('guessed-secret-guessed-secret-guessed'));
      assert.equal((await fetch(`${s.base}/Patient`, { headers: { authorization: `Bearer ${forged}` } })).status, 401);
    });

    it('client secret: Basic and form authentication; wrong secret, unknown grant and bad scope are refused', async () => {
      const client = await createClient(s.tessera.db, { name: 'basic', scope: 'system/Patient.rs' });
      const ok = await tokenRequest(s.url, { grant_type: 'client_credentials' }, basic(client.clientId, client.clientSecret as string));
      assert.equal(ok.status, 200);
      assert.equal(ok.body.token_type, 'bearer');
      assert.equal(ok.body.scope, 'system/Patient.rs');
      const form = await tokenRequest(s.url, { grant_type: 'client_credentials', client_id: client.clientId, client_secret: client.clientSecret as string });
      assert.equal(form.status, 200);
      const wrong = await tokenRequest(s.url, { grant_type: 'client_credentials' }, basic(client.clientId, 'wrong'));
      assert.equal(wrong.status, 401);
      assert.equal(wrong.body.error, 'invalid_client');
      const grant = await tokenRequest(s.url, { grant_type: 'password' }, basic(client.clientId, client.clientSecret as string));
      assert.equal(grant.body.error, 'unsupported_grant_type');
      const beyond = await tokenRequest(s.url, { grant_type: 'client_credentials', scope: 'system/Observation.rs' }, basic(client.clientId, client.clientSecret as string));
      assert.equal(beyond.status, 400);
      assert.equal(beyond.body.error, 'invalid_scope');
    });

    it('client secrets are stored hashed, never in clear', async () => {
      const client = await createClient(s.tessera.db, { name: 'hashed', scope: 'system/*.rs' });
      const rows = await s.tessera.db.query<{ secret_hash: string }>('SELECT secret_hash FROM oauth_client WHERE id = ?', [client.clientId]);
      assert.match(rows[0].secret_hash, /^scrypt\$/);
      assert.ok(!rows[0].secret_hash.includes(client.clientSecret as string));
    });

    it('enforces SMART v2 scopes per resource type and interaction (403)', async () => {
      const readPatients = await s.tokenFor('system/Patient.rs');
      const as = (token: string) => ({ authorization: `Bearer ${token}` });
      assert.equal((await s.fhir('GET', `Patient/${patientId}`, undefined, as(readPatients))).status, 200);
      assert.equal((await s.fhir('GET', 'Patient?name=private', undefined, as(readPatients))).status, 200);
      assert.equal((await s.fhir('GET', 'Observation', undefined, as(readPatients))).status, 403);
      const create = await s.fhir('POST', 'Patient', { resourceType: 'Patient' }, as(readPatients));
      assert.equal(create.status, 403);
      assert.equal(create.body.issue[0].code, 'forbidden');
      assert.equal((await s.fhir('DELETE', `Patient/${patientId}`, undefined, as(readPatients))).status, 403);
      const createOnly = await s.tokenFor('system/Observation.c');
      const obs = { resourceType: 'Observation', status: 'final', code: { text: 'x' } };
      assert.equal((await s.fhir('POST', 'Observation', obs, as(createOnly))).status, 201);
      assert.equal((await s.fhir('GET', 'Observation', undefined, as(createOnly))).status, 403);
      const v1 = await s.tokenFor('system/Patient.read');
      assert.equal((await s.fhir('GET', `Patient/${patientId}`, undefined, as(v1))).status, 200);
      assert.equal((await s.fhir('PUT', `Patient/${patientId}`, { resourceType: 'Patient', id: patientId }, as(v1))).status, 403);
    });

    it('checks the scopes of every write of a transaction: updates, and creates and conditional updates, which are not dispatched one by one', async () => {
      const token = await s.tokenFor('system/Patient.cruds');
      const count = async (type: string) => (await s.fhir('GET', `${type}?_summary=count`)).body.total;
      const before = { patients: await count('Patient'), observations: await count('Observation') };
      for (const observation of [
        { request: { method: 'PUT', url: 'Observation/scoped-2' } },
        { fullUrl: 'urn:uuid:7d1b1c1e-0000-4000-8000-000000000001', request: { method: 'POST', url: 'Observation' } },
        { request: { method: 'PUT', url: 'Observation?identifier=urn:example:scoped|1' } },
      ]) {
        const res = await s.fhir(
          'POST',
          '',
          {
            resourceType: 'Bundle',
            type: 'transaction',
            entry: [
              { fullUrl: 'urn:uuid:7d1b1c1e-0000-4000-8000-000000000002', resource: { resourceType: 'Patient', name: [{ family: 'Scoped' }] }, request: { method: 'POST', url: 'Patient' } },
              { ...observation, resource: { resourceType: 'Observation', id: observation.request.url.includes('/') ? 'scoped-2' : undefined, identifier: [{ system: 'urn:example:scoped', value: '1' }], status: 'final', code: { text: 'x' } } },
            ],
          },
          { authorization: `Bearer ${token}` },
        );
        assert.equal(res.status, 403, `${observation.request.method} Observation with Patient scopes only`);
      }
      assert.deepEqual({ patients: await count('Patient'), observations: await count('Observation') }, before);
    });

    it('a write that finds its target by search criteria needs the search scope too: its outcome tells whether a match exists', async () => {
      const as = (token: string) => ({ authorization: `Bearer ${token}` });
      const writeOnly = as(await s.tokenFor('system/Observation.cud'));
      const obs = { resourceType: 'Observation', identifier: [{ system: 'urn:example:criteria', value: '1' }], status: 'final', code: { text: 'x' } };
      const count = async () => (await s.fhir('GET', 'Observation?identifier=urn:example:criteria|1')).body.entry?.length ?? 0;
      assert.equal((await s.fhir('PUT', 'Observation?identifier=urn:example:criteria|1', obs, writeOnly)).status, 403, 'conditional update');
      assert.equal((await s.fhir('POST', 'Observation', obs, { ...writeOnly, 'if-none-exist': 'identifier=urn:example:criteria|1' })).status, 403, 'If-None-Exist');
      assert.equal((await s.fhir('DELETE', 'Observation?identifier=urn:example:criteria|1', undefined, writeOnly)).status, 403, 'conditional delete');
      const transaction = (entry: unknown) => ({ resourceType: 'Bundle', type: 'transaction', entry: [entry] });
      const inTransaction = await s.fhir('POST', '', transaction({ resource: obs, request: { method: 'PUT', url: 'Observation?identifier=urn:example:criteria|1' } }), writeOnly);
      assert.equal(inTransaction.status, 403, 'conditional update in a transaction');
      // A conditional reference is resolved by a search of its type.
      const referencing = await s.fhir('POST', '', transaction({ resource: { ...obs, identifier: undefined, subject: { reference: 'Patient?identifier=urn:example:criteria|p1' } }, request: { method: 'POST', url: 'Observation' } }), writeOnly);
      assert.equal(referencing.status, 403, 'a conditional reference to Patient without Patient.s');
      assert.equal(await count(), 0, 'nothing written');
      // The same writes with the search scope.
      const withSearch = as(await s.tokenFor('system/Observation.cuds'));
      assert.equal((await s.fhir('PUT', 'Observation?identifier=urn:example:criteria|1', obs, withSearch)).status, 201);
      assert.equal((await s.fhir('POST', 'Observation', obs, { ...withSearch, 'if-none-exist': 'identifier=urn:example:criteria|1' })).status, 200);
      assert.equal(await count(), 1);
      // Writes by id and plain creates need no search scope.
      assert.equal((await s.fhir('POST', 'Observation', { ...obs, identifier: undefined }, writeOnly)).status, 201);
    });

    it('private_key_jwt: a signed assertion gets a token; a replayed, expired or foreign-signed one does not', async () => {
      const { privateKey, publicKey } = await generateKeyPair('ES384', { extractable: true });
      const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES384' };
      const client = await createClient(s.tessera.db, { name: 'backend', scope: 'system/*.rs', jwks: { keys: [jwk] } });
      assert.equal(client.clientSecret, undefined);
      const assertion = (key = privateKey, exp = '5m', jti = randomUUID()) =>
        new SignJWT({})
          .setProtectedHeader({ alg: 'ES384', kid: 'k1' })
          .setIssuer(client.clientId)
          .setSubject(client.clientId)
          .setAudience(`${s.url}/oauth/token`)
          .setJti(jti)
          .setIssuedAt()
          .setExpirationTime(exp)
          .sign(key);
      const form = (jwt: string) => ({
        grant_type: 'client_credentials',
        scope: 'system/Patient.rs',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: jwt,
      });
      const jwt = await assertion();
      const ok = await tokenRequest(s.url, form(jwt));
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      const read = await s.fhir('GET', `Patient/${patientId}`, undefined, { authorization: `Bearer ${ok.body.access_token}` });
      assert.equal(read.status, 200);
      assert.equal((await tokenRequest(s.url, form(jwt))).status, 401); // replay
      assert.equal((await tokenRequest(s.url, form(await assertion(privateKey, '-1m')))).status, 401); // expired
      const other = await generateKeyPair('ES384');
      assert.equal((await tokenRequest(s.url, form(await assertion(other.privateKey)))).status, 401); // wrong key
    });
  });
}
